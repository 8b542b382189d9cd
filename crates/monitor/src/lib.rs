//! The monitor: one small process per running container, and one per
//! running exec (the role of conmon or containerd's shim). It creates and
//! starts the container (or the exec'd process) with the runtime library,
//! owns its stdio (pipes, or the terminal the runtime hands over on the
//! console socket), writes a container's output to its log in Docker's
//! json-file format, serves attach clients on its socket, reaps the process
//! and records its exit. It leaves the daemon's session, so the daemon can
//! stop without stopping containers.
//!
//! It speaks to the daemon in `keel_monitor_protocol::message`'s messages
//! on its stdin and stdout, and depends on the runtime and that protocol
//! only: one runs per container, so it links nothing else.

mod error;
mod log;
mod resident;

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

use keel_monitor_protocol::files::{EXIT, Exit, exec_process_name, socket_name};
use keel_monitor_protocol::message::{
    self, Failure, FailureKind, FromMonitor, Launch, ToMonitor, VERSION,
};
use keel_monitor_protocol::stream::{self, Frames, STDERR, STDOUT};
use keel_runtime::{CreateOptions, ExecOptions, ProgramFault, Runtime};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use rustix::pipe::{PipeFlags, pipe_with};
use rustix::process::{Pid, PidfdFlags, WaitOptions, pidfd_open, waitpid};

use crate::error::Context;
pub use crate::error::{Error, Result};

/// Where the runtime hands over a terminal's master (inside the dir).
const CONSOLE: &str = "console.sock";

/// Runs the monitor: reads its [`Launch`] from stdin, and reports to the
/// daemon on stdout until the process has exited.
pub fn run() -> Result<()> {
    // Out of the daemon's session and process group: its end is not ours.
    let _ = rustix::process::setsid();
    // Our stdin and stdout are the daemon's; fds 0 to 2 become the
    // process's.
    let mut to_daemon = dup(rustix::stdio::stdout())?;
    let mut from_daemon = dup(rustix::stdio::stdin())?;
    let launch = match message::receive::<ToMonitor>(&mut from_daemon) {
        Ok(Some(ToMonitor::Launch(launch))) if launch.version == VERSION => launch,
        Ok(Some(ToMonitor::Launch(launch))) => {
            let failure = Failure {
                kind: FailureKind::Other,
                message: format!(
                    "keel-monitor speaks protocol version {VERSION}, the daemon {}: \
                     install keel-daemon and keel-monitor from the same release",
                    launch.version
                ),
            };
            let _ = message::send(&mut to_daemon, &FromMonitor::Failed(failure));
            return Err(Error::Protocol("a launch of another version".to_owned()));
        }
        other => {
            return Err(Error::Protocol(format!(
                "expected a launch from the daemon, got {other:?}"
            )));
        }
    };
    monitor(&launch, &mut to_daemon, &mut from_daemon)
}

/// A close-on-exec copy of `fd` above the standard three.
fn dup(fd: BorrowedFd<'_>) -> Result<File> {
    rustix::io::fcntl_dupfd_cloexec(fd, 3)
        .map(File::from)
        .context(|| "dup".to_owned())
}

