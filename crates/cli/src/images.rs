//! The image commands: images, rmi, tag, history, inspect, load, save,
//! import, image prune.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};

use anyhow::{Context, Result, bail};
use lexopt::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};

use crate::client::{Client, Upload, encode};
use crate::format::{Template, human_size, human_size_with_precision};
use crate::usage;
use keel_time::{ago, now_unix};

fn short_id(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `keel images [OPTIONS] [REPOSITORY[:TAG]]`
pub fn images(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let (mut quiet, mut all, mut digests, mut no_trunc) = (false, false, false, false);
    let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut format = None;
    let mut reference = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('q') | Long("quiet") => quiet = true,
            Short('a') | Long("all") => all = true,
            Long("digests") => digests = true,
            Long("no-trunc") => no_trunc = true,
            Short('f') | Long("filter") => {
                crate::objects::add_filter(&mut filters, &parser.value()?.string()?)?
            }
            Long("format") => format = Some(parser.value()?.string()?),
            Value(value) if reference.is_none() => reference = Some(value.string()?),
            other => {
                return Err(usage(
                    other.unexpected(),
                    "images [OPTIONS] [REPOSITORY[:TAG]]",
                ));
            }
        }
    }
    if let Some(reference) = reference {
        filters
            .entry("reference".to_owned())
            .or_default()
            .push(reference);
    }
    let mut path = format!("/images/json?all={}", u8::from(all));
    if !filters.is_empty() {
        path.push_str("&filters=");
        path.push_str(&encode(&serde_json::to_string(&filters)?));
    }
    let list = client.json("GET", &path, Upload::None)?;
    let now = now_unix();
    let mut rows: Vec<Value> = Vec::new();
    for image in list.as_array().into_iter().flatten() {
        let id = image["Id"].as_str().unwrap_or_default();
        let id = if no_trunc {
            id.to_owned()
        } else {
            short_id(id)
        };
        let created = image["Created"].as_i64().unwrap_or(0);
        let mut names: Vec<(String, String)> = strings(&image["RepoTags"])
            .iter()
            .map(|t| match t.rsplit_once(':') {
                Some((repo, tag)) if !tag.contains('/') => (repo.to_owned(), tag.to_owned()),
                _ => (t.clone(), "<none>".to_owned()),
            })
            .collect();
        let repo_digests = strings(&image["RepoDigests"]);
        // An image pulled by digest only is listed under its repository.
        for pinned in &repo_digests {
            let repository = pinned.split('@').next().unwrap_or_default();
            if !names.iter().any(|(name, _)| name == repository) {
                names.push((repository.to_owned(), "<none>".to_owned()));
            }
        }
        if names.is_empty() {
            names.push(("<none>".to_owned(), "<none>".to_owned()));
        }
        for (repository, tag) in names {
            let digest = repo_digests
                .iter()
                .find_map(|d| d.strip_prefix(&format!("{repository}@")).map(str::to_owned))
                .unwrap_or_else(|| "<none>".to_owned());
            rows.push(json!({
                "ID": id,
                "Repository": repository,
                "Tag": tag,
                "Digest": digest,
                "CreatedSince": ago(created, now),
                "CreatedAt": created.to_string(),
                "Size": human_size(image["Size"].as_u64().unwrap_or(0)),
            }));
        }
    }
    let mut out = std::io::stdout().lock();
    if quiet {
        // One line per row, as docker prints it: an image with two tags twice.
        for row in &rows {
            writeln!(out, "{}", row["ID"].as_str().unwrap_or_default())?;
        }
        return Ok(());
    }
    let headers = BTreeMap::from([
        ("ID", "IMAGE ID"),
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("Digest", "DIGEST"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Size", "SIZE"),
    ]);
    let template = match format {
        Some(format) => format,
        None if digests => {
            "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
                .to_owned()
        }
        None => "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".to_owned(),
    };
    out.write_all(
        Template::parse(&template)?
            .render(&rows, &headers)?
            .as_bytes(),
    )?;
    Ok(())
}

/// `keel rmi [-f] IMAGE...`: prints what was untagged and deleted; the
/// first failure is reported after the rest are tried, as docker does.
pub fn rmi(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let mut force = false;
    let mut names = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('f') | Long("force") => force = true,
            Long("no-prune") => {}
            Value(value) => names.push(value.string()?),
            other => return Err(usage(other.unexpected(), "rmi [OPTIONS] IMAGE [IMAGE...]")),
        }
    }
    if names.is_empty() {
        bail!(
            "\"keel rmi\" requires at least 1 argument.\nUsage:  keel rmi [OPTIONS] IMAGE [IMAGE...]"
        );
    }
    let mut failures = Vec::new();
    for name in names {
        match client.json(
            "DELETE",
            &format!("/images/{name}?force={}", u8::from(force)),
            Upload::None,
        ) {
            Ok(removals) => {
                for removal in removals.as_array().into_iter().flatten() {
                    if let Some(name) = removal["Untagged"].as_str() {
                        println!("Untagged: {name}");
                    }
                    if let Some(digest) = removal["Deleted"].as_str() {
                        println!("Deleted: {digest}");
                    }
                }
            }
            Err(error) => failures.push(error.to_string()),
        }
    }
    if !failures.is_empty() {
        bail!(failures.join("\n"));
    }
    Ok(())
}

