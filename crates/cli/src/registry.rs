//! `keel pull`, `push`, `login`, `logout` and `search`: credentials come
//! from Docker's own config.json (so `docker login` works for Keel too)
//! and go to the daemon in `X-Registry-Auth`, as the docker CLI sends them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};

use anyhow::{Context, Result, bail};
use keel_image::Reference;
use keel_image::reference::{DEFAULT_DOMAIN, split_registry};
use keel_registry::{AuthConfig, ConfigFile};
use lexopt::prelude::*;
use serde_json::{Value, json};

use crate::client::{Client, DaemonError, Response, Upload, encode};
use crate::format::human_size_with_precision;
use crate::usage;

/// The registry a reference (or search term) names.
fn domain_of(name: &str) -> &str {
    split_registry(name).map_or(DEFAULT_DOMAIN, |(domain, _)| domain)
}

/// A request to the daemon carrying the saved credentials for `domain`
/// in `X-Registry-Auth`, as the docker CLI sends them.
fn authed_request(client: &Client, method: &str, path: &str, domain: &str) -> Result<Response> {
    let auth = ConfigFile::load()?
        .credentials(domain)?
        .map(|auth| auth.to_header());
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|value| ("X-Registry-Auth", value))
        .into_iter()
        .collect();
    client
        .request_with(method, path, &headers, Upload::None)?
        .success()
}

/// Where progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Stdout,
    /// `run` and `create` pulling a missing image keep stdout for the
    /// container's output, as docker does.
    Stderr,
    Quiet,
}

/// Sends a request whose answer is Docker's JSON progress stream and
/// shows it; a stream that ends in an error is that error.
fn follow_progress(client: &Client, path: &str, domain: &str, shown: Shown) -> Result<()> {
    let mut response = authed_request(client, "POST", path, domain)?;
    let (mut out, terminal): (Box<dyn Write>, bool) = match shown {
        Shown::Stdout => (Box::new(std::io::stdout()), std::io::stdout().is_terminal()),
        Shown::Stderr => (Box::new(std::io::stderr()), std::io::stderr().is_terminal()),
        Shown::Quiet => (Box::new(std::io::sink()), false),
    };
    let mut display = Display::new(terminal);
    for line in BufReader::new(response.body()).lines() {
        let line = line.context("the daemon's progress stream was cut short")?;
        if line.trim().is_empty() {
            continue;
        }
        let message: Value =
            serde_json::from_str(&line).context("the daemon's progress is not JSON")?;
        if let Some(error) = message["error"].as_str() {
            bail!(DaemonError(error.to_owned()));
        }
        display.show(&message, &mut out)?;
    }
    Ok(())
}

/// Docker's progress display: on a terminal, one line per layer redrawn
/// in place; otherwise each status once, without the transfer bars.
struct Display {
    terminal: bool,
    /// Layer ids in the order their lines were printed.
    lines: Vec<String>,
}

impl Display {
    fn new(terminal: bool) -> Self {
        Self {
            terminal,
            lines: Vec::new(),
        }
    }

    fn show(&mut self, message: &Value, out: &mut dyn Write) -> Result<()> {
        let status = message["status"].as_str().unwrap_or_default();
        let id = message["id"].as_str().unwrap_or_default();
        let detail = &message["progressDetail"];
        let transfer = detail["total"].as_u64().zip(detail["current"].as_u64());
        let mut text = match id.is_empty() {
            true => status.to_owned(),
            false => format!("{id}: {status}"),
        };
        if !self.terminal {
            if transfer.is_none() {
                writeln!(out, "{text}")?;
            }
            return Ok(());
        }
        if let Some((total, current)) = transfer {
            text.push(' ');
            text.push_str(&bar(current, total));
        }
        match self.lines.iter().position(|line| line == id) {
            Some(index) if !id.is_empty() => {
                let up = self.lines.len() - index;
                write!(out, "\x1b[{up}A\r\x1b[2K{text}\r\x1b[{up}B")?;
            }
            _ => {
                if id.is_empty() {
                    self.lines.clear();
                } else {
                    self.lines.push(id.to_owned());
                }
                writeln!(out, "{text}")?;
            }
        }
        out.flush()?;
        Ok(())
    }
}