fn monitor(args: &Launch, to_daemon: &mut File, from_daemon: &mut File) -> Result<()> {
    std::env::set_current_dir(&args.dir)
        .context(|| format!("cannot enter {}", args.dir.display()))?;
    // Our stderr (monitor.log) comes back once the process has its own.
    let own_stderr = dup(rustix::stdio::stderr())?;
    // Orphans of the container become ours to reap, as for conmon.
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    let null: OwnedFd = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context(|| "/dev/null".to_owned())?
        .into();

    let socket = socket_name(args.exec.as_deref());
    let _ = fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).context(|| format!("cannot listen on {socket}"))?;
    let console = if args.tty {
        let _ = fs::remove_file(CONSOLE);
        Some(UnixListener::bind(CONSOLE).context(|| "the console socket".to_owned())?)
    } else {
        None
    };
    let mut outputs = Vec::new();
    let mut input = None;
    if !args.tty {
        let pipe = || pipe_with(PipeFlags::CLOEXEC).context(|| "pipe".to_owned());
        let (out_read, out_write) = pipe()?;
        let (err_read, err_write) = pipe()?;
        let stdin = if args.stdin {
            let (read, write) = pipe()?;
            input = Some(Input::new(write)?);
            read
        } else {
            null.try_clone().context(|| "dup".to_owned())?
        };
        replace_stdio(&stdin, &out_write, &err_write)?;
        outputs.push(Output::new(STDOUT, out_read));
        outputs.push(Output::new(STDERR, err_read));
    } else {
        replace_stdio(&null, &null, &null)?;
    }
    let runtime = Runtime::new(&args.runtime_root, false);
    let launched = launch(args, &runtime, to_daemon, from_daemon);
    // Only the process holds the other ends of its pipes now.
    replace_stdio(&null, &null, &own_stderr)?;
    let master = match (launched.as_ref(), &console) {
        (Ok(_), Some(console)) => Some(receive_master(console)),
        _ => None,
    };
    let _ = fs::remove_file(CONSOLE);
    let (pid, master) = match (launched, master.transpose()) {
        (Ok(pid), Ok(master)) => (pid, master),
        (Err(failure), _) | (Ok(_), Err(failure)) => {
            let _ = fs::remove_file(&socket);
            let _ = message::send(to_daemon, &FromMonitor::Failed(failure));
            return Ok(());
        }
    };
    if let Some(master) = &master {
        rustix::io::ioctl_fionbio(master, true).context(|| "the terminal".to_owned())?;
        let copy = || master.try_clone().context(|| "dup".to_owned());
        outputs.push(Output::new(STDOUT, copy()?));
        if args.stdin {
            input = Some(Input::new(copy()?)?);
        }
    }
    let _ = message::send(to_daemon, &FromMonitor::Started { pid });
    let log = match args.log {
        Some(limits) => Some(crate::log::Writer::open(&args.dir, limits)?),
        None => None,
    };
    let mut relay = Relay {
        outputs,
        input,
        terminal: master,
        listener,
        clients: Vec::new(),
        log,
        stdin_once: args.stdin_once,
    };
    let code = relay.run(pid)?;
    drop(relay);
    let _ = fs::remove_file(&socket);
    if args.exec.is_none() {
        let exit = Exit {
            code,
            finished_at: keel_time::now_rfc3339(),
        };
        // Not synced: after a crash of the machine the exit is moot.
        let path = args.dir.join(EXIT);
        keel_durable::replace(
            &path,
            &serde_json::to_vec(&exit).expect("an exit serializes"),
        )
        .context(|| format!("cannot write {}", path.display()))?;
    }
    let _ = message::send(to_daemon, &FromMonitor::Exited { code });
    // After the daemon has the exit: it waits for the monitor's end only
    // to start the container again.
    if args.exec.is_none() {
        let _ = runtime.delete(&args.id, true);
    }
    Ok(())
}

/// Creates the container (or readies the exec), says it is ready, waits
/// for the daemon's go, and starts the process: its pid, or why not.
fn launch(
    args: &Launch,
    runtime: &Runtime,
    to_daemon: &mut impl Write,
    from_daemon: &mut impl Read,
) -> std::result::Result<i32, Failure> {
    let console_socket = args.tty.then(|| PathBuf::from(CONSOLE));
    let mut ready = || {
        let _ = message::send(to_daemon, &FromMonitor::Ready);
        match message::receive(from_daemon) {
            Ok(Some(ToMonitor::Go)) => Ok(()),
            _ => Err(other("the daemon went away before the start".to_owned())),
        }
    };
    let report = |error: keel_runtime::Error| Failure {
        kind: match error.program_fault() {
            Some(ProgramFault::NotFound) => FailureKind::ProgramNotFound,
            Some(ProgramFault::NotExecutable) => FailureKind::ProgramNotExecutable,
            None => FailureKind::Other,
        },
        message: keel_runtime::report(&error),
    };
    match &args.exec {
        None => {
            let options = CreateOptions {
                bundle: args.dir.clone(),
                console_socket,
                ..CreateOptions::default()
            };
            let pid = runtime.create(&args.id, &options).map_err(report)?;
            let started = ready().and_then(|()| runtime.start(&args.id).map_err(report));
            if let Err(message) = started {
                let _ = runtime.delete(&args.id, true);
                return Err(message);
            }
            Ok(pid)
        }
        Some(exec) => {
            ready()?;
            let options = ExecOptions {
                process: Some(PathBuf::from(exec_process_name(exec))),
                tty: args.tty,
                detach: true,
                console_socket,
                ..ExecOptions::default()
            };
            runtime.exec(&args.id, &options).map_err(report)
        }
    }
}