/// `keel tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]`
pub fn tag(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let mut names = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Value(value) => names.push(value.string()?),
            other => {
                return Err(usage(
                    other.unexpected(),
                    "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
                ));
            }
        }
    }
    let [source, target] = names.as_slice() else {
        bail!(
            "\"keel tag\" requires exactly 2 arguments.\nUsage:  keel tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]"
        );
    };
    // The tag is what follows the last ':' after the last '/'.
    let (repo, tag) = match target.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (target.as_str(), "latest"),
    };
    client.json(
        "POST",
        &format!(
            "/images/{source}/tag?repo={}&tag={}",
            encode(repo),
            encode(tag)
        ),
        Upload::None,
    )?;
    Ok(())
}

/// `keel history [OPTIONS] IMAGE`
pub fn history(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let (mut quiet, mut no_trunc, mut human) = (false, false, true);
    let mut format = None;
    let mut name = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('q') | Long("quiet") => quiet = true,
            Long("no-trunc") => no_trunc = true,
            Short('H') | Long("human") => human = parser.value()?.string()? != "false",
            Long("format") => format = Some(parser.value()?.string()?),
            Value(value) if name.is_none() => name = Some(value.string()?),
            other => return Err(usage(other.unexpected(), "history [OPTIONS] IMAGE")),
        }
    }
    let Some(name) = name else {
        bail!(
            "\"keel history\" requires exactly 1 argument.\nUsage:  keel history [OPTIONS] IMAGE"
        );
    };
    let steps = client.json("GET", &format!("/images/{name}/history"), Upload::None)?;
    let now = now_unix();
    let mut rows = Vec::new();
    for step in steps.as_array().into_iter().flatten() {
        let id = step["Id"].as_str().unwrap_or_default();
        let id = if id == "<missing>" || no_trunc {
            id.to_owned()
        } else {
            short_id(id)
        };
        let created = step["Created"].as_i64().unwrap_or(0);
        let mut created_by = step["CreatedBy"].as_str().unwrap_or_default().to_owned();
        if !no_trunc && created_by.chars().count() > 45 {
            created_by = created_by.chars().take(44).collect::<String>() + "…";
        }
        let size = step["Size"].as_u64().unwrap_or(0);
        rows.push(json!({
            "ID": id,
            "CreatedSince": if human { ago(created, now) } else { created.to_string() },
            "CreatedBy": created_by,
            "Size": if human { human_size(size) } else { size.to_string() },
            "Comment": step["Comment"].as_str().unwrap_or_default(),
        }));
    }
    let headers = BTreeMap::from([
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ]);
    crate::objects::print_rows(
        &rows,
        quiet,
        "ID",
        format,
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
        &headers,
    )
}

/// `keel inspect` / `keel image inspect [--format F] NAME...`
pub fn inspect(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let mut format = None;
    let mut kind: Option<String> = None;
    let mut names = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('f') | Long("format") => format = Some(parser.value()?.string()?),
            Long("type") => {
                let value: String = parser.value()?.string()?;
                if value != "image" && value != "container" {
                    bail!("\"{value}\" is not a valid value for --type: use container or image");
                }
                kind = Some(value);
            }
            Value(value) => names.push(value.string()?),
            other => {
                return Err(usage(
                    other.unexpected(),
                    "inspect [OPTIONS] NAME [NAME...]",
                ));
            }
        }
    }
    if names.is_empty() {
        bail!(
            "\"keel inspect\" requires at least 1 argument.\nUsage:  keel inspect [OPTIONS] NAME [NAME...]"
        );
    }
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for name in &names {
        // Containers first, then images, as docker inspect looks.
        let paths = match kind.as_deref() {
            Some("image") => vec![format!("/images/{name}/json")],
            Some(_) => vec![format!("/containers/{name}/json")],
            None => vec![
                format!("/containers/{name}/json"),
                format!("/images/{name}/json"),
            ],
        };
        match paths
            .iter()
            .find_map(|path| client.json("GET", path, Upload::None).ok())
        {
            Some(object) => found.push(object),
            None => failures.push(format!("Error: No such object: {name}")),
        }
    }
    match format {
        Some(format) => {
            let template = Template::parse(&format)?;
            print!("{}", template.render(&found, &BTreeMap::new())?);
        }
        None => println!("{}", pretty(&Value::Array(found))?),
    }
    if !failures.is_empty() {
        bail!(failures.join("\n"));
    }
    Ok(())
}

