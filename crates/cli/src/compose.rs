//! `keel compose`: compose projects run by Keel itself, named and
//! labelled as compose v2 names and labels them
//! (`com.docker.compose.project`, `.service`, `.container-number`, ...),
//! so `keel compose` and `docker compose` see and manage each other's
//! projects. The files are read by keel-compose; the containers,
//! networks and volumes are made through the Engine API.

mod up;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use keel_api_types::objects::{ContainerInspectState, ContainerSummary};
use keel_compose::Project;
use lexopt::prelude::*;

use crate::client::{Client, Upload, encode};
use crate::usage;

pub const PROJECT_LABEL: &str = "com.docker.compose.project";
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
pub const NUMBER_LABEL: &str = "com.docker.compose.container-number";
pub const ONEOFF_LABEL: &str = "com.docker.compose.oneoff";
pub const DEPENDS_ON_LABEL: &str = "com.docker.compose.depends_on";
pub const NETWORK_LABEL: &str = "com.docker.compose.network";
pub const VOLUME_LABEL: &str = "com.docker.compose.volume";

const USAGE: &str = "Usage:  keel compose [OPTIONS] COMMAND

Define and run multi-container applications with Keel

Options:
  -f, --file stringArray       Compose configuration files
  -p, --project-name string    Project name
      --profile stringArray    Specify a profile to enable

Commands:
  config      Parse, resolve and render compose file in canonical format
  down        Stop and remove containers, networks (-v: and volumes)
  exec        Execute a command in a running container
  logs        View output from containers
  port        Print the public port for a port binding
  ps          List containers
  restart     Restart service containers
  start       Start services
  stop        Stop services
  up          Create and start containers (-d, --wait, --remove-orphans)
";

/// The options before the command, as compose's.
#[derive(Debug, Default)]
struct ProjectOptions {
    files: Vec<std::path::PathBuf>,
    name: Option<String>,
    profiles: Vec<String>,
}

impl ProjectOptions {
    fn load(&self) -> Result<Project> {
        let options = keel_compose::Options {
            files: self.files.clone(),
            project_name: self.name.clone(),
            profiles: self.profiles.clone(),
            current_dir: std::env::current_dir().context("the current directory")?,
            environment: std::env::vars().collect(),
        };
        Ok(keel_compose::load(&options)?)
    }

    /// The project's model, when files are given or no name is (then the
    /// name is the model's), else only the name: verbs that act on what
    /// exists find it by its labels, as compose's projectOrName.
    fn project_or_name(&self) -> Result<(String, Option<Project>)> {
        if let (Some(name), true) = (&self.name, self.files.is_empty()) {
            keel_compose::check_project_name(name)?;
            return Ok((name.clone(), None));
        }
        match self.load() {
            Ok(project) => Ok((project.name.clone(), Some(project))),
            Err(error) => match std::env::var("COMPOSE_PROJECT_NAME") {
                Ok(name) if !name.is_empty() => Ok((name, None)),
                _ => Err(error),
            },
        }
    }
}

/// `keel compose [-f FILE]... [-p NAME] [--profile P]... COMMAND`
pub fn compose(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let mut options = ProjectOptions::default();
    let verb = loop {
        match parser.next()? {
            Some(Short('f') | Long("file")) => options.files.push(parser.value()?.into()),
            Some(Short('p') | Long("project-name")) => {
                options.name = Some(parser.value()?.string()?)
            }
            Some(Long("profile")) => options.profiles.push(parser.value()?.string()?),
            Some(Short('h') | Long("help")) | None => {
                print!("{USAGE}");
                return Ok(());
            }
            Some(Value(verb)) => break verb.string()?,
            Some(other) => return Err(usage(other.unexpected(), "compose [OPTIONS] COMMAND")),
        }
    };
    match verb.as_str() {
        "config" => config(&options, parser),
        "up" => up::up(client, &options, parser),
        "down" => up::down(client, &options, parser),
        "ps" => ps(client, &options, parser),
        "logs" => logs(client, &options, parser),
        "exec" => exec(client, &options, parser),
        "port" => port(client, &options, parser),
        "start" => start(client, &options, parser),
        "stop" => stop(client, &options, parser),
        "restart" => restart(client, &options, parser),
        other => bail!("keel compose: unknown command {other:?}\n\n{USAGE}"),
    }
}