fn replace_stdio(stdin: &impl AsFd, out: &impl AsFd, err: &impl AsFd) -> Result<()> {
    rustix::stdio::dup2_stdin(stdin).context(|| "dup2".to_owned())?;
    rustix::stdio::dup2_stdout(out).context(|| "dup2".to_owned())?;
    rustix::stdio::dup2_stderr(err).context(|| "dup2".to_owned())
}

/// A failure of no kind of its own.
fn other(message: String) -> Failure {
    Failure {
        kind: FailureKind::Other,
        message,
    }
}

/// The terminal's master, sent by the runtime over the console socket.
fn receive_master(console: &UnixListener) -> std::result::Result<OwnedFd, Failure> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let (connection, _) = console
        .accept()
        .map_err(|e| other(format!("the console socket: {e}")))?;
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut name = [0u8; 256];
    rustix::net::recvmsg(
        &connection,
        &mut [io::IoSliceMut::new(&mut name)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| other(format!("receiving the terminal: {e}")))?;
    control
        .drain()
        .find_map(|message| match message {
            RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
            _ => None,
        })
        .ok_or_else(|| other("the runtime sent no terminal".to_owned()))
}

/// One of the process's outputs: a pipe, or the terminal.
struct Output {
    kind: u8,
    fd: OwnedFd,
    /// Bytes of a line not yet logged.
    pending: Vec<u8>,
    closed: bool,
}

/// The process's stdin, written without blocking the monitor.
struct Input {
    fd: OwnedFd,
    pending: Vec<u8>,
    /// Close once `pending` is written (the client's input ended).
    closing: bool,
}

struct Client {
    stream: UnixStream,
    frames: Frames,
    /// Took no more output (it hung up): kept until its input is read to
    /// the end, since it may have said something first (the daemon's
    /// resize connections write a size and hang up at once).
    deaf: bool,
}

struct Relay {
    outputs: Vec<Output>,
    input: Option<Input>,
    terminal: Option<OwnedFd>,
    listener: UnixListener,
    clients: Vec<Client>,
    log: Option<crate::log::Writer>,
    stdin_once: bool,
}

impl Output {
    fn new(kind: u8, fd: OwnedFd) -> Self {
        Self {
            kind,
            fd,
            pending: Vec::new(),
            closed: false,
        }
    }
}

impl Input {
    fn new(fd: OwnedFd) -> Result<Self> {
        rustix::io::ioctl_fionbio(&fd, true).context(|| "stdin".to_owned())?;
        Ok(Self {
            fd,
            pending: Vec::new(),
            closing: false,
        })
    }

    /// Writes what it can; true once it is done and may be closed.
    fn flush(&mut self) -> bool {
        while !self.pending.is_empty() {
            match rustix::io::write(&self.fd, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => return false,
                // The process closed its stdin: nothing more goes in.
                Err(_) => return true,
            }
        }
        self.closing
    }
}

impl Relay {
    /// Relays until the process has exited and its output is drained;
    /// returns its exit code as a shell reports it.
    fn run(&mut self, pid: i32) -> Result<i32> {
        let pid = Pid::from_raw(pid).expect("a positive pid");
        let pidfd = pidfd_open(pid, PidfdFlags::empty()).context(|| "pidfd_open".to_owned())?;
        self.listener
            .set_nonblocking(true)
            .context(|| "the attach socket".to_owned())?;
        let mut first = true;
        loop {
            let (exited, ready) = self.wait(&pidfd, std::mem::take(&mut first))?;
            // Clients first, while the indices polled are theirs (serving
            // drops those whose input ended).
            for index in ready.clients.into_iter().rev() {
                self.serve(index);
            }
            if ready.listener {
                self.accept();
            }
            for index in ready.outputs {
                self.pump(index, exited)?;
            }
            if let Some(input) = &mut self.input
                && input.flush()
            {
                self.input = None;
            }
            if exited {
                for index in 0..self.outputs.len() {
                    self.pump(index, true)?;
                }
                break;
            }
        }
        for index in 0..self.outputs.len() {
            let line = std::mem::take(&mut self.outputs[index].pending);
            if !line.is_empty() {
                self.log_line(self.outputs[index].kind, &line)?;
            }
        }
        loop {
            match waitpid(Some(pid), WaitOptions::empty()) {
                Ok(Some((_, status))) => {
                    return Ok(match (status.exit_status(), status.terminating_signal()) {
                        (Some(code), _) => code,
                        (None, Some(signal)) => 128 + signal,
                        _ => 255,
                    });
                }
                Err(Errno::INTR) => continue,
                _ => return Ok(255),
            }
        }
    }

