//! The volume commands: create, ls, inspect, rm, prune.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use lexopt::prelude::*;
use serde_json::{Value, json};

use crate::client::{Client, Upload, encode};
use crate::usage;

/// `keel volume VERB`.
pub fn command(verb: &str) -> Option<fn(&Client, &mut lexopt::Parser) -> Result<()>> {
    Some(match verb {
        "create" => create,
        "ls" | "list" => list,
        "inspect" => inspect,
        "rm" | "remove" => remove,
        "prune" => crate::prune::volumes,
        _ => return None,
    })
}

/// `keel volume create [--label K=V] [NAME]`: prints the name.
fn create(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let mut name = None;
    let mut labels = BTreeMap::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("label") | Short('l') => {
                let label: String = parser.value()?.string()?;
                let (key, value) = label.split_once('=').unwrap_or((&label, ""));
                labels.insert(key.to_owned(), value.to_owned());
            }
            Long("driver") | Short('d') => {
                let driver: String = parser.value()?.string()?;
                if driver != "local" {
                    bail!("Error response from daemon: plugin \"{driver}\" not found");
                }
            }
            Value(value) if name.is_none() => name = Some(value.string()?),
            other => {
                return Err(usage(
                    other.unexpected(),
                    "volume create [OPTIONS] [VOLUME]",
                ));
            }
        }
    }
    let body = json!({"Name": name.unwrap_or_default(), "Labels": labels});
    let volume = client.json("POST", "/volumes/create", Upload::Json(&body))?;
    println!("{}", volume["Name"].as_str().unwrap_or_default());
    Ok(())
}

/// `keel volume ls [-q] [--format F] [--filter K=V]`
fn list(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let (mut quiet, mut format) = (false, None);
    let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('q') | Long("quiet") => quiet = true,
            Long("format") => format = Some(parser.value()?.string()?),
            Short('f') | Long("filter") => {
                crate::objects::add_filter(&mut filters, &parser.value()?.string()?)?
            }
            other => return Err(usage(other.unexpected(), "volume ls [OPTIONS]")),
        }
    }
    let path = format!("/volumes?filters={}", encode(&json!(filters).to_string()));
    let answer = client.json("GET", &path, Upload::None)?;
    let rows: Vec<Value> = answer["Volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| json!({"Driver": v["Driver"], "Name": v["Name"], "Mountpoint": v["Mountpoint"], "Scope": v["Scope"]}))
        .collect();
    let headers = BTreeMap::from([
        ("Driver", "DRIVER"),
        ("Name", "VOLUME NAME"),
        ("Mountpoint", "MOUNTPOINT"),
        ("Scope", "SCOPE"),
    ]);
    crate::objects::print_rows(
        &rows,
        quiet,
        "Name",
        format,
        "table {{.Driver}}\t{{.Name}}",
        &headers,
    )
}

/// `keel volume inspect VOLUME...`: a JSON array, as docker prints it.
fn inspect(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let mut names = Vec::new();
    let mut format = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('f') | Long("format") => format = Some(parser.value()?.string()?),
            Value(value) => names.push(value.string()?),
            other => {
                return Err(usage(
                    other.unexpected(),
                    "volume inspect VOLUME [VOLUME...]",
                ));
            }
        }
    }
    crate::objects::inspect_all(client, "/volumes", &names, format.as_deref())
}

/// `keel volume rm VOLUME...`
fn remove(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let mut names = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            // Docker's -f is for drivers that fail; the local one does not.
            Short('f') | Long("force") => {}
            Value(value) => names.push(value.string()?),
            other => {
                return Err(usage(
                    other.unexpected(),
                    "volume rm [OPTIONS] VOLUME [VOLUME...]",
                ));
            }
        }
    }
    if names.is_empty() {
        bail!(
            "\"keel volume rm\" requires at least 1 argument.\nUsage:  keel volume rm [OPTIONS] VOLUME [VOLUME...]"
        );
    }
    crate::objects::remove_all(client, "/volumes", &names)
}