/// A line of compose's progress on stderr: ` Container p-web-1  Started`.
pub fn event(resource: &str, name: &str, status: &str) {
    eprintln!(" {resource} {name}  {status}");
}

/// The project's containers (one-off ones left out), by service and
/// number; with `all` the stopped ones too.
pub fn containers(client: &Client, project: &str, all: bool) -> Result<Vec<ContainerSummary>> {
    let filters = serde_json::json!({"label": [
        format!("{PROJECT_LABEL}={project}"),
        format!("{ONEOFF_LABEL}=False"),
    ]});
    let listed = client.json(
        "GET",
        &format!(
            "/containers/json?all={}&filters={}",
            u8::from(all),
            encode(&filters.to_string())
        ),
        Upload::None,
    )?;
    let mut containers: Vec<ContainerSummary> =
        serde_json::from_value(listed).context("the daemon's container list")?;
    containers.sort_by_key(|c| (service_of(c).to_owned(), number_of(c)));
    Ok(containers)
}

pub fn service_of(container: &ContainerSummary) -> &str {
    container
        .labels
        .get(SERVICE_LABEL)
        .map_or("", String::as_str)
}

pub fn number_of(container: &ContainerSummary) -> u32 {
    container
        .labels
        .get(NUMBER_LABEL)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Services in an order that puts each after those it depends on: the
/// model's, or for a project known only by name, the one its
/// containers' `depends_on` labels give.
pub fn service_order(project: Option<&Project>, containers: &[ContainerSummary]) -> Vec<String> {
    if let Some(project) = project {
        return project.dependency_order();
    }
    let mut dependencies: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for container in containers {
        let listed = container
            .labels
            .get(DEPENDS_ON_LABEL)
            .map_or("", String::as_str);
        let entry = dependencies.entry(service_of(container)).or_default();
        // Each entry is SERVICE:CONDITION:RESTART.
        entry.extend(
            listed
                .split(',')
                .filter_map(|d| d.split(':').next())
                .filter(|d| !d.is_empty()),
        );
    }
    fn visit<'a>(
        name: &'a str,
        dependencies: &BTreeMap<&'a str, Vec<&'a str>>,
        seen: &mut Vec<&'a str>,
        order: &mut Vec<String>,
    ) {
        if seen.contains(&name) {
            return;
        }
        seen.push(name);
        for dependency in dependencies.get(name).into_iter().flatten() {
            visit(dependency, dependencies, seen, order);
        }
        if dependencies.contains_key(name) {
            order.push(name.to_owned());
        }
    }
    let (mut seen, mut order) = (Vec::new(), Vec::new());
    for name in dependencies.keys() {
        visit(name, &dependencies, &mut seen, &mut order);
    }
    order
}

pub fn inspect_state(client: &Client, id: &str) -> Result<ContainerInspectState> {
    let inspected = client.json("GET", &format!("/containers/{id}/json"), Upload::None)?;
    Ok(serde_json::from_value(inspected)?)
}

/// Services named after the command's options, checked against the
/// model when there is one.
fn services_given(parser: &mut lexopt::Parser, synopsis: &str) -> Result<Vec<String>> {
    let mut services = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Value(value) => services.push(value.string()?),
            other => return Err(usage(other.unexpected(), synopsis)),
        }
    }
    Ok(services)
}

fn check_services(project: Option<&Project>, services: &[String]) -> Result<()> {
    if let Some(project) = project
        && let Some(unknown) = services.iter().find(|s| !project.services.contains_key(*s))
    {
        bail!("no such service: {unknown}");
    }
    Ok(())
}

fn selected<'a>(
    containers: &'a [ContainerSummary],
    services: &[String],
) -> Vec<&'a ContainerSummary> {
    containers
        .iter()
        .filter(|c| services.is_empty() || services.iter().any(|s| s == service_of(c)))
        .collect()
}

