//! `keel stats`: containers' resource use as docker's CLI shows it
//! (docker/cli's container/stats.go, stats_helpers.go and
//! formatter_stats.go): one sample each with `--no-stream`, else a table
//! redrawn twice a second over the last one, from a stream per container.
//! Without names, the running containers (all with `-a`), followed as
//! they come and go.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use keel_api_types::stats::ContainerStatsResponse;
use lexopt::prelude::*;
use serde_json::{Value, json};

use crate::client::{Client, Upload, encode};
use crate::format::{Template, bytes_size, human_size};
use crate::usage;

const SYNOPSIS: &str = "stats [OPTIONS] [CONTAINER...]";
const DEFAULT_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
/// How often the live table is drawn, as docker's.
const REDRAW: Duration = Duration::from_millis(500);
/// A stream silent this long shows `--`, as docker's.
const SILENCE: Duration = Duration::from_secs(2);

/// What one row shows, as docker's StatsEntry.
#[derive(Debug, Clone, Default)]
struct Entry {
    /// The container as named on the command line (or its short id).
    container: String,
    name: String,
    id: String,
    cpu_percent: f64,
    memory: u64,
    memory_limit: u64,
    memory_percent: f64,
    network: (u64, u64),
    block: (u64, u64),
    pids: u64,
    /// No figures to show: the stream failed or went silent.
    invalid: bool,
}

impl Entry {
    fn new(container: &str) -> Self {
        Entry {
            container: container.to_owned(),
            ..Entry::default()
        }
    }

    fn update(&mut self, stats: &ContainerStatsResponse) {
        let memory = stats.memory_stats.usage_without_cache();
        let limit = stats.memory_stats.limit;
        *self = Entry {
            container: std::mem::take(&mut self.container),
            name: stats.name.clone(),
            id: stats.id.clone(),
            cpu_percent: stats.cpu_percent(),
            memory,
            memory_limit: limit,
            memory_percent: match limit {
                0 => 0.0,
                limit => memory as f64 / limit as f64 * 100.0,
            },
            network: stats.network_io(),
            block: stats.block_io(),
            pids: stats.pids_stats.current,
            invalid: false,
        };
    }

    /// The row's fields, as docker's templates name them.
    fn row(&self, truncate: bool) -> Value {
        let percent = |value: f64| format!("{value:.2}%");
        let pair = |(a, b): (u64, u64)| format!("{} / {}", human_size(a), human_size(b));
        let name = match self.name.len() > 1 {
            true => self.name[1..].to_owned(),
            false => "--".to_owned(),
        };
        let id = match truncate {
            true => self.id.chars().take(12).collect(),
            false => self.id.clone(),
        };
        let figures = |text: String| if self.invalid { "--".to_owned() } else { text };
        json!({
            "Container": self.container,
            "Name": name,
            "ID": id,
            "CPUPerc": figures(percent(self.cpu_percent)),
            "MemUsage": match self.invalid {
                true => "-- / --".to_owned(),
                false => format!("{} / {}", bytes_size(self.memory), bytes_size(self.memory_limit)),
            },
            "MemPerc": figures(percent(self.memory_percent)),
            "NetIO": figures(pair(self.network)),
            "BlockIO": figures(pair(self.block)),
            "PIDs": figures(self.pids.to_string()),
        })
    }
}

