//! The prune commands: `container prune`, `image prune`, `volume prune`,
//! `network prune`, `builder prune`, and `system prune`, which runs them
//! all (volumes with `--volumes`), each asked and printed as the docker
//! CLI does.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::client::{Client, Upload, encode};

/// What a prune command takes: `-f`, `-a` (but for containers and
/// networks), `--filter KEY=VALUE` (until, label, label!, …), and for
/// `system prune` `--volumes`.
#[derive(Debug, Default)]
struct PruneFlags {
    force: bool,
    all: bool,
    volumes: bool,
    filters: BTreeMap<String, Vec<String>>,
}

impl PruneFlags {
    /// The flags of `kind`'s prune, or of `system prune` for None.
    fn parse(parser: &mut lexopt::Parser, kind: Option<Prunable>) -> Result<Self> {
        use lexopt::prelude::*;
        let synopsis = kind.map_or("system prune [OPTIONS]", Prunable::synopsis);
        let takes_all = kind.is_none_or(Prunable::takes_all);
        let mut flags = PruneFlags::default();
        while let Some(arg) = parser.next()? {
            match arg {
                Short('f') | Long("force") => flags.force = true,
                Short('a') | Long("all") if takes_all => flags.all = true,
                Long("volumes") if kind.is_none() => flags.volumes = true,
                Long("filter") => {
                    crate::objects::add_filter(&mut flags.filters, &parser.value()?.string()?)?
                }
                other => return Err(crate::usage(other.unexpected(), synopsis)),
            }
        }
        Ok(flags)
    }
}

/// What a prune removes, in the order `system prune` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prunable {
    Containers,
    Networks,
    Volumes,
    Images,
    BuildCache,
}

const ALL: [Prunable; 5] = [
    Prunable::Containers,
    Prunable::Networks,
    Prunable::Volumes,
    Prunable::Images,
    Prunable::BuildCache,
];

impl Prunable {
    fn path(self) -> &'static str {
        match self {
            Prunable::Containers => "/containers/prune",
            Prunable::Networks => "/networks/prune",
            Prunable::Volumes => "/volumes/prune",
            Prunable::Images => "/images/prune",
            Prunable::BuildCache => "/build/prune",
        }
    }

    fn synopsis(self) -> &'static str {
        match self {
            Prunable::Containers => "container prune [OPTIONS]",
            Prunable::Networks => "network prune [OPTIONS]",
            Prunable::Volumes => "volume prune [OPTIONS]",
            Prunable::Images => "image prune [OPTIONS]",
            Prunable::BuildCache => "builder prune [OPTIONS]",
        }
    }

    fn takes_all(self) -> bool {
        !matches!(self, Prunable::Containers | Prunable::Networks)
    }

    /// The question its own command asks.
    fn warning(self, all: bool) -> &'static str {
        match (self, all) {
            (Prunable::Containers, _) => "WARNING! This will remove all stopped containers.",
            (Prunable::Networks, _) => {
                "WARNING! This will remove all custom networks not used by at least one container."
            }
            (Prunable::Volumes, false) => {
                "WARNING! This will remove anonymous local volumes not used by at least one container."
            }
            (Prunable::Volumes, true) => {
                "WARNING! This will remove all local volumes not used by at least one container."
            }
            (Prunable::Images, false) => "WARNING! This will remove all dangling images.",
            (Prunable::Images, true) => {
                "WARNING! This will remove all images without at least one container associated to them."
            }
            (Prunable::BuildCache, false) => "WARNING! This will remove all dangling build cache.",
            (Prunable::BuildCache, true) => "WARNING! This will remove all build cache.",
        }
    }

    /// Its line in `system prune`'s question.
    fn system_warning(self, all: bool) -> &'static str {
        match (self, all) {
            (Prunable::Containers, _) => "all stopped containers",
            (Prunable::Networks, _) => "all networks not used by at least one container",
            (Prunable::Volumes, _) => "all anonymous volumes not used by at least one container",
            (Prunable::Images, false) => "all dangling images",
            (Prunable::Images, true) => {
                "all images without at least one container associated to them"
            }
            (Prunable::BuildCache, false) => "unused build cache",
            (Prunable::BuildCache, true) => "all build cache",
        }
    }

    /// Prunes; what docker prints of it (empty when nothing went) and the
    /// space reclaimed, where the kind has space.
    fn prune(
        self,
        client: &Client,
        all: bool,
        filters: &BTreeMap<String, Vec<String>>,
    ) -> Result<(String, Option<u64>)> {
        let mut filters = filters.clone();
        match self {
            Prunable::Images => {
                filters.insert("dangling".into(), vec![(!all).to_string()]);
            }
            Prunable::Volumes if all => {
                if filters.contains_key("all") {
                    bail!("conflicting options: cannot specify both --all and --filter all=1");
                }
                filters.insert("all".into(), vec!["true".into()]);
            }
            Prunable::BuildCache if all => {
                filters.insert("all".into(), vec!["true".into()]);
            }
            _ => {}
        }
        let filters = serde_json::json!(filters).to_string();
        let path = format!("{}?filters={}", self.path(), encode(&filters));
        let answer = client.json("POST", &path, Upload::None)?;
        let (key, heading) = match self {
            Prunable::Containers => ("ContainersDeleted", "Deleted Containers:"),
            Prunable::Networks => ("NetworksDeleted", "Deleted Networks:"),
            Prunable::Volumes => ("VolumesDeleted", "Deleted Volumes:"),
            Prunable::Images => ("ImagesDeleted", "Deleted Images:"),
            Prunable::BuildCache => ("CachesDeleted", "Deleted build cache objects:"),
        };
        let deleted = answer[key].as_array().cloned().unwrap_or_default();
        let mut output = String::new();
        if !deleted.is_empty() {
            output.push_str(heading);
            output.push('\n');
        }
        for item in &deleted {
            let line = match (item["Untagged"].as_str(), item["Deleted"].as_str()) {
                (Some(name), _) => format!("untagged: {name}"),
                (None, Some(id)) => format!("deleted: {id}"),
                (None, None) => item.as_str().unwrap_or_default().to_owned(),
            };
            output.push_str(&line);
            output.push('\n');
        }
        let reclaimed = match self {
            Prunable::Networks => None,
            _ => Some(answer["SpaceReclaimed"].as_u64().unwrap_or(0)),
        };
        Ok((output, reclaimed))
    }
}

