//! keel: the command line a Docker user already knows, talking to the
//! Keel daemon over its socket (`keel daemon` runs the daemon,
//! keel-daemon).

mod build;
mod client;
mod compose;
mod containers;
mod cp;
mod daemon;
mod diff;
mod events;
mod format;
mod images;
mod networks;
mod objects;
mod prune;
mod registry;
mod session;
mod stats;
mod template;
mod times;
mod update;
mod volumes;

use std::io::ErrorKind;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use lexopt::prelude::*;

use keel_api_types::system::SystemVersion;

use crate::client::{Client, Upload};

const USAGE: &str = "Usage:  keel [OPTIONS] COMMAND

A Docker-compatible container engine

Options:
  -H, --host string    Daemon socket to connect to (unix:///PATH; default
                       $KEEL_HOST, else unix:///run/keel/keel.sock)

Commands:
  run         Create and run a new container from an image
  create      Create a new container
  start       Start one or more stopped containers
  ps          List containers
  logs        Fetch the logs of a container
  exec        Execute a command in a running container
  wait        Block until one or more containers stop, then print their exit codes
  stop        Stop one or more running containers
  restart     Restart one or more containers
  rename      Rename a container
  kill        Kill one or more running containers
  rm          Remove one or more containers
  export      Export a container's filesystem as a tar archive
  cp          Copy files/folders between a container and the local filesystem
  commit      Create a new image from a container's changes
  port        List port mappings or a specific mapping for the container
  attach      Attach local standard input, output, and error streams to a running container
  pause       Pause all processes within one or more containers
  unpause     Unpause all processes within one or more containers
  top         Display the running processes of a container
  diff        Inspect changes to files or directories on a container's filesystem
  update      Update configuration of one or more containers
  stats       Display a live stream of container(s) resource usage statistics
  container   Manage containers (ls, run, create, start, logs, wait, stop, kill, rm, inspect, prune)
  build       Build an image from a Dockerfile
  builder     Manage the build cache (prune)
  images      List images
  import      Import the contents from a tarball to create a filesystem image
  inspect     Return low-level information on images
  history     Show the history of an image
  load        Load an image from a tar archive or STDIN
  rmi         Remove one or more images
  pull        Download an image from a registry
  push        Upload an image to a registry
  login       Log in to a registry
  logout      Log out from a registry
  search      Search Docker Hub (or REGISTRY/TERM) for images
  save        Save one or more images to a tar archive (streamed to STDOUT by default)
  tag         Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
  image       Manage images (ls, rm, tag, history, inspect, load, save, import, pull, push, prune)
  volume      Manage volumes (create, ls, inspect, rm, prune)
  network     Manage networks (create, ls, inspect, rm, connect, disconnect, prune)
  info        Display system-wide information
  events      Get real time events from the server
  system df   Show disk usage
  system prune Remove unused data (-a, --volumes, -f, --filter)
  compose     Define and run multi-container applications (up, down, ps, logs, exec, config, ...)
  version     Show the Keel version information
  daemon      Run the Keel daemon (--root DIR, -H unix:///PATH; $KEEL_ROOT, $KEEL_HOST;
              --bridge NAME, --bip ADDRESS/PREFIX for the default bridge;
              --default-address-pool base=CIDR,size=PREFIX for user networks;
              --insecure-registry HOST[:PORT]; --init-path PATH for --init;
              --disk-reserve SIZE left free when unpacking, default 1g or 5%)
";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => match error.downcast_ref::<containers::Exit>() {
            Some(exit) => {
                if let Some(message) = &exit.message {
                    eprintln!("{message}");
                }
                ExitCode::from(exit.code)
            }
            None => {
                eprintln!("{error:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// An argument error, with where to read the command's usage.
pub fn usage(error: lexopt::Error, synopsis: &str) -> anyhow::Error {
    anyhow!("{error}\nUsage:  keel {synopsis}")
}

fn run() -> Result<()> {
    let mut parser = lexopt::Parser::from_env();
    let mut host: Option<String> = None;
    let verb = loop {
        match parser.next()? {
            Some(Short('H') | Long("host")) => host = Some(parser.value()?.string()?),
            Some(Long("help") | Short('h')) => {
                print!("{USAGE}");
                return Ok(());
            }
            Some(Long("version") | Short('v')) => {
                println!("Keel version {}", env!("CARGO_PKG_VERSION"));
                return Ok(());
            }
            Some(Value(verb)) => break verb.string()?,
            Some(other) => return Err(usage(other.unexpected(), "[OPTIONS] COMMAND")),
            None => {
                print!("{USAGE}");
                return Ok(());
            }
        }
    };
    if verb == "daemon" {
        return daemon::exec(host.as_deref(), parser.raw_args()?);
    }
    let socket = keel_api_types::endpoint::socket(host).map_err(|e| anyhow!(e))?;
    let root = keel_api_types::endpoint::root();
    let client = connect(&socket, &root)?;
    let parser = &mut parser;
    // `keel run` is `keel container run`, `keel images` is `keel image ls`:
    // the short forms and the management commands share one table each.
    let short_form = match verb.as_str() {
        "images" => Some(images::images as Command),
        "build" => Some(build::build as Command),
        "builder" => Some(prune::builder as Command),
        "rmi" => Some(images::rmi as Command),
        "inspect" => Some(images::inspect as Command),
        "tag" | "history" | "load" | "save" | "import" => image_command(&verb),
        "ls" | "list" | "remove" | "prune" => None,
        other => container_command(other),
    };
    if let Some(command) = short_form {
        return command(&client, parser);
    }
    match verb.as_str() {
        group @ ("container" | "image") => {
            let sub = match parser.next()? {
                Some(Value(sub)) => sub.string()?,
                _ => bail!("Usage:  keel {group} COMMAND\nSee 'keel --help'"),
            };
            let command = if group == "container" {
                container_command(&sub)
            } else {
                image_command(&sub)
            };
            match command {
                Some(command) => command(&client, parser),
                None => {
                    bail!("keel {group}: '{sub}' is not a keel {group} command.\nSee 'keel --help'")
                }
            }
        }
        "network" => {
            let sub = match parser.next()? {
                Some(Value(sub)) => sub.string()?,
                _ => bail!(
                    "Usage:  keel network COMMAND\n\nCommands: connect, create, disconnect, inspect, ls, prune, rm"
                ),
            };
            match networks::command(&sub) {
                Some(command) => command(&client, parser),
                None => {
                    bail!("keel network: '{sub}' is not a keel network command.\nSee 'keel --help'")
                }
            }
        }
        "volume" => {
            let sub = match parser.next()? {
                Some(Value(sub)) => sub.string()?,
                _ => {
                    bail!("Usage:  keel volume COMMAND\n\nCommands: create, inspect, ls, prune, rm")
                }
            };
            match volumes::command(&sub) {
                Some(command) => command(&client, parser),
                None => {
                    bail!("keel volume: '{sub}' is not a keel volume command.\nSee 'keel --help'")
                }
            }
        }
        "system" => match parser.next()? {
            Some(Value(sub)) if sub == "df" => images::system_df(&client, parser),
            Some(Value(sub)) if sub == "events" => events::events(&client, parser),
            Some(Value(sub)) if sub == "prune" => prune::system(&client, parser),
            _ => bail!("Usage:  keel system COMMAND\n\nCommands: df, events, prune"),
        },
        "events" => events::events(&client, parser),
        "compose" => compose::compose(&client, parser),
        "pull" => registry::pull(&client, parser),
        "push" => registry::push(&client, parser),
        "login" => registry::login(&client, parser),
        "logout" => registry::logout(&client, parser),
        "search" => registry::search(&client, parser),
        "version" => version(&client),
        "info" => info(&client),
        other => bail!("keel: '{other}' is not a keel command.\nSee 'keel --help'"),
    }
}

type Command = fn(&Client, &mut lexopt::Parser) -> Result<()>;

/// Asks before something that cannot be undone, as docker does.
pub fn confirm(warning: &str) -> Result<bool> {
    use std::io::Write;
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// `keel container VERB`.
fn container_command(verb: &str) -> Option<Command> {
    Some(match verb {
        "ls" | "list" | "ps" => containers::ps,
        "run" => containers::run,
        "create" => containers::create,
        "start" => containers::start,
        "logs" => containers::logs,
        "exec" => containers::exec,
        "wait" => containers::wait,
        "stop" => containers::stop,
        "restart" => containers::restart,
        "rename" => containers::rename,
        "kill" => containers::kill,
        "rm" | "remove" => containers::rm,
        "export" => containers::export,
        "cp" => cp::cp,
        "port" => containers::port,
        "commit" => images::commit,
        "pause" => containers::pause,
        "attach" => containers::attach,
        "unpause" => containers::unpause,
        "top" => containers::top,
        "diff" => diff::diff,
        "update" => update::update,
        "stats" => stats::stats,
        "prune" => prune::containers,
        "inspect" => images::inspect,
        _ => return None,
    })
}

/// `keel image VERB`.
fn image_command(verb: &str) -> Option<Command> {
    Some(match verb {
        "ls" | "list" => images::images,
        "rm" | "remove" => images::rmi,
        "tag" => images::tag,
        "history" => images::history,
        "inspect" => images::inspect,
        "load" => images::load,
        "save" => images::save,
        "import" => images::import,
        "build" => build::build,
        "prune" => prune::images,
        "pull" => registry::pull,
        "push" => registry::push,
        _ => return None,
    })
}

/// A client for the daemon at `socket`; as root, starts the daemon when
/// none answers there, as a Docker user would expect the engine to be up
/// (unless `KEEL_AUTOSTART=0`, for service managers and tests that own
/// their daemon).
fn connect(socket: &Path, root: &Path) -> Result<Client> {
    match UnixStream::connect(socket) {
        Ok(_) => {}
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::NotFound | ErrorKind::ConnectionRefused
            ) && rustix::process::geteuid().is_root()
                && std::env::var_os("KEEL_AUTOSTART").is_none_or(|v| v != "0") =>
        {
            daemon::start_in_background(root, socket)?;
        }
        Err(_) => {}
    }
    Ok(Client::new(socket))
}

fn version(client: &Client) -> Result<()> {
    println!(
        "Client:\n Version:           {}\n API version:       {}",
        env!("CARGO_PKG_VERSION"),
        keel_api_types::API_VERSION
    );
    let server: SystemVersion =
        serde_json::from_value(client.json("GET", "/version", Upload::None)?)
            .context("the daemon's /version")?;
    println!(
        "\nServer: Keel\n Engine:\n  Version:          {}\n  API version:      {} (minimum version {})\n  OS/Arch:          {}/{}\n  Kernel:           {}",
        server.version,
        server.api_version,
        server.min_api_version,
        server.os,
        server.arch,
        server.kernel_version,
    );
    Ok(())
}

fn info(client: &Client) -> Result<()> {
    let info = client.json("GET", "/info", Upload::None)?;
    println!(
        "Server:\n Containers: {}\n Images: {}\n Server Version: {}\n Storage Driver: {}\n Cgroup Driver: {}\n Kernel Version: {}\n Operating System: {}\n Architecture: {}\n CPUs: {}\n Name: {}\n Docker Root Dir: {}",
        info["Containers"],
        info["Images"],
        info["ServerVersion"].as_str().unwrap_or_default(),
        info["Driver"].as_str().unwrap_or_default(),
        info["CgroupDriver"].as_str().unwrap_or_default(),
        info["KernelVersion"].as_str().unwrap_or_default(),
        info["OperatingSystem"].as_str().unwrap_or_default(),
        info["Architecture"].as_str().unwrap_or_default(),
        info["NCPU"],
        info["Name"].as_str().unwrap_or_default(),
        info["DockerRootDir"].as_str().unwrap_or_default(),
    );
    println!(
        " Registry: {}\n Insecure Registries:",
        info["IndexServerAddress"].as_str().unwrap_or_default()
    );
    let registries = &info["RegistryConfig"];
    let named = registries["IndexConfigs"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, config)| config["Secure"] == false)
        .map(|(name, _)| name.as_str());
    let cidrs = registries["InsecureRegistryCIDRs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|cidr| cidr.as_str());
    for registry in named.chain(cidrs) {
        println!("  {registry}");
    }
    Ok(())
}