    /// Waits for something to do: whether the process exited, and which
    /// of the rest are ready. The `first` wait gives back the memory that
    /// only the start needed, right before it blocks.
    fn wait(&self, pidfd: &OwnedFd, first: bool) -> Result<(bool, Ready)> {
        let mut fds = vec![
            PollFd::new(pidfd, PollFlags::IN),
            PollFd::new(&self.listener, PollFlags::IN),
        ];
        let open: Vec<usize> = (0..self.outputs.len())
            .filter(|i| !self.outputs[*i].closed)
            .collect();
        for index in &open {
            fds.push(PollFd::new(&self.outputs[*index].fd, PollFlags::IN));
        }
        for client in &self.clients {
            fds.push(PollFd::new(&client.stream, PollFlags::IN));
        }
        if let Some(input) = self.input.as_ref().filter(|i| !i.pending.is_empty()) {
            fds.push(PollFd::new(&input.fd, PollFlags::OUT));
        }
        if first {
            resident::release_startup_pages();
        }
        loop {
            match poll(&mut fds, None) {
                Err(Errno::INTR) => continue,
                result => {
                    result.context(|| "poll".to_owned())?;
                    break;
                }
            }
        }
        let ready = |fd: &PollFd<'_>| !fd.revents().is_empty();
        let outputs_end = 2 + open.len();
        Ok((
            ready(&fds[0]),
            Ready {
                listener: ready(&fds[1]),
                outputs: open
                    .iter()
                    .zip(&fds[2..outputs_end])
                    .filter(|(_, fd)| ready(fd))
                    .map(|(i, _)| *i)
                    .collect(),
                clients: (0..self.clients.len())
                    .filter(|i| ready(&fds[outputs_end + i]))
                    .collect(),
            },
        ))
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            // Clients get output as it comes: a stalled client holds the
            // container's output back, as in Docker.
            if stream.set_nonblocking(false).is_ok() {
                self.clients.push(Client {
                    stream,
                    frames: Frames::default(),
                    deaf: false,
                });
            }
        }
    }

    /// Reads what the process wrote (all of it when draining), logs it in
    /// lines and sends it to every client.
    fn pump(&mut self, index: usize, drain: bool) -> Result<()> {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            let output = &mut self.outputs[index];
            if output.closed {
                return Ok(());
            }
            let mut fd = [PollFd::new(&output.fd, PollFlags::IN)];
            if poll(&mut fd, Some(&Timespec::default())).unwrap_or(0) == 0 {
                return Ok(());
            }
            let n = match rustix::io::read(&output.fd, &mut buffer) {
                Ok(0) => {
                    output.closed = true;
                    return Ok(());
                }
                Ok(n) => n,
                Err(Errno::INTR | Errno::AGAIN) => return Ok(()),
                // EIO: a terminal whose last user has gone.
                Err(_) => {
                    output.closed = true;
                    return Ok(());
                }
            };
            let kind = output.kind;
            let chunk = &buffer[..n];
            let frame = stream::frame(kind, chunk);
            for client in self.clients.iter_mut().filter(|c| !c.deaf) {
                client.deaf = client.stream.write_all(&frame).is_err();
            }
            self.outputs[index].pending.extend_from_slice(chunk);
            self.log_lines(index)?;
            if !drain {
                return Ok(());
            }
        }
    }

    /// Reads a client's frames: stdin, its end, terminal sizes. A client
    /// that hung up is dropped.
    fn serve(&mut self, index: usize) {
        let Some(client) = self.clients.get_mut(index) else {
            return;
        };
        let mut buffer = [0u8; 16 * 1024];
        let n = match client.stream.read(&mut buffer) {
            Ok(0) | Err(_) => {
                self.clients.swap_remove(index);
                return;
            }
            Ok(n) => n,
        };
        client.frames.push(&buffer[..n]);
        let frames: Vec<(u8, Vec<u8>)> = client.frames.by_ref().collect();
        for (kind, payload) in frames {
            match kind {
                stream::STDIN => {
                    if let Some(input) = &mut self.input {
                        input.pending.extend_from_slice(&payload);
                    }
                }
                // A terminal has no end of input to pass on.
                stream::STDIN_END if self.stdin_once && self.terminal.is_none() => {
                    if let Some(input) = &mut self.input {
                        input.closing = true;
                    }
                }
                stream::RESIZE => {
                    if let (Some(terminal), Some((rows, cols))) =
                        (&self.terminal, stream::parse_resize(&payload))
                    {
                        let size = rustix::termios::Winsize {
                            ws_row: rows,
                            ws_col: cols,
                            ws_xpixel: 0,
                            ws_ypixel: 0,
                        };
                        let _ = rustix::termios::tcsetwinsize(terminal, size);
                    }
                }
                _ => {}
            }
        }
    }

    /// Logs each complete line (and any line over 16 KiB, as Docker splits
    /// them) as one entry.
    fn log_lines(&mut self, index: usize) -> Result<()> {
        while let Some(end) = {
            let pending = &self.outputs[index].pending;
            pending
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| i + 1)
                .or_else(|| (pending.len() >= 16 * 1024).then_some(16 * 1024))
        } {
            let line: Vec<u8> = self.outputs[index].pending.drain(..end).collect();
            self.log_line(self.outputs[index].kind, &line)?;
        }
        Ok(())
    }

    fn log_line(&mut self, kind: u8, line: &[u8]) -> Result<()> {
        let Some(log) = &mut self.log else {
            return Ok(());
        };
        let stream = if kind == STDERR { "stderr" } else { "stdout" };
        let entry = log_entry(line, stream, &keel_time::now_rfc3339());
        log.append(&entry)
    }
}