/// `keel stats [--all] [--no-stream] [--no-trunc] [--format F] [CONTAINER...]`
pub fn stats(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let (mut all, mut no_stream, mut no_trunc) = (false, false, false);
    let mut format = None;
    let mut names = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('a') | Long("all") => all = true,
            Long("no-stream") => no_stream = true,
            Long("no-trunc") => no_trunc = true,
            Long("format") => format = Some(parser.value()?.string()?),
            Value(name) => names.push(name.string()?),
            other => return Err(usage(other.unexpected(), SYNOPSIS)),
        }
    }
    let template = Template::parse(&match format.as_deref() {
        None | Some("" | "table") => DEFAULT_FORMAT.to_owned(),
        Some("json") => "{{json .}}".to_owned(),
        Some(other) => other.to_owned(),
    })?;
    let render = |entries: &[Entry]| -> Result<String> {
        let rows: Vec<Value> = entries.iter().map(|e| e.row(!no_trunc)).collect();
        template.render(&rows, &headers())
    };
    if no_stream {
        let entries = match names.is_empty() {
            true => {
                let listed = list(client, all)?;
                sample_each(client, &listed)
                    .into_iter()
                    .map(|(mut entry, result)| {
                        // As docker: a listed container that answers
                        // nothing shows dashes.
                        entry.invalid = result.is_err();
                        entry
                    })
                    .collect()
            }
            false => {
                let mut entries = Vec::new();
                let mut errors = Vec::new();
                for (entry, result) in sample_each(client, &names) {
                    match result {
                        Ok(()) => entries.push(entry),
                        Err(error) => errors.push(format!("{error:#}")),
                    }
                }
                if !errors.is_empty() {
                    return Err(anyhow!(errors.join("\n")));
                }
                entries
            }
        };
        print!("{}", render(&entries)?);
        return Ok(());
    }
    live(client, &names, all, &render)
}

/// The headers of docker's stats table.
fn headers() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("Container", "CONTAINER"),
        ("Name", "NAME"),
        ("ID", "CONTAINER ID"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ])
}

/// The short ids of the running containers (all of them with `all`).
fn list(client: &Client, all: bool) -> Result<Vec<String>> {
    let list = client.json(
        "GET",
        &format!("/containers/json?all={}", u8::from(all)),
        Upload::None,
    )?;
    Ok(list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some(c["Id"].as_str()?.chars().take(12).collect()))
        .collect())
}

/// One sample of each container (`stream=false`: the daemon takes two, a
/// second apart, for the CPU figure), all at once.
fn sample_each(client: &Client, containers: &[String]) -> Vec<(Entry, Result<()>)> {
    std::thread::scope(|scope| {
        let samplers: Vec<_> = containers
            .iter()
            .map(|container| {
                scope.spawn(move || {
                    let mut entry = Entry::new(container);
                    let result = sample(client, container).map(|stats| entry.update(&stats));
                    (entry, result)
                })
            })
            .collect();
        samplers
            .into_iter()
            .map(|sampler| sampler.join().expect("a sampler does not panic"))
            .collect()
    })
}

fn sample(client: &Client, container: &str) -> Result<ContainerStatsResponse> {
    let mut response = client
        .request(
            "GET",
            &format!("/containers/{}/stats?stream=0", encode(container)),
            Upload::None,
        )?
        .success()?;
    let mut body = Vec::new();
    response.body().read_to_end(&mut body)?;
    serde_json::from_slice(&body).context("the daemon's stats are not JSON")
}

/// A row of the live table and what its stream did.
#[derive(Debug)]
struct Followed {
    entry: Entry,
    /// When the stream last gave a sample; `None` before the first.
    heard: Option<Instant>,
    started: Instant,
    /// The stream ended or failed: nothing more will come.
    ended: bool,
    /// Why the request failed, if the daemon refused it.
    error: Option<String>,
}

type Shared = Arc<Mutex<Followed>>;

fn locked(shared: &Shared) -> std::sync::MutexGuard<'_, Followed> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads `container`'s stream of samples into `followed` until it ends.
fn follow(client: Client, container: String, followed: Shared) {
    let request = client.request(
        "GET",
        &format!("/containers/{}/stats?stream=1", encode(&container)),
        Upload::None,
    );
    let mut response = match request.and_then(|r| r.success()) {
        Ok(response) => response,
        Err(error) => {
            let mut followed = locked(&followed);
            followed.error = Some(format!("{error:#}"));
            followed.ended = true;
            return;
        }
    };
    for line in BufReader::new(response.body()).lines() {
        // The table dropped this container (it stopped, or went away).
        if Arc::strong_count(&followed) == 1 {
            return;
        }
        let Some(stats) = line
            .ok()
            .and_then(|l| serde_json::from_str::<ContainerStatsResponse>(&l).ok())
        else {
            break;
        };
        let mut followed = locked(&followed);
        followed.entry.update(&stats);
        followed.heard = Some(Instant::now());
    }
    locked(&followed).ended = true;
}

