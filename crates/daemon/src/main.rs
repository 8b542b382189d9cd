//! keel-daemon: serves the engine as the Docker Engine API on a unix
//! socket until SIGTERM or SIGINT. `keel daemon` runs it, and the CLI
//! starts it in the background when none answers.

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use keel_api::Daemon;
use lexopt::prelude::*;

const SYNOPSIS: &str = "keel daemon [--root DIR] [-H unix:///PATH] [--bridge NAME] [--bip ADDRESS/PREFIX] [--insecure-registry HOST[:PORT]]... [--default-address-pool base=CIDR,size=PREFIX]... [--init-path PATH] [--disk-reserve SIZE]";

fn main() -> ExitCode {
    match parse().and_then(|(root, socket, options)| run(&root, &socket, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("keel daemon: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The command line: `--root` (else `$KEEL_ROOT`), `-H` (else
/// `$KEEL_HOST`), and the engine's options.
fn parse() -> Result<(PathBuf, PathBuf, keel_engine::Options)> {
    let mut parser = lexopt::Parser::from_env();
    let mut root = keel_api_types::endpoint::root();
    let mut host = None;
    let mut network = keel_engine::NetworkOptions::default();
    let mut bip = None;
    let mut insecure_registries = Vec::new();
    let mut init_path = None;
    let mut disk_reserve = keel_image::DiskReserve::default();
    let usage = |error: lexopt::Error| anyhow!("{error}\nUsage:  {SYNOPSIS}");
    while let Some(arg) = parser.next()? {
        match arg {
            Long("root") | Long("data-root") => root = PathBuf::from(parser.value()?),
            Short('H') | Long("host") => host = Some(parser.value()?.string()?),
            Short('b') | Long("bridge") => network.bridge = parser.value()?.string()?,
            Long("bip") => bip = Some(parser.value()?.string()?),
            Long("insecure-registry") => insecure_registries.push(parser.value()?.string()?),
            Long("default-address-pool") => {
                let text = parser.value()?.string()?;
                network.address_pools.push(text.parse()?);
            }
            Long("init-path") => init_path = Some(PathBuf::from(parser.value()?)),
            Long("disk-reserve") => {
                let text = parser.value()?.string()?;
                let bytes = keel_units::ram_in_bytes(&text).with_context(|| {
                    format!(
                        "invalid --disk-reserve {text:?}: give a size such as 2g, or 0 for none"
                    )
                })?;
                disk_reserve = keel_image::DiskReserve::Bytes(bytes.max(0) as u64);
            }
            Long("help") | Short('h') => {
                println!("Usage:  {SYNOPSIS}");
                std::process::exit(0);
            }
            other => return Err(usage(other.unexpected())),
        }
    }
    let socket = keel_api_types::endpoint::socket(host).map_err(|e| anyhow!(e))?;
    if let Some(bip) = bip {
        network
            .set_bip(&bip)
            .map_err(|e| anyhow!("invalid --bip {bip}: {e}"))?;
    }
    let options = keel_engine::Options {
        network,
        insecure_registries,
        init_path,
        disk_reserve,
    };
    Ok((root, socket, options))
}

fn run(root: &Path, socket: &Path, options: keel_engine::Options) -> Result<()> {
    if UnixStream::connect(socket).is_ok() {
        bail!(
            "a daemon already listens on {}; stop it or choose another socket with -H",
            socket.display()
        );
    }
    // Installed beside keel-daemon (`scripts/demo` puts them in
    // /usr/local/bin).
    let monitor = std::env::current_exe()?.with_file_name("keel-monitor");
    if !monitor.exists() {
        bail!(
            "cannot find {}: keel-monitor is installed beside keel-daemon (cargo builds both)",
            monitor.display()
        );
    }
    let daemon = Arc::new(
        Daemon::open(root, &monitor, options)
            .with_context(|| format!("cannot open the Keel root {}", root.display()))?,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let served = runtime.block_on(async {
        if let Some(dir) = socket.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        match std::fs::remove_file(socket) {
            Err(error) if error.kind() != ErrorKind::NotFound => {
                return Err(error).with_context(|| {
                    format!("cannot remove the stale socket {}", socket.display())
                });
            }
            _ => {}
        }
        let listener = tokio::net::UnixListener::bind(socket)
            .with_context(|| format!("cannot listen on {}", socket.display()))?;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))?;
        eprintln!(
            "keel daemon: listening on unix://{} (root {})",
            socket.display(),
            root.display()
        );
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let result = tokio::select! {
            served = keel_api::serve(listener, daemon) => served.context("serving the API"),
            _ = terminate.recv() => Ok(()),
            _ = tokio::signal::ctrl_c() => Ok(()),
        };
        std::fs::remove_file(socket).ok();
        eprintln!("keel daemon: stopped");
        result
    });
    // Followers of logs that nobody reads any more must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served
}
