//! The network commands: create, ls, inspect, rm, connect, disconnect,
//! prune.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use lexopt::prelude::*;
use serde_json::{Value, json};

use crate::client::{Client, Upload, encode};
use crate::usage;

/// `keel network VERB`.
pub fn command(verb: &str) -> Option<fn(&Client, &mut lexopt::Parser) -> Result<()>> {
    Some(match verb {
        "create" => create,
        "ls" | "list" => list,
        "inspect" => inspect,
        "rm" | "remove" => remove,
        "connect" => connect,
        "disconnect" => disconnect,
        "prune" => crate::prune::networks,
        _ => return None,
    })
}

/// `keel network create [--subnet CIDR] [--gateway IP] [--internal]
/// [--label K=V] NAME`: prints the id.
fn create(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    const SYNOPSIS: &str = "network create [OPTIONS] NETWORK";
    let mut name = None;
    let (mut subnet, mut gateway, mut internal) = (String::new(), String::new(), false);
    let mut driver = "bridge".to_owned();
    let mut labels = BTreeMap::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("subnet") => subnet = parser.value()?.string()?,
            Long("gateway") => gateway = parser.value()?.string()?,
            Long("internal") => internal = true,
            Short('d') | Long("driver") => driver = parser.value()?.string()?,
            Long("label") => {
                let label: String = parser.value()?.string()?;
                let (key, value) = label.split_once('=').unwrap_or((&label, ""));
                labels.insert(key.to_owned(), value.to_owned());
            }
            Value(value) if name.is_none() => name = Some(value.string()?),
            other => return Err(usage(other.unexpected(), SYNOPSIS)),
        }
    }
    let Some(name) = name else {
        bail!("\"keel network create\" requires exactly 1 argument.\nUsage:  keel {SYNOPSIS}");
    };
    if !gateway.is_empty() && subnet.is_empty() {
        bail!("every ip-range or gateway must have a corresponding subnet");
    }
    let config = match subnet.is_empty() {
        true => json!([]),
        false => json!([{"Subnet": subnet, "Gateway": gateway}]),
    };
    let body = json!({
        "Name": name,
        "Driver": driver,
        "Internal": internal,
        "IPAM": {"Driver": "default", "Config": config},
        "Labels": labels,
    });
    let created = client.json("POST", "/networks/create", Upload::Json(&body))?;
    println!("{}", created["Id"].as_str().unwrap_or_default());
    Ok(())
}

/// `keel network ls [-q] [--no-trunc] [--format F] [--filter K=V]`
fn list(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let (mut quiet, mut no_trunc, mut format) = (false, false, None);
    let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('q') | Long("quiet") => quiet = true,
            Long("no-trunc") => no_trunc = true,
            Long("format") => format = Some(parser.value()?.string()?),
            Short('f') | Long("filter") => {
                crate::objects::add_filter(&mut filters, &parser.value()?.string()?)?
            }
            other => return Err(usage(other.unexpected(), "network ls [OPTIONS]")),
        }
    }
    let path = format!("/networks?filters={}", encode(&json!(filters).to_string()));
    let answer = client.json("GET", &path, Upload::None)?;
    let mut rows: Vec<Value> = answer
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            let id = n["Id"].as_str().unwrap_or_default();
            let id = if no_trunc {
                id
            } else {
                &id[..id.len().min(12)]
            };
            json!({"ID": id, "Name": n["Name"], "Driver": n["Driver"], "Scope": n["Scope"]})
        })
        .collect();
    rows.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
    let headers = BTreeMap::from([
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
    ]);
    crate::objects::print_rows(
        &rows,
        quiet,
        "ID",
        format,
        "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
        &headers,
    )
}

/// The names after the options, at least one.
fn names(parser: &mut lexopt::Parser, synopsis: &str) -> Result<(Vec<String>, Option<String>)> {
    let mut names = Vec::new();
    let mut format = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('f') | Long("format") if synopsis.starts_with("network inspect") => {
                format = Some(parser.value()?.string()?)
            }
            Short('f') | Long("force") => {}
            Value(value) => names.push(value.string()?),
            other => return Err(usage(other.unexpected(), synopsis)),
        }
    }
    if names.is_empty() {
        let verb = synopsis.split(' ').take(2).collect::<Vec<_>>().join(" ");
        bail!("\"keel {verb}\" requires at least 1 argument.\nUsage:  keel {synopsis}");
    }
    Ok((names, format))
}

/// `keel network inspect NETWORK...`
fn inspect(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let (names, format) = names(parser, "network inspect [OPTIONS] NETWORK [NETWORK...]")?;
    crate::objects::inspect_all(client, "/networks", &names, format.as_deref())
}

/// `keel network rm NETWORK...`
fn remove(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let (names, _) = names(parser, "network rm NETWORK [NETWORK...]")?;
    crate::objects::remove_all(client, "/networks", &names)
}

/// `keel network connect [--alias A] [--ip IP] NETWORK CONTAINER`
fn connect(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    const SYNOPSIS: &str = "network connect [OPTIONS] NETWORK CONTAINER";
    let (mut aliases, mut ip) = (Vec::new(), String::new());
    let mut values = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("alias") => aliases.push(parser.value()?.string()?),
            Long("ip") => ip = parser.value()?.string()?,
            Value(value) => values.push(value.string()?),
            other => return Err(usage(other.unexpected(), SYNOPSIS)),
        }
    }
    let [network, container] = values.as_slice() else {
        bail!("\"keel network connect\" requires exactly 2 arguments.\nUsage:  keel {SYNOPSIS}");
    };
    let body = json!({
        "Container": container,
        "EndpointConfig": {"Aliases": aliases, "IPAMConfig": {"IPv4Address": ip}},
    });
    let path = format!("/networks/{}/connect", encode(network));
    client.json("POST", &path, Upload::Json(&body)).map(drop)
}

/// `keel network disconnect [-f] NETWORK CONTAINER`
fn disconnect(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    const SYNOPSIS: &str = "network disconnect [OPTIONS] NETWORK CONTAINER";
    let mut values = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('f') | Long("force") => {}
            Value(value) => values.push(value.string()?),
            other => return Err(usage(other.unexpected(), SYNOPSIS)),
        }
    }
    let [network, container] = values.as_slice() else {
        bail!("\"keel network disconnect\" requires exactly 2 arguments.\nUsage:  keel {SYNOPSIS}");
    };
    let body = json!({"Container": container});
    let path = format!("/networks/{}/disconnect", encode(network));
    client.json("POST", &path, Upload::Json(&body)).map(drop)
}