/// `keel compose config`: the resolved model, as compose prints it.
fn config(options: &ProjectOptions, parser: &mut lexopt::Parser) -> Result<()> {
    if let Some(arg) = parser.next()? {
        return Err(usage(arg.unexpected(), "compose config"));
    }
    print!("{}", options.load()?.to_yaml());
    Ok(())
}

/// `keel compose ps [-a] [-q] [--format F] [SERVICE...]`
fn ps(client: &Client, options: &ProjectOptions, parser: &mut lexopt::Parser) -> Result<()> {
    const SYNOPSIS: &str = "compose ps [OPTIONS] [SERVICE...]";
    let (mut all, mut quiet, mut format, mut services) = (false, false, None, Vec::new());
    while let Some(arg) = parser.next()? {
        match arg {
            Short('a') | Long("all") => all = true,
            Short('q') | Long("quiet") => quiet = true,
            Long("format") => format = Some(parser.value()?.string()?),
            Value(value) => services.push(value.string()?),
            other => return Err(usage(other.unexpected(), SYNOPSIS)),
        }
    }
    let (name, project) = options.project_or_name()?;
    check_services(project.as_ref(), &services)?;
    let listed = containers(client, &name, all)?;
    let now = keel_time::now_unix();
    let mut rows = Vec::new();
    for c in selected(&listed, &services) {
        let command = match c.command.chars().count() {
            0..=20 => c.command.clone(),
            _ => c.command.chars().take(19).collect::<String>() + "…",
        };
        rows.push(serde_json::json!({
            "ID": c.id.chars().take(12).collect::<String>(),
            "Name": c.name(),
            "Image": c.image,
            "Command": format!("\"{command}\""),
            "Project": name,
            "Service": service_of(c),
            "RunningFor": keel_time::ago(c.created, now),
            "State": c.state,
            "Status": c.status,
            "Ports": crate::containers::ports_column(&serde_json::to_value(&c.ports)?),
        }));
    }
    let headers = BTreeMap::from([
        ("ID", "CONTAINER ID"),
        ("Name", "NAME"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("Project", "PROJECT"),
        ("Service", "SERVICE"),
        ("RunningFor", "CREATED"),
        ("State", "STATE"),
        ("Status", "STATUS"),
        ("Ports", "PORTS"),
    ]);
    // compose takes `--format json` for a JSON object a line.
    let format = format.map(|f| match f.as_str() {
        "json" => "{{json .}}".to_owned(),
        "table" => DEFAULT_PS.to_owned(),
        _ => f,
    });
    crate::objects::print_rows(&rows, quiet, "ID", format, DEFAULT_PS, &headers)
}

const DEFAULT_PS: &str = "table {{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}";

/// `keel compose logs [-f] [SERVICE...]`: each line after its
/// container's `SERVICE-N  | `, as compose prints them.
fn logs(client: &Client, options: &ProjectOptions, parser: &mut lexopt::Parser) -> Result<()> {
    const SYNOPSIS: &str = "compose logs [OPTIONS] [SERVICE...]";
    let (mut follow, mut services) = (false, Vec::new());
    while let Some(arg) = parser.next()? {
        match arg {
            Short('f') | Long("follow") => follow = true,
            Value(value) => services.push(value.string()?),
            other => return Err(usage(other.unexpected(), SYNOPSIS)),
        }
    }
    let (name, project) = options.project_or_name()?;
    check_services(project.as_ref(), &services)?;
    let listed = containers(client, &name, true)?;
    let chosen: Vec<&ContainerSummary> = selected(&listed, &services);
    print_logs(client, &chosen, follow)
}

/// Every container's log at once, a thread each, lines whole.
pub fn print_logs(client: &Client, containers: &[&ContainerSummary], follow: bool) -> Result<()> {
    let prefix = |c: &ContainerSummary| format!("{}-{}", service_of(c), number_of(c));
    let width = containers
        .iter()
        .map(|c| prefix(c).len())
        .max()
        .unwrap_or(0);
    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    let threads: Vec<_> = containers
        .iter()
        .map(|c| {
            let (client, stdout) = (client.clone(), Arc::clone(&stdout));
            let (id, prefix) = (c.id.clone(), format!("{:width$} | ", prefix(c)));
            std::thread::spawn(move || -> Result<()> {
                let mut response = client
                    .request(
                        "GET",
                        &format!(
                            "/containers/{id}/logs?stdout=1&stderr=1&follow={}",
                            u8::from(follow)
                        ),
                        Upload::None,
                    )?
                    .success()?;
                let raw = response.content_type == "application/vnd.docker.raw-stream";
                let mut frames = keel_monitor_protocol::stream::Frames::default();
                let mut pending = Vec::new();
                let mut buffer = [0u8; 16 * 1024];
                loop {
                    let n = response.body().read(&mut buffer)?;
                    if n == 0 {
                        break;
                    }
                    if raw {
                        pending.extend_from_slice(&buffer[..n]);
                    } else {
                        frames.push(&buffer[..n]);
                        for (_, payload) in frames.by_ref() {
                            pending.extend_from_slice(&payload);
                        }
                    }
                    while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=end).collect();
                        let mut out = stdout.lock().expect("stdout's lock");
                        out.write_all(prefix.as_bytes())?;
                        out.write_all(&line)?;
                        out.flush()?;
                    }
                }
                if !pending.is_empty() {
                    let mut out = stdout.lock().expect("stdout's lock");
                    writeln!(out, "{prefix}{}", String::from_utf8_lossy(&pending))?;
                }
                Ok(())
            })
        })
        .collect();
    let mut failure = None;
    for thread in threads {
        if let Err(error) = thread.join().expect("a log thread") {
            failure.get_or_insert(error);
        }
    }
    failure.map_or(Ok(()), Err)
}