/// Docker's progress bar: 50 columns, then `current/total`.
fn bar(current: u64, total: u64) -> String {
    const WIDTH: u64 = 50;
    let filled = (current.min(total) * WIDTH).checked_div(total).unwrap_or(0);
    let arrow = if filled < WIDTH { ">" } else { "" };
    format!(
        "[{}{arrow}{}] {:>8}/{}",
        "=".repeat(filled as usize),
        " ".repeat((WIDTH - filled).saturating_sub(1) as usize),
        human_size_with_precision(current, 4),
        human_size_with_precision(total, 4)
    )
}

fn shown(quiet: bool) -> Shown {
    match quiet {
        true => Shown::Quiet,
        false => Shown::Stdout,
    }
}

/// The canonical form Docker prints after a pull:
/// `docker.io/library/busybox:latest` (without a tag for `pull -a`).
fn canonical(name: &str) -> String {
    Reference::parse_repository(name)
        .or_else(|_| Reference::parse(name))
        .map_or_else(|_| name.to_owned(), |reference| reference.to_string())
}

/// Whether a reference names a tag or digest (after its last `/`).
pub fn has_tag_or_digest(name: &str) -> bool {
    name.contains('@')
        || name
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
}

/// Pulls `name` (with its tag or digest, `latest` when it has neither),
/// showing progress; the pull `run` and `create` do for a missing image.
pub fn pull_image(client: &Client, name: &str, platform: Option<&str>, shown: Shown) -> Result<()> {
    let (image, tag) = match name.rsplit_once('@') {
        Some((image, digest)) => (image, digest),
        None => match name.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')) {
            Some((image, tag)) => (image, tag),
            None => (name, "latest"),
        },
    };
    let mut path = format!(
        "/images/create?fromImage={}&tag={}",
        encode(image),
        encode(tag)
    );
    if let Some(platform) = platform {
        path.push_str(&format!("&platform={}", encode(platform)));
    }
    follow_progress(client, &path, domain_of(image), shown)
}

/// `keel pull [-a] [-q] [--platform P] NAME[:TAG|@DIGEST]`
pub fn pull(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    const SYNOPSIS: &str = "pull [OPTIONS] NAME[:TAG|@DIGEST]";
    let (mut all, mut quiet, mut platform, mut name) = (false, false, None, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Short('a') | Long("all-tags") => all = true,
            Short('q') | Long("quiet") => quiet = true,
            Long("platform") => platform = Some(parser.value()?.string()?),
            Long("disable-content-trust") => {}
            Value(value) if name.is_none() => name = Some(value.string()?),
            other => return Err(usage(other.unexpected(), SYNOPSIS)),
        }
    }
    let Some(name) = name else {
        bail!("\"keel pull\" requires exactly 1 argument.\nUsage:  keel {SYNOPSIS}");
    };
    if all {
        if has_tag_or_digest(&name) {
            bail!("tag can't be used with --all-tags/-a");
        }
        let path = format!("/images/create?fromImage={}&tag=", encode(&name));
        follow_progress(client, &path, domain_of(&name), shown(quiet))?;
        println!("{}", canonical(&name));
        return Ok(());
    }
    let full = match has_tag_or_digest(&name) {
        true => name.clone(),
        false => {
            if !quiet {
                println!("Using default tag: latest");
            }
            format!("{name}:latest")
        }
    };
    pull_image(client, &full, platform.as_deref(), shown(quiet))?;
    println!("{}", canonical(&full));
    Ok(())
}