/// One line of the json-file log, a `LogLine` as serde_json writes it,
/// and a newline. Written by hand: it is what a monitor does all its life,
/// and serde's generic code is spread over pages that would stay resident
/// for it (a logging monitor held 200 kB more with serde_json).
fn log_entry(line: &[u8], stream: &str, time: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(line);
    let mut entry = Vec::with_capacity(text.len() + 64);
    entry.extend_from_slice(b"{\"log\":\"");
    for &byte in text.as_bytes() {
        match byte {
            b'"' => entry.extend_from_slice(b"\\\""),
            b'\\' => entry.extend_from_slice(b"\\\\"),
            b'\n' => entry.extend_from_slice(b"\\n"),
            b'\r' => entry.extend_from_slice(b"\\r"),
            b'\t' => entry.extend_from_slice(b"\\t"),
            0x08 => entry.extend_from_slice(b"\\b"),
            0x0c => entry.extend_from_slice(b"\\f"),
            control @ 0..0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                entry.extend_from_slice(b"\\u00");
                entry.push(HEX[usize::from(control >> 4)]);
                entry.push(HEX[usize::from(control & 0xf)]);
            }
            other => entry.push(other),
        }
    }
    entry.extend_from_slice(b"\",\"stream\":\"");
    entry.extend_from_slice(stream.as_bytes());
    entry.extend_from_slice(b"\",\"time\":\"");
    entry.extend_from_slice(time.as_bytes());
    entry.extend_from_slice(b"\"}\n");
    entry
}

/// What the poll found ready besides the process's exit.
struct Ready {
    listener: bool,
    outputs: Vec<usize>,
    clients: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use keel_monitor_protocol::files::LogLine;

    use super::*;

    #[test]
    fn a_log_entry_is_what_serde_json_writes_for_its_line() {
        let line = b"quote \" backslash \\ tab \t bell \x07 nul \x00 bad \xff utf8 \xc3\xa9\n";
        let expected = LogLine {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: "stderr".to_owned(),
            time: "2026-12-03T16:11:38.000000001Z".to_owned(),
        };
        let mut expected = serde_json::to_vec(&expected).unwrap();
        expected.push(b'\n');
        let written = log_entry(line, "stderr", "2026-12-03T16:11:38.000000001Z");
        assert_eq!(
            String::from_utf8_lossy(&written),
            String::from_utf8_lossy(&expected)
        );
    }
}