/// The container of `service` with `number` (compose's `--index`).
fn service_container(
    client: &Client,
    project: &str,
    service: &str,
    number: u32,
) -> Result<ContainerSummary> {
    containers(client, project, true)?
        .into_iter()
        .find(|c| service_of(c) == service && number_of(c) == number)
        .with_context(|| format!("service {service:?} is not running"))
}

/// `keel compose exec [-T] [-d] [-e K=V] [-u USER] [-w DIR] [--index N]
/// SERVICE COMMAND...`: `keel exec` in the service's container, with a
/// terminal unless `-T` (or stdin is not one).
fn exec(client: &Client, options: &ProjectOptions, parser: &mut lexopt::Parser) -> Result<()> {
    const SYNOPSIS: &str = "compose exec [OPTIONS] SERVICE COMMAND [ARGS...]";
    let (mut no_tty, mut index, mut passed) = (false, 1, Vec::new());
    let service = loop {
        match parser.next()? {
            Some(Short('T') | Long("no-tty")) => no_tty = true,
            Some(Short('d') | Long("detach")) => passed.push("-d".to_owned()),
            Some(Long("index")) => {
                index = parser.value()?.string()?.parse().context("--index")?;
            }
            Some(Short(flag @ ('e' | 'u' | 'w'))) => {
                passed.push(format!("-{flag}"));
                passed.push(parser.value()?.string()?);
            }
            Some(Long(flag @ ("env" | "user" | "workdir"))) => {
                passed.push(format!("--{flag}"));
                passed.push(parser.value()?.string()?);
            }
            Some(Value(service)) => break service.string()?,
            Some(other) => return Err(usage(other.unexpected(), SYNOPSIS)),
            None => bail!(
                "\"keel compose exec\" requires at least 2 arguments.\nUsage:  keel {SYNOPSIS}"
            ),
        }
    };
    let command: Vec<String> = parser
        .raw_args()?
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    if command.is_empty() {
        bail!("\"keel compose exec\" requires at least 2 arguments.\nUsage:  keel {SYNOPSIS}");
    }
    let (name, project) = options.project_or_name()?;
    check_services(project.as_ref(), std::slice::from_ref(&service))?;
    let container = service_container(client, &name, &service, index)?;
    let mut args = vec!["-i".to_owned()];
    if !no_tty && std::io::stdin().is_terminal() {
        args.push("-t".to_owned());
    }
    args.extend(passed);
    args.push(container.id);
    args.extend(command);
    crate::containers::exec(client, &mut lexopt::Parser::from_args(args))
}

