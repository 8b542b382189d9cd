//! keel-monitor: the process that watches one container or exec, run by
//! the daemon (see `keel_engine::monitor`). A binary of its own, small and
//! built static for releases, since one runs per container.

use std::process::ExitCode;

fn main() -> ExitCode {
    // The daemon starts monitors from a sealed copy; one started from the
    // file on disk makes its own before it forks into a container.
    if let Err(error) = keel_runtime::sealed::reexec_unless_sealed(keel_runtime::sealed::Seal::Copy)
    {
        eprintln!("keel-monitor: {}", keel_runtime::report(&error));
        return ExitCode::FAILURE;
    }
    let args = match keel_engine::monitor::MonitorArgs::parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("keel-monitor: {message}");
            return ExitCode::from(2);
        }
    };
    match keel_engine::monitor::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("keel-monitor: {error}");
            ExitCode::FAILURE
        }
    }
}