/// JSON indented with four spaces, as docker inspect prints it.
fn pretty(value: &Value) -> Result<String> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut serializer)?;
    Ok(String::from_utf8(out)?)
}

/// `keel load [-i FILE] [-q]`
pub fn load(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let mut input = None;
    let mut quiet = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('i') | Long("input") => input = Some(parser.value()?.string()?),
            Short('q') | Long("quiet") => quiet = true,
            other => return Err(usage(other.unexpected(), "load [OPTIONS]")),
        }
    }
    let mut source: Box<dyn Read> = match &input {
        Some(path) => Box::new(std::fs::File::open(path).with_context(|| format!("open {path}"))?),
        None => {
            if std::io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            Box::new(std::io::stdin().lock())
        }
    };
    let mut response = client
        .request(
            "POST",
            &format!("/images/load?quiet={}", u8::from(quiet)),
            Upload::Stream(&mut source),
        )?
        .success()?;
    let mut body = String::new();
    response.body().read_to_string(&mut body)?;
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let message: Value = serde_json::from_str(line)?;
        if let Some(error) = message["error"].as_str() {
            bail!(crate::client::DaemonError(error.to_owned()));
        }
        if let Some(text) = message["stream"].as_str() {
            print!("{text}");
        }
    }
    Ok(())
}

/// `keel save [-o FILE] IMAGE...`
pub fn save(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let mut output = None;
    let mut names = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('o') | Long("output") => output = Some(parser.value()?.string()?),
            Value(value) => names.push(value.string()?),
            other => return Err(usage(other.unexpected(), "save [OPTIONS] IMAGE [IMAGE...]")),
        }
    }
    if names.is_empty() {
        bail!(
            "\"keel save\" requires at least 1 argument.\nUsage:  keel save [OPTIONS] IMAGE [IMAGE...]"
        );
    }
    let query: Vec<String> = names
        .iter()
        .map(|n| format!("names={}", encode(n)))
        .collect();
    download(
        client,
        &format!("/images/get?{}", query.join("&")),
        output.as_deref(),
    )
}

/// Streams a tarball the daemon answers with to `output`, or to stdout
/// when it is not a terminal (`save`, `export`).
pub fn download(client: &Client, path: &str, output: Option<&str>) -> Result<()> {
    if output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let mut response = client.request("GET", path, Upload::None)?.success()?;
    match output {
        Some(path) => {
            // Written beside the target and renamed, so a failed download
            // leaves no partial archive under the asked-for name.
            let target = std::path::Path::new(path);
            let dir = target
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let (temp, mut file) = tempfile_in(dir)?;
            let copied = std::io::copy(response.body(), &mut file)
                .context("the archive was cut short")
                .and_then(|_| Ok(file.sync_all()?))
                .and_then(|()| {
                    std::fs::rename(&temp, target).with_context(|| format!("cannot write {path}"))
                });
            if copied.is_err() {
                std::fs::remove_file(&temp).ok();
            }
            copied
        }
        None => {
            std::io::copy(response.body(), &mut std::io::stdout().lock())
                .context("the archive was cut short")?;
            Ok(())
        }
    }
}

/// A new file in `dir` with a unique hidden name.
fn tempfile_in(dir: &std::path::Path) -> Result<(std::path::PathBuf, std::fs::File)> {
    for attempt in 0..100u32 {
        let path = dir.join(format!(".keel-save-{}-{attempt}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("cannot create a file in {}", dir.display()));
            }
        }
    }
    bail!("cannot create a temporary file in {}", dir.display())
}

