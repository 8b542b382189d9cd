//! keel-runtime: an OCI runtime with runc's command line, so containerd's
//! shim, conmon (Podman) and Docker can drive it as they drive runc.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use keel_runtime::{CreateOptions, ExecOptions, Runtime};
use lexopt::prelude::*;

const USAGE: &str = "\
Usage: keel-runtime [global options] <command> [options] <container-id> ...

An OCI runtime: runs containers from OCI bundles, with runc's command line.

Commands:
  create   create a container from a bundle (waits for start)
  start    start a created container
  run      create and start a container, then wait for it and delete it
  state    print a container's state as JSON
  kill     send a signal to a container (default TERM)
  delete   delete a container
  exec     run another process in a running container
  ps       list a container's processes
  pause    freeze every process of a container
  resume   thaw a paused container
  spec     write a default config.json
  features print what this runtime supports, as JSON

Global options:
  --root DIR          where container state lives (default /run/keel-runtime)
  --log FILE          also write errors to FILE
  --log-format FMT    text or json (for --log)
  --systemd-cgroup    take cgroup paths as slice:prefix:name; keel-runtime
                      places them where systemd would, without systemd
  --version, --help
";

fn main() -> ExitCode {
    let mut log = Log::default();
    match run(&mut log) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            log.error(&error);
            ExitCode::from(1)
        }
    }
}

#[derive(Default)]
struct Log {
    file: Option<PathBuf>,
    json: bool,
}

impl Log {
    fn error(&self, error: &anyhow::Error) {
        let message = format!("{error:#}");
        eprintln!("keel-runtime: {message}");
        self.write("error", &message);
    }

    fn warn(&self, message: &str) {
        eprintln!("keel-runtime: warning: {message}");
        self.write("warning", message);
    }

    /// runc's log lines, which containerd reads back on failure.
    fn write(&self, level: &str, message: &str) {
        let Some(path) = &self.file else { return };
        let line = if self.json {
            let time = keel_time::now_rfc3339();
            serde_json::json!({"level": level, "msg": message, "time": time}).to_string()
        } else {
            format!("{level}: {message}")
        };
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(file, "{line}");
        }
    }
}

fn run(log: &mut Log) -> Result<u8> {
    let mut parser = lexopt::Parser::from_env();
    let mut root = PathBuf::from("/run/keel-runtime");
    let mut systemd_cgroup = false;
    let command = loop {
        match parser.next()? {
            Some(Long("root")) => root = parser.value()?.into(),
            Some(Long("log")) => log.file = Some(parser.value()?.into()),
            Some(Long("log-format")) => {
                let format: String = parser.value()?.string()?;
                log.json = match format.as_str() {
                    "json" => true,
                    "text" => false,
                    other => bail!("unknown --log-format {other:?}: use text or json"),
                };
            }
            Some(Long("systemd-cgroup")) => systemd_cgroup = true,
            // Accepted for runc compatibility; they change nothing here.
            Some(Long("debug")) => {}
            Some(Long("version") | Short('v')) => {
                println!(
                    "keel-runtime version {}\nspec: 1.2.0",
                    env!("CARGO_PKG_VERSION")
                );
                return Ok(0);
            }
            Some(Long("help") | Short('h')) => {
                print!("{USAGE}");
                return Ok(0);
            }
            Some(Value(command)) => break command.string()?,
            Some(other) => return Err(other.unexpected().into()),
            None => bail!("no command given\n\n{USAGE}"),
        }
    };
    // The commands whose processes enter a container run from a sealed
    // view of this binary, so that the container cannot reach the file.
    if matches!(command.as_str(), "create" | "run" | "exec") {
        keel_runtime::sealed::reexec_unless_sealed(keel_runtime::sealed::Seal::View)?;
    }
    let runtime = Runtime::new(root, systemd_cgroup);
    match command.as_str() {
        "create" => {
            let (id, options, _) = create_options(&mut parser, false)?;
            runtime.create(&id, &options)?;
            Ok(0)
        }
        "run" => {
            let (id, options, detach) = create_options(&mut parser, true)?;
            let code = runtime.run(&id, &options, detach)?;
            Ok(code.clamp(0, 255) as u8)
        }
        "start" => {
            runtime.start(&only_id(&mut parser, &[])?.0)?;
            Ok(0)
        }
        "state" => {
            let state = runtime.state(&only_id(&mut parser, &[])?.0)?;
            println!("{}", serde_json::to_string_pretty(&state)?);
            Ok(0)
        }
        "kill" => {
            let mut all = false;
            let mut positional = Vec::new();
            while let Some(arg) = parser.next()? {
                match arg {
                    Long("all") | Short('a') => all = true,
                    Value(v) => positional.push(v.string()?),
                    other => return Err(other.unexpected().into()),
                }
            }
            let (id, signal) = match positional.as_slice() {
                [id] => (id, "TERM"),
                [id, signal] => (id, signal.as_str()),
                _ => bail!("kill takes a container id and optionally a signal"),
            };
            runtime.kill(id, keel_runtime::parse_signal(signal)?, all)?;
            Ok(0)
        }
        "delete" => {
            let (id, flags) = only_id(&mut parser, &["force"])?;
            for warning in runtime.delete(&id, flags.contains(&"force"))? {
                log.warn(&keel_runtime::report(&warning));
            }
            Ok(0)
        }
        "pause" => {
            runtime.pause(&only_id(&mut parser, &[])?.0)?;
            Ok(0)
        }
        "resume" => {
            runtime.resume(&only_id(&mut parser, &[])?.0)?;
            Ok(0)
        }
        "ps" => ps(&runtime, &mut parser),
        "exec" => {
            let (id, options) = exec_options(&mut parser)?;
            let code = runtime.exec(&id, &options)?;
            // Detached, the answer is the process's pid, not an exit code.
            Ok(if options.detach {
                0
            } else {
                code.clamp(0, 255) as u8
            })
        }
        "spec" => {
            let mut bundle = PathBuf::from(".");
            while let Some(arg) = parser.next()? {
                match arg {
                    Long("bundle") | Short('b') => bundle = parser.value()?.into(),
                    other => return Err(other.unexpected().into()),
                }
            }
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("{} exists already; remove it first", path.display());
            }
            let json = serde_json::to_string_pretty(&keel_runtime::default_spec())?;
            std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
            Ok(0)
        }
        "features" => {
            println!(
                "{}",
                serde_json::to_string_pretty(&keel_runtime::features())?
            );
            Ok(0)
        }
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

/// One container id, with the given boolean long flags (and their first
/// letter as short flag).
fn only_id(
    parser: &mut lexopt::Parser,
    flags: &[&'static str],
) -> Result<(String, Vec<&'static str>)> {
    let mut id = None;
    let mut seen = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Value(v) if id.is_none() => id = Some(v.string()?),
            Long(name) if flags.contains(&name) => seen.extend(flags.iter().find(|f| **f == name)),
            Short(c) if flags.iter().any(|f| f.starts_with(c)) => {
                seen.extend(flags.iter().find(|f| f.starts_with(c)));
            }
            other => return Err(other.unexpected().into()),
        }
    }
    Ok((id.context("missing the container id")?, seen))
}

