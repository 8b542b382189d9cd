//! The container's terminal: a pty made inside the container, whose master
//! goes to whoever listens on the console socket (conmon, containerd-shim)
//! and whose slave becomes the process's stdio and controlling terminal.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use rustix::pty::OpenptFlags;

use crate::error::{Context, Result};

/// Connects to the console socket before the fork, while its path is
/// reachable.
pub(crate) fn connect(path: &Path) -> Result<OwnedFd> {
    let describe = || format!("connecting to the console socket {}", path.display());
    let socket = rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .context(describe)?;
    let addr = rustix::net::SocketAddrUnix::new(path.as_os_str().as_bytes()).context(describe)?;
    rustix::net::connect(&socket, &addr).context(describe)?;
    Ok(socket)
}

/// In the container, with its /dev in place: makes the pty, hands the
/// master over and takes the slave as stdio. With `console`, the slave is
/// also bound onto /dev/console.
pub(crate) fn attach(socket: &OwnedFd, size: Option<(u16, u16)>, console: bool) -> Result<()> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .context(|| "opening /dev/ptmx in the container".into())?;
    rustix::pty::grantpt(&master).context(|| "granting the pty".into())?;
    rustix::pty::unlockpt(&master).context(|| "unlocking the pty".into())?;
    let name = rustix::pty::ptsname(&master, Vec::new()).context(|| "naming the pty".into())?;
    if let Some((rows, cols)) = size {
        let winsize = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&master, winsize)
            .context(|| "setting the console size".into())?;
    }
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .context(|| format!("opening the pty {name:?}"))?;
    send_fd(socket, name.as_bytes(), &master)?;
    drop(master);
    if console {
        let target = Path::new("/dev/console");
        if !target.exists() {
            std::fs::File::create(target).context(|| "creating /dev/console".into())?;
        }
        crate::sys::mount(
            Some(name.as_c_str()),
            c"/dev/console",
            None,
            libc::MS_BIND,
            None,
        )
        .context(|| "binding the pty onto /dev/console".into())?;
    }
    rustix::stdio::dup2_stdin(&slave).context(|| "making the pty stdin".into())?;
    rustix::stdio::dup2_stdout(&slave).context(|| "making the pty stdout".into())?;
    rustix::stdio::dup2_stderr(&slave).context(|| "making the pty stderr".into())?;
    rustix::process::ioctl_tiocsctty(&slave)
        .context(|| "making the pty the controlling terminal".into())?;
    Ok(())
}

/// Sends `fd` with `name` as the payload, as runc does.
pub(crate) fn send_fd(socket: &impl AsFd, name: &[u8], fd: &impl AsFd) -> Result<()> {
    let fds = [fd.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        socket,
        &[IoSlice::new(name)],
        &mut control,
        SendFlags::empty(),
    )
    .context(|| "sending the pty master over the console socket".into())?;
    Ok(())
}