/// `keel container prune [-f] [--filter K=V]`.
pub fn containers(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    prune(client, parser, Prunable::Containers)
}

/// `keel network prune [-f] [--filter K=V]`.
pub fn networks(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    prune(client, parser, Prunable::Networks)
}

/// `keel volume prune [-a] [-f] [--filter K=V]`.
pub fn volumes(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    prune(client, parser, Prunable::Volumes)
}

/// `keel image prune [-a] [-f] [--filter K=V]`.
pub fn images(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    prune(client, parser, Prunable::Images)
}

/// `keel builder prune [-a] [-f] [--filter K=V]`.
pub fn builder(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    match parser.next()? {
        Some(lexopt::Arg::Value(sub)) if sub == "prune" => {
            prune(client, parser, Prunable::BuildCache)
        }
        _ => bail!("Usage:  keel builder prune [OPTIONS]"),
    }
}

fn prune(client: &Client, parser: &mut lexopt::Parser, kind: Prunable) -> Result<()> {
    let flags = PruneFlags::parse(parser, Some(kind))?;
    if !flags.force && !crate::confirm(kind.warning(flags.all))? {
        return Ok(());
    }
    let (output, reclaimed) = kind.prune(client, flags.all, &flags.filters)?;
    if !output.is_empty() {
        println!("{output}");
    }
    if let Some(bytes) = reclaimed {
        println!(
            "Total reclaimed space: {}",
            crate::format::human_size(bytes)
        );
    }
    Ok(())
}

/// `keel system prune [-a] [-f] [--volumes] [--filter K=V]`.
pub fn system(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let flags = PruneFlags::parse(parser, None)?;
    if flags.volumes && flags.filters.contains_key("until") {
        bail!("ERROR: The \"until\" filter is not supported with \"--volumes\"");
    }
    let kinds: Vec<Prunable> = ALL
        .into_iter()
        .filter(|k| flags.volumes || *k != Prunable::Volumes)
        .collect();
    if !flags.force {
        let mut question = String::from("WARNING! This will remove:");
        for kind in &kinds {
            question.push_str("\n  - ");
            question.push_str(kind.system_warning(flags.all));
        }
        let shown: Vec<String> = ["label", "label!", "until"]
            .iter()
            .flat_map(|key| {
                let values = flags.filters.get(*key).cloned().unwrap_or_default();
                values.into_iter().map(move |v| format!("{key}={v}"))
            })
            .collect();
        if !shown.is_empty() {
            question.push_str("\n\n  Items to be pruned will be filtered with:");
            for filter in shown {
                question.push_str("\n  - ");
                question.push_str(&filter);
            }
        }
        question.push('\n');
        if !crate::confirm(&question)? {
            return Ok(());
        }
    }
    let mut reclaimed = 0;
    for kind in kinds {
        // Volumes go only when anonymous, -a or not (docker's rule).
        let all = flags.all && kind != Prunable::Volumes;
        let (output, bytes) = kind.prune(client, all, &flags.filters)?;
        if !output.is_empty() {
            println!("{output}");
        }
        reclaimed += bytes.unwrap_or(0);
    }
    println!(
        "Total reclaimed space: {}",
        crate::format::human_size(reclaimed)
    );
    Ok(())
}