/// `keel push [-a] [-q] NAME[:TAG]`
pub fn push(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    const SYNOPSIS: &str = "push [OPTIONS] NAME[:TAG]";
    let (mut all, mut quiet, mut name) = (false, false, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Short('a') | Long("all-tags") => all = true,
            Short('q') | Long("quiet") => quiet = true,
            Long("disable-content-trust") => {}
            Value(value) if name.is_none() => name = Some(value.string()?),
            other => return Err(usage(other.unexpected(), SYNOPSIS)),
        }
    }
    let Some(name) = name else {
        bail!("\"keel push\" requires exactly 1 argument.\nUsage:  keel {SYNOPSIS}");
    };
    if all && has_tag_or_digest(&name) {
        bail!("tag can't be used with --all-tags/-a");
    }
    let (image, tag) = match name.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')) {
        Some((image, tag)) => (image.to_owned(), tag.to_owned()),
        None if all => (name.clone(), String::new()),
        None => {
            if !quiet {
                println!("Using default tag: latest");
            }
            (name.clone(), "latest".to_owned())
        }
    };
    let path = format!("/images/{}/push?tag={}", encode(&image), encode(&tag));
    follow_progress(client, &path, domain_of(&image), shown(quiet))?;
    if quiet {
        println!("{}", canonical(&name));
    }
    Ok(())
}

fn prompt(question: &str) -> Result<String> {
    print!("{question}");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim_end_matches(['\r', '\n']).to_owned())
}

/// Reads a password from the terminal without echoing it.
fn prompt_password() -> Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).context("cannot read the password: stdin is not a terminal")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
    let answer = prompt("Password: ");
    tcsetattr(&stdin, OptionalActions::Now, &saved)?;
    println!();
    answer
}

/// `keel login [-u USER] [-p PASS | --password-stdin] [SERVER]`
pub fn login(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    const SYNOPSIS: &str = "login [OPTIONS] [SERVER]";
    let (mut username, mut password, mut from_stdin, mut server) = (None, None, false, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Short('u') | Long("username") => username = Some(parser.value()?.string()?),
            Short('p') | Long("password") => password = Some(parser.value()?.string()?),
            Long("password-stdin") => from_stdin = true,
            Value(value) if server.is_none() => server = Some(value.string()?),
            other => return Err(usage(other.unexpected(), SYNOPSIS)),
        }
    }
    if from_stdin {
        if password.is_some() {
            bail!("--password and --password-stdin are mutually exclusive");
        }
        if username.is_none() {
            bail!("Must provide --username with --password-stdin");
        }
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        password = Some(text.trim_end_matches(['\r', '\n']).to_owned());
    } else if password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let domain = keel_registry::server_domain(server.as_deref().unwrap_or_default());
    let username = match username {
        Some(name) => name,
        None => prompt("Username: ")?,
    };
    if username.is_empty() {
        bail!("Error: Non-null Username Required");
    }
    let password = match password {
        Some(password) => password,
        None => prompt_password()?,
    };
    if password.is_empty() {
        bail!("Error: Password Required");
    }
    let address = keel_registry::server_key(domain);
    let auth = AuthConfig::basic(&username, &password, &address);
    let body = json!({ "username": username, "password": password, "serveraddress": address });
    client.json("POST", "/auth", Upload::Json(&body))?;
    let mut config = ConfigFile::load()?;
    config.store(domain, &auth)?;
    println!("Login Succeeded");
    Ok(())
}

/// `keel logout [SERVER]`
pub fn logout(_client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let mut server = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Value(value) if server.is_none() => server = Some(value.string()?),
            other => return Err(usage(other.unexpected(), "logout [SERVER]")),
        }
    }
    let domain = keel_registry::server_domain(server.as_deref().unwrap_or_default());
    let shown = keel_registry::server_key(domain);
    let mut config = ConfigFile::load()?;
    match config.erase(domain)? {
        true => println!("Removing login credentials for {shown}"),
        false => println!("Not logged in to {shown}"),
    }
    Ok(())
}

