//! Messages between the runtime and the container process it forked, over
//! a socketpair whose packets keep their boundaries.

use std::os::fd::OwnedFd;

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use crate::error::{Context, Error, ProgramFault, Result, report};
use crate::sys::{self, Forked};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// Runtime to child: carry on. Carries the child's pid as the runtime
    /// sees it, for the state given to hooks.
    Go(i32),
    /// Child to runtime: mounts are done; run the createRuntime hooks.
    RunHooks,
    /// Child to runtime: the container is created and waits for start.
    Created,
    /// Child to runtime: setting up failed, for this reason.
    Failed(Failure),
    /// Intermediate to runtime: the child it forked has this pid.
    Forked(i32),
}

/// An error sent over the channel: its words, and the program fault it
/// was, if any, so that the runtime's side has the same kind of error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    fault: Option<ProgramFault>,
    reason: String,
}

impl Failure {
    pub(crate) fn of(error: &Error) -> Self {
        Failure {
            fault: error.program_fault(),
            reason: report(error),
        }
    }
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Self {
        match failure.fault {
            Some(fault) => Error::Program {
                fault,
                message: failure.reason,
            },
            None => Error::Container(failure.reason),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Channel(OwnedFd);

/// Forks a child (into new namespaces, `flags`) with a channel to it. The
/// child runs `body`, which returns only the error that stopped it; the
/// error goes back over the channel and the child exits. The parent gets
/// the child's pid and its end of the channel.
///
/// With `enter`, the child is forked by an intermediate process that runs
/// `enter` first (joining a user namespace): a namespace belongs to the
/// user namespace of the process that makes it, so namespaces meant to
/// belong to a joined one must be cloned from inside it, as runc's nsexec
/// does. The intermediate says the child's pid and exits; the caller
/// becomes a subreaper so that the child is still its own to wait for.
pub(crate) fn fork_child(
    flags: libc::c_int,
    what: &str,
    enter: Option<&dyn Fn() -> Result<()>>,
    body: impl FnOnce(&Channel) -> Error,
) -> Result<(i32, Channel)> {
    let (ours, theirs) = pair()?;
    let Some(enter) = enter else {
        return match sys::clone_process(flags).context(|| format!("forking {what}"))? {
            Forked::Child => become_child(ours, theirs, body),
            Forked::Parent(pid) => Ok((pid, ours)),
        };
    };
    sys::set_child_subreaper().context(|| "becoming a subreaper".into())?;
    match sys::clone_process(0).context(|| format!("forking to set up {what}"))? {
        Forked::Child => {
            let forked = enter()
                .and_then(|()| sys::clone_process(flags).context(|| format!("forking {what}")));
            match forked {
                Ok(Forked::Child) => become_child(ours, theirs, body),
                Ok(Forked::Parent(pid)) => {
                    let _ = theirs.send(&Message::Forked(pid));
                    sys::exit_child(0);
                }
                Err(error) => {
                    let _ = theirs.send(&Message::Failed(Failure::of(&error)));
                    sys::exit_child(1);
                }
            }
        }
        Forked::Parent(middle) => {
            let said = ours.recv();
            if let Some(middle) = rustix::process::Pid::from_raw(middle) {
                let _ =
                    rustix::process::waitpid(Some(middle), rustix::process::WaitOptions::empty());
            }
            match said? {
                Some(Message::Forked(pid)) => Ok((pid, ours)),
                Some(Message::Failed(failure)) => Err(failure.into()),
                other => Err(Error::Container(format!(
                    "the process forking {what} sent {other:?}"
                ))),
            }
        }
    }
}

/// The forked child's side: runs `body` and reports the error that stopped
/// it.
fn become_child(ours: Channel, theirs: Channel, body: impl FnOnce(&Channel) -> Error) -> ! {
    drop(ours);
    let error = body(&theirs);
    let _ = theirs.send(&Message::Failed(Failure::of(&error)));
    sys::exit_child(crate::init::exit_code(&error));
}

/// Two connected ends: one for the runtime, one for the child.
pub(crate) fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .context(|| "creating the runtime's socketpair".into())?;
    Ok((Channel(a), Channel(b)))
}

impl Channel {
    pub(crate) fn send(&self, message: &Message) -> Result<()> {
        let mut packet = Vec::with_capacity(16);
        match message {
            Message::Go(pid) => {
                packet.push(b'G');
                packet.extend_from_slice(&pid.to_le_bytes());
            }
            Message::Forked(pid) => {
                packet.push(b'P');
                packet.extend_from_slice(&pid.to_le_bytes());
            }
            Message::RunHooks => packet.push(b'H'),
            Message::Created => packet.push(b'C'),
            Message::Failed(failure) => {
                packet.push(b'F');
                packet.push(match failure.fault {
                    None => b'-',
                    Some(ProgramFault::NotFound) => b'N',
                    Some(ProgramFault::NotExecutable) => b'X',
                });
                packet.extend_from_slice(failure.reason.as_bytes());
            }
        }
        rustix::net::send(&self.0, &packet, SendFlags::NOSIGNAL)
            .context(|| "talking to the container process".into())?;
        Ok(())
    }

    /// The next message, or `None` when the other end is gone. A failure
    /// report longer than the buffer arrives cut short, which is fine.
    pub(crate) fn recv(&self) -> Result<Option<Message>> {
        let mut buf = [0u8; 4096];
        let n = loop {
            match rustix::net::recv(&self.0, &mut buf, RecvFlags::empty()) {
                Err(rustix::io::Errno::INTR) => continue,
                other => {
                    break other
                        .context(|| "listening to the container process".into())?
                        .0;
                }
            }
        };
        let packet = &buf[..n];
        let message = match packet {
            [] => return Ok(None),
            [b'G', a, b, c, d] => Message::Go(i32::from_le_bytes([*a, *b, *c, *d])),
            [b'P', a, b, c, d] => Message::Forked(i32::from_le_bytes([*a, *b, *c, *d])),
            [b'H'] => Message::RunHooks,
            [b'C'] => Message::Created,
            [b'F', fault, reason @ ..] => Message::Failed(Failure {
                fault: match fault {
                    b'N' => Some(ProgramFault::NotFound),
                    b'X' => Some(ProgramFault::NotExecutable),
                    _ => None,
                },
                reason: String::from_utf8_lossy(reason).into_owned(),
            }),
            _ => {
                return Err(Error::Container(format!(
                    "unexpected message {packet:?} from the container process"
                )));
            }
        };
        Ok(Some(message))
    }

    /// Waits for `expected`; a failure report or a closed channel is an error.
    pub(crate) fn expect(&self, expected: &Message) -> Result<()> {
        match self.recv()? {
            Some(m) if &m == expected => Ok(()),
            Some(Message::Failed(failure)) => Err(failure.into()),
            Some(other) => Err(Error::Container(format!(
                "container process sent {other:?} where {expected:?} was expected"
            ))),
            None => Err(Error::Container(
                "the container process exited during setup".into(),
            )),
        }
    }
}