fn create_options(parser: &mut lexopt::Parser, run: bool) -> Result<(String, CreateOptions, bool)> {
    let mut options = CreateOptions {
        bundle: PathBuf::from("."),
        ..CreateOptions::default()
    };
    let mut id = None;
    let mut detach = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("bundle") | Short('b') => options.bundle = parser.value()?.into(),
            Long("pid-file") => options.pid_file = Some(parser.value()?.into()),
            Long("console-socket") => options.console_socket = Some(parser.value()?.into()),
            Long("no-pivot") => options.no_pivot = true,
            Long("preserve-fds") => {
                options.preserve_fds = number(parser.value()?, "--preserve-fds")?
            }
            // Session keyrings are not created; accepted as runc does.
            Long("no-new-keyring") => {}
            Long("detach") | Short('d') if run => detach = true,
            Value(v) if id.is_none() => id = Some(v.string()?),
            other => return Err(other.unexpected().into()),
        }
    }
    Ok((id.context("missing the container id")?, options, detach))
}

fn exec_options(parser: &mut lexopt::Parser) -> Result<(String, ExecOptions)> {
    let mut options = ExecOptions::default();
    let mut id = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("process") | Short('p') => options.process = Some(parser.value()?.into()),
            Long("tty") | Short('t') => options.tty = true,
            Long("detach") | Short('d') => options.detach = true,
            Long("pid-file") => options.pid_file = Some(parser.value()?.into()),
            Long("console-socket") => options.console_socket = Some(parser.value()?.into()),
            Long("cwd") => options.cwd = Some(parser.value()?.into()),
            Long("env") | Short('e') => options.env.push(parser.value()?.string()?),
            Long("user") | Short('u') => {
                let value: String = parser.value()?.string()?;
                let (uid, gid) = value.split_once(':').unwrap_or((&value, "0"));
                let parse = |v: &str| {
                    v.parse::<u32>().with_context(|| {
                        format!("invalid --user {value:?}: use UID[:GID] with numbers")
                    })
                };
                options.user = Some((parse(uid)?, parse(gid)?));
            }
            Long("additional-gids") | Short('g') => {
                options
                    .additional_gids
                    .push(number(parser.value()?, "--additional-gids")?);
            }
            Long("cap") | Short('c') => options.capabilities.push(parser.value()?.string()?),
            Long("no-new-privs") => options.no_new_privileges = true,
            Long("preserve-fds") => {
                options.preserve_fds = number(parser.value()?, "--preserve-fds")?
            }
            // Security labels need AppArmor or SELinux, which this machine
            // class does not run; accepted so callers need not special-case.
            Long("process-label" | "apparmor" | "cgroup") => {
                parser.value()?;
            }
            Long("ignore-paused") => {}
            Value(v) if id.is_none() => id = Some(v.string()?),
            Value(v) => {
                options.args.push(v.string()?);
                options
                    .args
                    .extend(parser.raw_args()?.map(|a| a.to_string_lossy().into_owned()));
            }
            other => return Err(other.unexpected().into()),
        }
    }
    Ok((id.context("missing the container id")?, options))
}

fn ps(runtime: &Runtime, parser: &mut lexopt::Parser) -> Result<u8> {
    let mut json = false;
    let mut id = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("format") | Short('f') => {
                json = match parser.value()?.string()?.as_str() {
                    "json" => true,
                    "table" => false,
                    other => bail!("unknown --format {other:?}: use table or json"),
                }
            }
            Value(v) if id.is_none() => id = Some(v.string()?),
            other => return Err(other.unexpected().into()),
        }
    }
    let pids = runtime.processes(&id.context("missing the container id")?)?;
    if json {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    println!("{:>8}  CMD", "PID");
    for pid in pids {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        println!("{pid:>8}  {}", cmd.join(" "));
    }
    Ok(0)
}

fn number(value: OsString, flag: &str) -> Result<u32> {
    let text = value.string()?;
    text.parse()
        .with_context(|| format!("invalid {flag} {text:?}: expected a whole number"))
}
