//! `keel diff CONTAINER`: what a container changed in its image's files,
//! as `docker diff` prints it (`C /etc`, `A /etc/x`, `D /bin/ls`).

use anyhow::{Context, Result, bail};
use keel_api_types::changes::FilesystemChange;
use lexopt::prelude::*;

use crate::client::{Client, Upload, encode};
use crate::usage;

const SYNOPSIS: &str = "diff CONTAINER";

pub fn diff(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let mut names = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Value(value) => names.push(value.string()?),
            other => return Err(usage(other.unexpected(), SYNOPSIS)),
        }
    }
    let [name] = names.as_slice() else {
        bail!("\"keel diff\" requires exactly 1 argument.\nUsage:  keel {SYNOPSIS}");
    };
    let answer = client.json(
        "GET",
        &format!("/containers/{}/changes", encode(name)),
        Upload::None,
    )?;
    // No changes come as null, as from Docker.
    let changes: Option<Vec<FilesystemChange>> =
        serde_json::from_value(answer).context("the daemon's list of changes")?;
    for change in changes.into_iter().flatten() {
        println!("{} {}", change.kind.letter(), change.path);
    }
    Ok(())
}