/// `keel compose port [--index N] SERVICE PRIVATE_PORT[/PROTO]`
fn port(client: &Client, options: &ProjectOptions, parser: &mut lexopt::Parser) -> Result<()> {
    const SYNOPSIS: &str = "compose port [OPTIONS] SERVICE PRIVATE_PORT";
    let (mut index, mut values) = (1, Vec::new());
    while let Some(arg) = parser.next()? {
        match arg {
            Long("index") => index = parser.value()?.string()?.parse().context("--index")?,
            Value(value) => values.push(value.string()?),
            other => return Err(usage(other.unexpected(), SYNOPSIS)),
        }
    }
    let [service, private] = values.as_slice() else {
        bail!("\"keel compose port\" requires exactly 2 arguments.\nUsage:  keel {SYNOPSIS}");
    };
    let (name, project) = options.project_or_name()?;
    check_services(project.as_ref(), std::slice::from_ref(service))?;
    let container = service_container(client, &name, service, index)?;
    let args = [container.id, private.clone()];
    crate::containers::port(client, &mut lexopt::Parser::from_args(args))
}

/// `keel compose start [SERVICE...]`: in dependency order, each after
/// its dependencies' conditions hold.
fn start(client: &Client, options: &ProjectOptions, parser: &mut lexopt::Parser) -> Result<()> {
    let services = services_given(parser, "compose start [SERVICE...]")?;
    let (name, project) = options.project_or_name()?;
    check_services(project.as_ref(), &services)?;
    let listed = containers(client, &name, true)?;
    up::start_services(client, project.as_ref(), &listed, &services)
}

/// `keel compose stop [-t N] [SERVICE...]`: dependents first.
fn stop(client: &Client, options: &ProjectOptions, parser: &mut lexopt::Parser) -> Result<()> {
    let (timeout, services) = timeout_and_services(parser, "compose stop [OPTIONS] [SERVICE...]")?;
    let (name, project) = options.project_or_name()?;
    check_services(project.as_ref(), &services)?;
    let listed = containers(client, &name, false)?;
    let mut order = service_order(project.as_ref(), &listed);
    order.reverse();
    for service in order
        .iter()
        .filter(|s| services.is_empty() || services.contains(s))
    {
        for container in listed.iter().filter(|c| service_of(c) == service) {
            up::stop_container(client, container, timeout)?;
        }
    }
    Ok(())
}

/// `keel compose restart [-t N] [SERVICE...]`
fn restart(client: &Client, options: &ProjectOptions, parser: &mut lexopt::Parser) -> Result<()> {
    let (timeout, services) =
        timeout_and_services(parser, "compose restart [OPTIONS] [SERVICE...]")?;
    let (name, project) = options.project_or_name()?;
    check_services(project.as_ref(), &services)?;
    let listed = containers(client, &name, true)?;
    let timeout = timeout.map_or(String::new(), |t| format!("?t={t}"));
    for service in service_order(project.as_ref(), &listed)
        .iter()
        .filter(|s| services.is_empty() || services.contains(s))
    {
        for container in listed.iter().filter(|c| service_of(c) == service) {
            event("Container", container.name(), "Restarting");
            client.send(
                "POST",
                &format!("/containers/{}/restart{timeout}", container.id),
            )?;
            event("Container", container.name(), "Started");
        }
    }
    Ok(())
}

fn timeout_and_services(
    parser: &mut lexopt::Parser,
    synopsis: &str,
) -> Result<(Option<u64>, Vec<String>)> {
    let (mut timeout, mut services) = (None, Vec::new());
    while let Some(arg) = parser.next()? {
        match arg {
            Short('t') | Long("timeout") => {
                timeout = Some(
                    parser
                        .value()?
                        .string()?
                        .parse()
                        .context("--timeout takes seconds")?,
                )
            }
            Value(value) => services.push(value.string()?),
            other => return Err(usage(other.unexpected(), synopsis)),
        }
    }
    Ok((timeout, services))
}
