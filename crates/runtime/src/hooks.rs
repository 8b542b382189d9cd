//! OCI hooks: programs run at points of the lifecycle with the container's
//! state on their stdin.

use std::io::{Read, Seek, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks, Spec};

use crate::error::{Error, Result};

/// The hooks of one kind in `spec`, such as `|h| h.poststop()`.
pub(crate) fn of_kind(spec: &Spec, kind: fn(&Hooks) -> &Option<Vec<Hook>>) -> &[Hook] {
    spec.hooks()
        .as_ref()
        .and_then(|h| kind(h).as_deref())
        .unwrap_or_default()
}

/// Runs `hooks` in order; the first failure stops the rest.
pub(crate) fn run(kind: &'static str, hooks: &[Hook], state: &[u8]) -> Result<()> {
    for hook in hooks {
        run_one(kind, hook, state)?;
    }
    Ok(())
}

/// Runs every hook even if some fail, as the spec asks of poststart and
/// poststop hooks, and returns the failures as warnings.
pub(crate) fn run_all(kind: &'static str, hooks: &[Hook], state: &[u8]) -> Vec<Error> {
    hooks
        .iter()
        .filter_map(|hook| run_one(kind, hook, state).err())
        .collect()
}

fn run_one(kind: &'static str, hook: &Hook, state: &[u8]) -> Result<()> {
    let failed = |reason: String| Error::Hook {
        kind,
        path: hook.path().clone(),
        reason,
    };
    // The hook's output goes to an in-memory file, read back if it fails:
    // a pipe, unread while we wait, would stall a hook that writes much.
    let output = rustix::fs::memfd_create("keel-hook-output", rustix::fs::MemfdFlags::CLOEXEC)
        .map(std::fs::File::from)
        .map_err(|e| failed(format!("cannot make a file for its output: {e}")))?;
    let share = || {
        output
            .try_clone()
            .map_err(|e| failed(format!("cannot share its output file: {e}")))
    };
    let args = hook.args().as_deref().unwrap_or_default();
    let mut command = Command::new(hook.path());
    if let Some((arg0, rest)) = args.split_first() {
        command.arg0(arg0).args(rest);
    }
    command
        .env_clear()
        .envs(
            hook.env()
                .iter()
                .flatten()
                .filter_map(|e| e.split_once('=')),
        )
        .stdin(Stdio::piped())
        .stdout(share()?)
        .stderr(share()?);
    let mut child = command
        .spawn()
        .map_err(|e| failed(format!("cannot start it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may exit without reading its input; that is its business.
        let _ = stdin.write_all(state);
    }
    let timeout = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(failed(format!("cannot wait for it: {e}"))),
        }
        if let Some(limit) = timeout
            && started.elapsed() >= limit
        {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed(format!("timed out after {}s", limit.as_secs())));
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    let mut output = output;
    let _ = output
        .rewind()
        .and_then(|()| output.take(4096).read_to_string(&mut text));
    Err(failed(format!("{status}; output: {:?}", text.trim())))
}
