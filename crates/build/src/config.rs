//! The instructions that change only an image's config (CMD, ENTRYPOINT,
//! ENV, LABEL, EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL, ONBUILD,
//! HEALTHCHECK, SHELL, MAINTAINER), applied to the config's JSON object
//! (Docker's keys). A build's steps and `commit -c` / `import -c` changes
//! both go through here.

use serde_json::{Map, Value, json};

use crate::dockerfile::{self, Args, Instruction};
use crate::error::{Error, Result};
use crate::expand::Vars;

/// The shell of shell-form commands until a SHELL instruction changes it.
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// The instructions `commit -c` and `import -c` take, as moby's
/// validCommitCommands.
const CHANGE_COMMANDS: [&str; 11] = [
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Applies Dockerfile instructions given as `--change`s (`commit -c`,
/// `import -c`) to a container config.
pub fn apply_changes(config: &mut Map<String, Value>, changes: &[String]) -> Result<()> {
    let mut cmd_set = false;
    for change in changes {
        let parsed = dockerfile::parse(change).map_err(|error| match error {
            Error::Dockerfile { message, .. } => Error::InvalidArgument(message),
            other => other,
        })?;
        for instruction in &parsed.instructions {
            if !CHANGE_COMMANDS.contains(&instruction.keyword.as_str()) {
                return Err(Error::InvalidArgument(format!(
                    "{} is not a valid change command",
                    instruction.keyword.to_ascii_lowercase()
                )));
            }
            let vars = env_vars(config);
            apply(config, instruction, &vars, '\\', &mut cmd_set).map_err(|error| match error {
                Error::Dockerfile { message, .. } | Error::Step { message, .. } => {
                    Error::InvalidArgument(message)
                }
                other => other,
            })?;
        }
    }
    Ok(())
}

/// The config's ENV as variables.
pub(crate) fn env_vars(config: &Map<String, Value>) -> Vars {
    list(config, "Env")
        .into_iter()
        .filter_map(|entry| {
            let (name, value) = entry.split_once('=')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// A list of strings under `key` (empty if none).
pub(crate) fn list(config: &Map<String, Value>, key: &str) -> Vec<String> {
    strings(config.get(key))
}

/// The strings of a JSON list (none if it is not one).
pub(crate) fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The shell shell-form commands run with (the config's SHELL, else sh).
pub(crate) fn shell(config: &Map<String, Value>) -> Vec<String> {
    match list(config, "Shell") {
        shell if !shell.is_empty() => shell,
        _ => DEFAULT_SHELL.iter().map(|s| s.to_string()).collect(),
    }
}

/// A command's argv: exec form as given, shell form run by the shell.
pub(crate) fn command(config: &Map<String, Value>, args: &Args) -> Vec<String> {
    match args {
        Args::Exec(argv) => argv.clone(),
        Args::Shell(text) => {
            let mut argv = shell(config);
            argv.push(text.clone());
            argv
        }
    }
}

/// Applies one metadata instruction, its variables expanded from `vars`.
/// Returns false for an instruction that is not one of them.
pub(crate) fn apply(
    config: &mut Map<String, Value>,
    instruction: &Instruction,
    vars: &Vars,
    escape: char,
    cmd_set: &mut bool,
) -> Result<bool> {
    let text = match &instruction.args {
        Args::Shell(text) => text.clone(),
        Args::Exec(list) => serde_json::to_string(list).expect("strings serialize"),
    };
    let word = |text: &str| instruction.word(text, vars, escape);
    let words = |text: &str| instruction.words(text, vars, escape);
    let keyword = instruction.keyword.as_str();
    if keyword != "HEALTHCHECK" {
        instruction.only_flags(&[])?;
    }
    match keyword {
        "CMD" | "ENTRYPOINT" => {
            let argv = command(config, &instruction.args);
            let key = if keyword == "CMD" {
                "Cmd"
            } else {
                "Entrypoint"
            };
            config.insert(key.to_owned(), json!(argv));
            // A new entrypoint drops a command inherited from the base
            // image, as Docker's.
            match keyword {
                "CMD" => *cmd_set = true,
                _ if !*cmd_set => {
                    config.insert("Cmd".to_owned(), Value::Null);
                }
                _ => {}
            }
        }
        "SHELL" => match &instruction.args {
            Args::Exec(argv) if !argv.is_empty() => {
                config.insert("Shell".to_owned(), json!(argv));
            }
            _ => {
                return Err(instruction.error(
                    "SHELL requires the arguments to be in JSON form, as [\"executable\", \"param\"]",
                ));
            }
        },
        "ENV" | "LABEL" => {
            let pairs = pairs(&text, keyword == "ENV", escape).ok_or_else(|| {
                instruction.error(format!("{keyword} names no key: use {keyword} KEY=VALUE"))
            })?;
            for (name, value) in pairs {
                let name = if keyword == "LABEL" {
                    word(&name)?
                } else {
                    name
                };
                let value = word(&value)?;
                if keyword == "ENV" {
                    let entries = config.entry("Env").or_insert_with(|| json!([]));
                    if let Some(entries) = entries.as_array_mut() {
                        let prefix = format!("{name}=");
                        match entries
                            .iter_mut()
                            .find(|e| e.as_str().is_some_and(|e| e.starts_with(&prefix)))
                        {
                            Some(entry) => *entry = json!(format!("{name}={value}")),
                            None => entries.push(json!(format!("{name}={value}"))),
                        }
                    }
                } else {
                    object(config, "Labels").insert(name, json!(value));
                }
            }
        }
        "MAINTAINER" => {
            // Docker keeps it as the image's author (a top-level field the
            // builder sets); as a label nothing else reads it.
            return Ok(true);
        }
        "EXPOSE" => {
            let map = object(config, "ExposedPorts");
            for port in words(&text)? {
                let (number, protocol) = port.split_once('/').unwrap_or((&port, "tcp"));
                let protocol = protocol.to_ascii_lowercase();
                let range_ok = number
                    .split_once('-')
                    .map_or(number.parse::<u16>().is_ok(), |(a, b)| {
                        a.parse::<u16>().is_ok() && b.parse::<u16>().is_ok()
                    });
                if !range_ok || !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
                    return Err(instruction.error(format!(
                        "invalid port {port:?}: use PORT, PORT/tcp, PORT/udp or PORT/sctp"
                    )));
                }
                map.insert(format!("{number}/{protocol}"), json!({}));
            }
        }
        "VOLUME" => {
            let paths = match &instruction.args {
                Args::Exec(list) => list.iter().map(|p| word(p)).collect::<Result<Vec<_>>>()?,
                Args::Shell(text) => words(text)?,
            };
            if paths.iter().any(String::is_empty) || paths.is_empty() {
                return Err(instruction.error("VOLUME specified can not be an empty string"));
            }
            let map = object(config, "Volumes");
            for path in paths {
                map.insert(path, json!({}));
            }
        }
        "USER" | "STOPSIGNAL" => {
            let value = word(text.trim())?;
            if value.is_empty() {
                return Err(instruction.error(format!("{keyword} requires exactly one argument")));
            }
            let key = if keyword == "USER" {
                "User"
            } else {
                "StopSignal"
            };
            config.insert(key.to_owned(), json!(value));
        }
        "WORKDIR" => {
            let dir = word(text.trim())?;
            if dir.is_empty() {
                return Err(instruction.error("WORKDIR requires exactly one argument"));
            }
            let current = config
                .get("WorkingDir")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
                .unwrap_or("/")
                .to_owned();
            config.insert("WorkingDir".to_owned(), json!(join_path(&current, &dir)));
        }
        "ONBUILD" => {
            let inner = text
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            if matches!(inner.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                return Err(
                    instruction.error(format!("{inner} isn't allowed as an ONBUILD trigger"))
                );
            }
            let triggers = config.entry("OnBuild").or_insert_with(|| json!([]));
            if !triggers.is_array() {
                *triggers = json!([]);
            }
            triggers
                .as_array_mut()
                .expect("an array")
                .push(json!(text.trim()));
        }
        "HEALTHCHECK" => {
            instruction.only_flags(&[
                "interval",
                "timeout",
                "start-period",
                "start-interval",
                "retries",
            ])?;
            let (kind, rest) = text
                .trim()
                .split_once(char::is_whitespace)
                .unwrap_or((text.trim(), ""));
            let mut check = Map::new();
            match kind.to_ascii_uppercase().as_str() {
                "NONE" if rest.trim().is_empty() => {
                    check.insert("Test".to_owned(), json!(["NONE"]));
                }
                "CMD" => {
                    let rest = rest.trim();
                    let test = match serde_json::from_str::<Vec<String>>(rest) {
                        Ok(argv) => std::iter::once("CMD".to_owned()).chain(argv).collect(),
                        Err(_) => vec!["CMD-SHELL".to_owned(), rest.to_owned()],
                    };
                    check.insert("Test".to_owned(), json!(test));
                    for (flag, key) in [
                        ("interval", "Interval"),
                        ("timeout", "Timeout"),
                        ("start-period", "StartPeriod"),
                        ("start-interval", "StartInterval"),
                    ] {
                        if let Some(value) = instruction.flag(flag) {
                            let nanos = keel_time::parse_go_duration(value).ok_or_else(|| {
                                instruction.error(format!(
                                    "invalid --{flag} {value:?}: use a duration such as 30s or 1m30s"
                                ))
                            })?;
                            check.insert(key.to_owned(), json!(nanos as i64));
                        }
                    }
                    if let Some(value) = instruction.flag("retries") {
                        let retries: i64 = value.parse().map_err(|_| {
                            instruction
                                .error(format!("invalid --retries {value:?}: use a whole number"))
                        })?;
                        check.insert("Retries".to_owned(), json!(retries));
                    }
                }
                _ => {
                    return Err(instruction
                        .error("use HEALTHCHECK NONE or HEALTHCHECK [OPTIONS] CMD command"));
                }
            }
            config.insert("Healthcheck".to_owned(), Value::Object(check));
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The object under `key` of a config, made (or replacing a value of
/// another type) if need be.
pub(crate) fn object<'a>(
    config: &'a mut Map<String, Value>,
    key: &str,
) -> &'a mut Map<String, Value> {
    let value = config.entry(key).or_insert_with(|| json!({}));
    if !value.is_object() {
        *value = json!({});
    }
    value.as_object_mut().expect("an object")
}

/// `dir` taken from `current`, as WORKDIR and COPY's destination are.
pub(crate) fn join_path(current: &str, dir: &str) -> String {
    let joined = match dir.starts_with('/') {
        true => dir.to_owned(),
        false => format!("{}/{dir}", current.trim_end_matches('/')),
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `K=V K2="two words"` (values still to expand), or the legacy
/// `KEY rest of value` (ENV only).
fn pairs(text: &str, legacy: bool, escape: char) -> Option<Vec<(String, String)>> {
    let tokens = tokens(text, escape);
    let first = tokens.first()?;
    if !first.contains('=') {
        if !legacy {
            return None;
        }
        let (name, value) = text.trim().split_once(char::is_whitespace)?;
        return Some(vec![(name.to_owned(), value.trim().to_owned())]);
    }
    tokens
        .into_iter()
        .map(|token| {
            let (name, value) = token.split_once('=')?;
            (!name.is_empty()).then(|| (name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Splits at whitespace outside quotes, keeping quotes and escapes for
/// the expansion that follows.
fn tokens(text: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, c) if c == escape => {
                current.push(c);
                current.extend(chars.next());
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                current.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                current.push(c);
            }
            (None, c) if c.is_whitespace() => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            (_, c) => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(changes: &[&str]) -> Value {
        let mut config = Map::new();
        let changes: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
        apply_changes(&mut config, &changes).unwrap();
        Value::Object(config)
    }

    #[test]
    fn changes_set_the_config_as_dockerfile_instructions_do() {
        let config = changed(&[
            "CMD [\"/bin/sh\", \"-c\", \"echo hi\"]",
            "ENTRYPOINT top -b",
            "ENV A=1 B=\"two words\"",
            "ENV C three",
            "ENV D=$A-x",
            "EXPOSE 80 53/udp",
            "LABEL team=core",
            "WORKDIR /srv",
            "WORKDIR app",
            "USER 1000:1000",
            "HEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost",
        ]);
        assert_eq!(config["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(config["Entrypoint"], json!(["/bin/sh", "-c", "top -b"]));
        assert_eq!(
            config["Env"],
            json!(["A=1", "B=two words", "C=three", "D=1-x"])
        );
        assert_eq!(config["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(config["Labels"], json!({"team": "core"}));
        assert_eq!(config["WorkingDir"], json!("/srv/app"));
        assert_eq!(config["User"], json!("1000:1000"));
        assert_eq!(
            config["Healthcheck"],
            json!({"Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 5_000_000_000_i64, "Retries": 2})
        );
    }

    #[test]
    fn unknown_or_malformed_changes_are_refused_with_the_fix() {
        let mut config = Map::new();
        let error = apply_changes(&mut config, &["RUN make".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(error, "run is not a valid change command");
        let error = apply_changes(&mut config, &["EXPOSE http".into()])
            .unwrap_err()
            .to_string();
        assert!(error.contains("invalid port \"http\""), "{error}");
    }
}
