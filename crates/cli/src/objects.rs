//! What the verbs of containers, images, volumes and networks share:
//! `--filter`, lists (`-q` or a table), and
//! inspect and rm with one request per name, errors printed as they come
//! and exit 1 if any failed.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::client::{Client, Upload, encode};
use crate::format::Template;

/// `--filter KEY=VALUE`, added to the API's `filters`.
pub fn add_filter(filters: &mut BTreeMap<String, Vec<String>>, filter: &str) -> Result<()> {
    let Some((key, value)) = filter.split_once('=') else {
        bail!("bad format of filter (expected name=value): {filter}");
    };
    filters
        .entry(key.to_owned())
        .or_default()
        .push(value.to_owned());
    Ok(())
}

/// A list as docker prints it: with `-q` only each row's `quiet_field`,
/// else the rows through `format`, or `default` (a table with `headers`).
pub fn print_rows(
    rows: &[serde_json::Value],
    quiet: bool,
    quiet_field: &str,
    format: Option<String>,
    default: &str,
    headers: &BTreeMap<&str, &str>,
) -> Result<()> {
    if quiet {
        for row in rows {
            println!("{}", row[quiet_field].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    let template = format.unwrap_or_else(|| default.to_owned());
    print!("{}", Template::parse(&template)?.render(rows, headers)?);
    Ok(())
}

fn failed_if(failed: bool) -> Result<()> {
    match failed {
        true => Err(crate::containers::Exit {
            code: 1,
            message: None,
        }
        .into()),
        false => Ok(()),
    }
}

/// `GET {base}/{name}` for each name: a JSON array as docker prints it,
/// or each through `format`.
pub fn inspect_all(
    client: &Client,
    base: &str,
    names: &[String],
    format: Option<&str>,
) -> Result<()> {
    let mut found = Vec::new();
    let mut failed = false;
    for name in names {
        match client.json("GET", &format!("{base}/{}", encode(name)), Upload::None) {
            Ok(object) => found.push(object),
            Err(error) => {
                eprintln!("{error:#}");
                failed = true;
            }
        }
    }
    match format {
        Some(format) => print!(
            "{}",
            Template::parse(format)?.render(&found, &BTreeMap::new())?
        ),
        None => println!("{}", serde_json::to_string_pretty(&found)?),
    }
    failed_if(failed)
}

/// `DELETE {base}/{name}` for each name, printing the names removed.
pub fn remove_all(client: &Client, base: &str, names: &[String]) -> Result<()> {
    let mut failed = false;
    for name in names {
        match client.send("DELETE", &format!("{base}/{}", encode(name))) {
            Ok(_) => println!("{name}"),
            Err(error) => {
                eprintln!("{error:#}");
                failed = true;
            }
        }
    }
    failed_if(failed)
}
