//! keel-monitor: the process that watches one container or exec, started
//! by the daemon, which sends it what to run on its stdin (see the crate's
//! library). Built static for releases, since one runs per container.

use std::process::ExitCode;

fn main() -> ExitCode {
    // The daemon starts monitors from a sealed copy; one started from the
    // file on disk makes its own before it forks into a container.
    if let Err(error) = keel_runtime::sealed::reexec_unless_sealed(keel_runtime::sealed::Seal::Copy)
    {
        eprintln!("keel-monitor: {}", keel_runtime::report(&error));
        return ExitCode::FAILURE;
    }
    if std::env::args_os().len() > 1 {
        eprintln!("keel-monitor: takes no arguments; the daemon starts it and speaks on its stdin");
        return ExitCode::from(2);
    }
    match keel_monitor::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("keel-monitor: {}", keel_runtime::report(&error));
            ExitCode::FAILURE
        }
    }
}