/// `keel import [OPTIONS] file|- [REPOSITORY[:TAG]]`
pub fn import(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let mut changes = Vec::new();
    let mut message = None;
    let mut positional = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('c') | Long("change") => changes.push(parser.value()?.string()?),
            Short('m') | Long("message") => message = Some(parser.value()?.string()?),
            Long("platform") => {
                parser.value()?;
            }
            Value(value) => positional.push(value.string()?),
            other => {
                return Err(usage(
                    other.unexpected(),
                    "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
                ));
            }
        }
    }
    let (source, reference) = match positional.as_slice() {
        [source] => (source, None),
        [source, reference] => (source, Some(reference)),
        _ => bail!(
            "\"keel import\" requires at least 1 and at most 2 arguments.\nUsage:  keel import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]"
        ),
    };
    let mut query = "fromSrc=-".to_owned();
    if let Some(reference) = reference {
        query.push_str(&format!("&repo={}", encode(reference)));
    }
    for change in &changes {
        query.push_str(&format!("&changes={}", encode(change)));
    }
    if let Some(message) = &message {
        query.push_str(&format!("&message={}", encode(message)));
    }
    let mut input: Box<dyn Read> = if source == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(source).with_context(|| format!("open {source}"))?)
    };
    let mut response = client
        .request(
            "POST",
            &format!("/images/create?{query}"),
            Upload::Stream(&mut input),
        )?
        .success()?;
    let mut body = String::new();
    response.body().read_to_string(&mut body)?;
    let status: Value = serde_json::from_str(body.trim())?;
    println!("{}", status["status"].as_str().unwrap_or_default());
    Ok(())
}

/// `keel commit [-a AUTHOR] [-c CHANGE]… [-m MESSAGE] [-p=false] CONTAINER
/// [REPOSITORY[:TAG]]`: prints the new image's id.
pub fn commit(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    const USAGE: &str = "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]";
    let mut query = Vec::new();
    let mut positional = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('a') | Long("author") => {
                query.push(format!("author={}", encode(&parser.value()?.string()?)))
            }
            Short('c') | Long("change") => {
                query.push(format!("changes={}", encode(&parser.value()?.string()?)))
            }
            Short('m') | Long("message") => {
                query.push(format!("comment={}", encode(&parser.value()?.string()?)))
            }
            Short('p') | Long("pause") => {
                let pause = crate::containers::bool_value(parser, "pause")?;
                query.push(format!("pause={pause}"));
            }
            Value(value) => positional.push(value.string()?),
            other => return Err(usage(other.unexpected(), USAGE)),
        }
    }
    let (container, reference) = match positional.as_slice() {
        [container] => (container, None),
        [container, reference] => (container, Some(reference)),
        _ => bail!(
            "\"keel commit\" requires at least 1 and at most 2 arguments.\nUsage:  keel {USAGE}"
        ),
    };
    query.push(format!("container={}", encode(container)));
    if let Some(reference) = reference {
        query.push(format!("repo={}", encode(reference)));
    }
    let answer = client.json(
        "POST",
        &format!("/commit?{}", query.join("&")),
        Upload::None,
    )?;
    println!("{}", answer["Id"].as_str().unwrap_or_default());
    Ok(())
}

/// `keel system df`: what images (and, once Keel runs them, containers,
/// volumes and build cache) take on disk.
pub fn system_df(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let mut format = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("format") => format = Some(parser.value()?.string()?),
            other => return Err(usage(other.unexpected(), "system df [OPTIONS]")),
        }
    }
    let usage = client.json("GET", "/system/df", Upload::None)?;
    let images = usage["Images"].as_array().cloned().unwrap_or_default();
    let total = usage["LayersSize"].as_u64().unwrap_or(0);
    let active: Vec<&Value> = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .collect();
    let used: u64 = active
        .iter()
        .map(|i| {
            i["Size"]
                .as_u64()
                .unwrap_or(0)
                .saturating_sub(i["SharedSize"].as_u64().unwrap_or(0))
        })
        .sum();
    let size = |bytes: u64| human_size_with_precision(bytes, 4);
    let reclaimable = total.saturating_sub(used);
    let reclaimable = match (reclaimable * 100).checked_div(total) {
        Some(percent) => format!("{} ({percent}%)", size(reclaimable)),
        None => size(reclaimable),
    };
    let count = |key: &str| usage[key].as_array().map_or(0, Vec::len);
    // As the docker CLI counts it: what only the cache holds, none of it
    // in use once no build runs.
    let cache_size = usage["BuilderSize"].as_u64().unwrap_or(0);
    let rows = vec![
        json!({"Type": "Images", "TotalCount": images.len().to_string(), "Active": active.len().to_string(), "Size": size(total), "Reclaimable": reclaimable}),
        json!({"Type": "Containers", "TotalCount": count("Containers").to_string(), "Active": "0", "Size": "0B", "Reclaimable": "0B"}),
        json!({"Type": "Local Volumes", "TotalCount": count("Volumes").to_string(), "Active": "0", "Size": "0B", "Reclaimable": "0B"}),
        json!({"Type": "Build Cache", "TotalCount": count("BuildCache").to_string(), "Active": "0", "Size": size(cache_size), "Reclaimable": size(cache_size)}),
    ];
    let headers = BTreeMap::from([
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ]);
    let template = format.unwrap_or_else(|| {
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}".to_owned()
    });
    print!("{}", Template::parse(&template)?.render(&rows, &headers)?);
    Ok(())
}