/// `keel search [--limit N] [-f KEY=VALUE] [--no-trunc] [--format T] TERM`
pub fn search(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    const SYNOPSIS: &str = "search [OPTIONS] TERM";
    let (mut limit, mut filters, mut no_trunc, mut format, mut term) =
        (None, BTreeMap::new(), false, None, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("limit") => limit = Some(parser.value()?.string()?),
            Short('f') | Long("filter") => {
                crate::objects::add_filter(&mut filters, &parser.value()?.string()?)?
            }
            Long("no-trunc") => no_trunc = true,
            Long("format") => format = Some(parser.value()?.string()?),
            Value(value) if term.is_none() => term = Some(value.string()?),
            other => return Err(usage(other.unexpected(), SYNOPSIS)),
        }
    }
    let Some(term) = term else {
        bail!("\"keel search\" requires exactly 1 argument.\nUsage:  keel {SYNOPSIS}");
    };
    let mut path = format!("/images/search?term={}", encode(&term));
    if let Some(limit) = limit {
        path.push_str(&format!("&limit={}", encode(&limit)));
    }
    if !filters.is_empty() {
        path.push_str(&format!(
            "&filters={}",
            encode(&serde_json::to_string(&filters)?)
        ));
    }
    let mut response = authed_request(client, "GET", &path, domain_of(&term))?;
    let results: Vec<Value> = serde_json::from_reader(response.body())?;
    let rows: Vec<Value> = results
        .iter()
        .map(|r| {
            let description = r["description"].as_str().unwrap_or_default();
            json!({
                "Name": r["name"],
                "Description": match no_trunc || description.chars().count() <= 45 {
                    true => description.to_owned(),
                    false => description.chars().take(44).collect::<String>() + "…",
                },
                "StarCount": r["star_count"].as_u64().unwrap_or(0).to_string(),
                "IsOfficial": if r["is_official"].as_bool().unwrap_or(false) { "[OK]" } else { "" },
                "IsAutomated": if r["is_automated"].as_bool().unwrap_or(false) { "[OK]" } else { "" },
            })
        })
        .collect();
    let headers = BTreeMap::from([
        ("Name", "NAME"),
        ("Description", "DESCRIPTION"),
        ("StarCount", "STARS"),
        ("IsOfficial", "OFFICIAL"),
        ("IsAutomated", "AUTOMATED"),
    ]);
    crate::objects::print_rows(
        &rows,
        false,
        "Name",
        format,
        "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}",
        &headers,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_shown_canonical_after_a_pull() {
        assert_eq!(
            canonical("busybox:latest"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(canonical("team/app:1"), "docker.io/team/app:1");
        assert_eq!(canonical("localhost:5000/a/b:1"), "localhost:5000/a/b:1");
        assert!(has_tag_or_digest("localhost:5000/a@sha256:00"));
        assert!(!has_tag_or_digest("localhost:5000/a"));
    }

    #[test]
    fn a_terminal_redraws_each_layers_line_in_place_and_a_pipe_gets_statuses_once() {
        let messages = [
            json!({"status": "Pulling from team/app", "id": "1"}),
            json!({"status": "Pulling fs layer", "id": "aaa"}),
            json!({"status": "Pulling fs layer", "id": "bbb"}),
            json!({"status": "Downloading", "id": "aaa", "progressDetail": {"current": 500, "total": 1000}}),
            json!({"status": "Pull complete", "id": "bbb"}),
            json!({"status": "Digest: sha256:00"}),
        ];
        let show = |terminal: bool| {
            let mut display = Display::new(terminal);
            let mut out = Vec::new();
            for message in &messages {
                display.show(message, &mut out).unwrap();
            }
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            show(false),
            "1: Pulling from team/app\naaa: Pulling fs layer\nbbb: Pulling fs layer\nbbb: Pull complete\nDigest: sha256:00\n"
        );
        assert_eq!(
            show(true),
            format!(
                "1: Pulling from team/app\naaa: Pulling fs layer\nbbb: Pulling fs layer\n\
                 \x1b[2A\r\x1b[2Kaaa: Downloading {}\r\x1b[2B\
                 \x1b[1A\r\x1b[2Kbbb: Pull complete\r\x1b[1B\
                 Digest: sha256:00\n",
                bar(500, 1000)
            )
        );
    }

    #[test]
    fn the_bar_is_fifty_columns_with_an_arrow() {
        assert_eq!(
            bar(500, 1000),
            format!("[{}>{}]     500B/1kB", "=".repeat(25), " ".repeat(24))
        );
        assert!(bar(1000, 1000).starts_with(&format!("[{}]", "=".repeat(50))));
    }
}
