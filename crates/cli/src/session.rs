//! A process's stdio joined to this one over a hijacked connection, as
//! `docker run`, `docker exec` and `docker attach` do: output copied out
//! (demultiplexed, or raw from a terminal), input copied in, and with a
//! terminal, raw mode here and this window's size passed on as it changes.

use std::io::{IsTerminal, Read, Write};
use std::net::Shutdown;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use keel_monitor_protocol::stream::DetachWatch;

use crate::client::{Client, Response, Upload};

/// How the session runs.
pub struct Session {
    /// The process has a terminal: output is raw.
    pub tty: bool,
    /// Send this process's stdin.
    pub stdin: bool,
    /// Where the window's size goes: `/containers/ID` or `/exec/ID`.
    pub resize: Option<String>,
    /// Where the signals this process gets go (`--sig-proxy`):
    /// `/containers/ID`.
    pub signals_to: Option<String>,
    /// Typed at a terminal, these end the session and leave the process
    /// running.
    pub detach_keys: Vec<u8>,
}

/// Relays until the output ends; true if the user detached.
pub fn relay(client: &Client, mut response: Response, session: &Session) -> Result<bool> {
    // First: threads started from here on inherit the signals' block.
    if let Some(target) = &session.signals_to {
        forward_signals(client.clone(), target.clone());
    }
    let _raw = match session.tty && session.stdin && std::io::stdin().is_terminal() {
        true => Some(RawMode::enter()?),
        false => None,
    };
    if session.tty
        && let Some(target) = &session.resize
    {
        send_size(client, target);
        follow_window_size(client.clone(), target.clone());
    }
    let detached = Arc::new(AtomicBool::new(false));
    if session.stdin
        && let Some(mut input) = response.input()
    {
        let keys = if session.tty {
            session.detach_keys.clone()
        } else {
            Vec::new()
        };
        let detached = Arc::clone(&detached);
        std::thread::spawn(move || {
            let mut watch = DetachWatch::new(&keys);
            let mut buffer = [0u8; 16 * 1024];
            let mut stdin = std::io::stdin().lock();
            while let Ok(n @ 1..) = stdin.read(&mut buffer) {
                let (data, detach) = match keys.is_empty() {
                    true => (buffer[..n].to_vec(), false),
                    false => watch.feed(&buffer[..n]),
                };
                if input.write_all(&data).is_err() {
                    return;
                }
                if detach {
                    detached.store(true, Ordering::SeqCst);
                    let _ = input.shutdown(Shutdown::Both);
                    return;
                }
            }
            // The end of our input, not of the session: output goes on.
            let _ = input.shutdown(Shutdown::Write);
        });
    }
    let copied = copy_output(&mut response);
    if detached.load(Ordering::SeqCst) {
        return Ok(true);
    }
    copied.map(|()| false)
}

/// Copies a response's output stream out: raw (a terminal's) as it is,
/// else demultiplexed to stdout and stderr.
pub fn copy_output(response: &mut Response) -> Result<()> {
    if response.content_type != "application/vnd.docker.raw-stream" {
        return demultiplex(response.body());
    }
    let mut buffer = [0u8; 32 * 1024];
    let mut out = std::io::stdout();
    loop {
        let n = response.body().read(&mut buffer)?;
        if n == 0 {
            return Ok(());
        }
        out.write_all(&buffer[..n])?;
        out.flush()?;
    }
}

/// Copies Docker's multiplexed stream to stdout and stderr.
fn demultiplex(stream: &mut dyn Read) -> Result<()> {
    let mut header = [0u8; 8];
    let mut payload = Vec::new();
    loop {
        match stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(error) => return Err(error.into()),
        }
        let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        payload.resize(length, 0);
        stream.read_exact(&mut payload)?;
        if header[0] == 2 {
            std::io::stderr().write_all(&payload)?;
        } else {
            let mut out = std::io::stdout().lock();
            out.write_all(&payload)?;
            out.flush()?;
        }
    }
}

/// Tells the daemon this window's size (a failure only leaves the size
/// as it was).
fn send_size(client: &Client, target: &str) {
    if let Ok(size) = rustix::termios::tcgetwinsize(std::io::stdout()) {
        let path = format!("{target}/resize?h={}&w={}", size.ws_row, size.ws_col);
        let _ = client.request("POST", &path, Upload::None);
    }
}

/// Sends the window's size again whenever it changes (SIGWINCH).
fn follow_window_size(client: Client, target: String) {
    on_signals(&[libc::SIGWINCH], move |_| send_size(&client, &target));
}

/// Passes the signals this process gets on to the container at `target`
/// (`/containers/ID`), as docker's `--sig-proxy` does: all it can catch but
/// SIGCHLD and SIGPIPE (about this process), SIGURG (which docker skips)
/// and SIGWINCH (a terminal's size goes as a resize).
fn forward_signals(client: Client, target: String) {
    let skipped = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGCHLD,
        libc::SIGPIPE,
        libc::SIGURG,
        libc::SIGWINCH,
    ];
    let signals: Vec<libc::c_int> = (1..=libc::SIGRTMAX())
        .filter(|s| !skipped.contains(s))
        .collect();
    on_signals(&signals, move |signal| {
        let _ = client.request(
            "POST",
            &format!("{target}/kill?signal={signal}"),
            Upload::None,
        );
    });
}

/// Runs `action` for each of `signals` this process gets, from a thread
/// that waits for them; they are blocked in the calling thread first, so
/// threads started later inherit the block and only that one gets them.
fn on_signals(signals: &[libc::c_int], action: impl Fn(libc::c_int) + Send + 'static) {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initializes the set it is given.
    unsafe { libc::sigemptyset(set.as_mut_ptr()) };
    for signal in signals {
        // SAFETY: the set was initialized above; glibc refuses the
        // signals it keeps for itself (32, 33), which leaves them out.
        unsafe { libc::sigaddset(set.as_mut_ptr(), *signal) };
    }
    // SAFETY: the set is initialized; the old mask is not asked for.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), std::ptr::null_mut()) };
    // SAFETY: initialized above, and only read from now on.
    let set = unsafe { set.assume_init() };
    std::thread::spawn(move || {
        loop {
            let mut signal = 0;
            // SAFETY: `set` and `signal` are valid for the call.
            if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
                return;
            }
            action(signal);
        }
    });
}

/// This terminal in raw mode, restored when dropped.
struct RawMode(rustix::termios::Termios);

impl RawMode {
    fn enter() -> Result<Self> {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw)?;
        Ok(Self(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.0,
        );
    }
}