/// The live table: redrawn in place (cursor home, each line cleared to
/// its end, the rest of the screen cleared), as docker's CLI draws it.
fn live(
    client: &Client,
    names: &[String],
    all: bool,
    render: &dyn Fn(&[Entry]) -> Result<String>,
) -> Result<()> {
    let mut followed: Vec<(String, Shared)> = Vec::new();
    let start = |container: &str| -> Shared {
        let shared = Arc::new(Mutex::new(Followed {
            entry: Entry::new(container),
            heard: None,
            started: Instant::now(),
            ended: false,
            error: None,
        }));
        let (client, container, for_thread) =
            (client.clone(), container.to_owned(), Arc::clone(&shared));
        std::thread::spawn(move || follow(client, container, for_thread));
        shared
    };
    for name in names {
        followed.push((name.clone(), start(name)));
    }
    // As docker: named containers' first answers come before the table,
    // and a refusal (no such container) is the command's error.
    let first_answer = |shared: &Shared| {
        let followed = locked(shared);
        followed.heard.is_some() || followed.ended || followed.started.elapsed() > SILENCE
    };
    while !followed.iter().all(|(_, shared)| first_answer(shared)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let errors: Vec<String> = followed
        .iter()
        .filter_map(|(_, shared)| locked(shared).error.clone())
        .collect();
    if !errors.is_empty() {
        return Err(anyhow!(errors.join("\n")));
    }
    let stdout = std::io::stdout();
    loop {
        if names.is_empty() {
            // The listed containers now: new ones followed, gone ones
            // (or, without -a, stopped ones) dropped.
            let listed = list(client, all)?;
            followed.retain(|(id, _)| listed.contains(id));
            for id in listed {
                if !followed.iter().any(|(known, _)| *known == id) {
                    let shared = start(&id);
                    followed.push((id, shared));
                }
            }
        }
        let entries: Vec<Entry> = followed
            .iter()
            .map(|(_, shared)| {
                let followed = locked(shared);
                let last = followed.heard.unwrap_or(followed.started);
                let mut entry = followed.entry.clone();
                entry.invalid |= followed.ended || last.elapsed() > SILENCE;
                entry
            })
            .collect();
        let mut frame = String::from("\x1b[H");
        for line in render(&entries)?.split('\n') {
            frame.push_str(line);
            frame.push_str("\x1b[K\n");
        }
        frame.push_str("\x1b[J");
        let mut out = stdout.lock();
        out.write_all(frame.as_bytes())?;
        out.flush()?;
        drop(out);
        std::thread::sleep(REDRAW);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_reads_as_dockers() {
        let mut stats = ContainerStatsResponse {
            name: "/web".into(),
            id: "0123456789abcdef0123".into(),
            ..Default::default()
        };
        stats.memory_stats.usage = 3 << 20;
        stats.memory_stats.limit = 64 << 20;
        stats.pids_stats.current = 2;
        let mut entry = Entry::new("web");
        entry.update(&stats);
        let row = entry.row(true);
        assert_eq!(row["ID"], "0123456789ab");
        assert_eq!(row["Name"], "web");
        assert_eq!(row["CPUPerc"], "0.00%");
        assert_eq!(row["MemUsage"], "3MiB / 64MiB");
        assert_eq!(row["MemPerc"], "4.69%");
        assert_eq!(row["NetIO"], "0B / 0B");
        assert_eq!(row["PIDs"], "2");
        entry.invalid = true;
        let row = entry.row(false);
        assert_eq!(row["ID"], "0123456789abcdef0123");
        assert_eq!(row["MemUsage"], "-- / --");
        assert_eq!(row["PIDs"], "--");
    }
}
