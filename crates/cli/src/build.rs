//! `keel build [OPTIONS] PATH | -`: the daemon's `POST /build`, which
//! reads a directory context where it is (the daemon is on this machine)
//! or is sent it as a tar, its progress shown as the classic builder's.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use lexopt::prelude::*;
use serde_json::{Map, Value};

use keel_api_types::build::{
    CONTEXT_DIR, CONTEXT_ID, EXPLAIN_CACHE, NO_CACHE_FILTER, SECRETS_HEADER, context_id,
    encode_secrets,
};

use crate::client::{Client, Response, Upload, encode};
use crate::containers::{Exit, size_flag, ulimit_flag};
use crate::usage;

const USAGE: &str = "build [OPTIONS] PATH | -";

pub fn build(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let mut query = vec!["rm=1".to_owned()];
    let mut build_args = Map::new();
    let mut labels = Map::new();
    let mut dockerfile = None;
    let mut quiet = false;
    let mut iidfile = None;
    let mut context = None;
    let mut secrets = std::collections::BTreeMap::new();
    let mut ulimits = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('t') | Long("tag") => {
                query.push(format!("t={}", encode(&parser.value()?.string()?)))
            }
            Short('f') | Long("file") => dockerfile = Some(parser.value()?.string()?),
            Long("build-arg") => {
                let value = parser.value()?.string()?;
                match value.split_once('=') {
                    Some((name, value)) => build_args.insert(name.into(), value.into()),
                    None => build_args.insert(
                        value.clone(),
                        std::env::var(&value).map_or(Value::Null, Value::String),
                    ),
                };
            }
            Long("label") => {
                let value = parser.value()?.string()?;
                let (name, value) = value.split_once('=').unwrap_or((&value, ""));
                labels.insert(name.into(), value.into());
            }
            Long("target") => query.push(format!("target={}", encode(&parser.value()?.string()?))),
            // What RUN steps are limited to, as `docker build` takes it.
            Short('m') | Long("memory") => {
                query.push(format!("memory={}", size_flag(parser, "-m, --memory")?))
            }
            Long("memory-swap") => {
                let text = parser.value()?.string()?;
                let bytes = match text.as_str() {
                    "-1" => -1,
                    _ => keel_units::ram_in_bytes(&text).with_context(|| {
                        format!("invalid argument \"{text}\" for \"--memory-swap\" flag")
                    })?,
                };
                query.push(format!("memswap={bytes}"));
            }
            Long("shm-size") => query.push(format!("shmsize={}", size_flag(parser, "--shm-size")?)),
            Short('c') | Long("cpu-shares") => query.push(format!(
                "cpushares={}",
                integer(&parser.value()?.string()?, "-c, --cpu-shares")?
            )),
            Long("cpu-period") => query.push(format!(
                "cpuperiod={}",
                integer(&parser.value()?.string()?, "--cpu-period")?
            )),
            Long("cpu-quota") => query.push(format!(
                "cpuquota={}",
                integer(&parser.value()?.string()?, "--cpu-quota")?
            )),
            Long("cpuset-cpus") => {
                query.push(format!("cpusetcpus={}", encode(&parser.value()?.string()?)))
            }
            Long("ulimit") => ulimits.push(ulimit_flag(&parser.value()?.string()?)?),
            Long("add-host") => {
                query.push(format!("extrahosts={}", encode(&parser.value()?.string()?)))
            }
            Long("network") => query.push(format!(
                "networkmode={}",
                encode(&parser.value()?.string()?)
            )),
            Long("platform") => {
                query.push(format!("platform={}", encode(&parser.value()?.string()?)))
            }
            Long("no-cache") => query.push("nocache=1".to_owned()),
            Long("pull") => query.push("pull=1".to_owned()),
            Long("no-cache-filter") => query.push(format!(
                "{NO_CACHE_FILTER}={}",
                encode(&parser.value()?.string()?)
            )),
            Long("explain-cache") => query.push(format!("{EXPLAIN_CACHE}=1")),
            // As buildx: the epoch is a build arg the builder knows.
            Long("source-date-epoch") => {
                let epoch = parser.value()?.string()?;
                build_args.insert(keel_build::SOURCE_DATE_EPOCH.into(), epoch.into());
            }
            Long("secret") => {
                let (id, bytes) = secret(&parser.value()?.string()?)?;
                secrets.insert(id, bytes);
            }
            Short('q') | Long("quiet") => quiet = true,
            Long("iidfile") => iidfile = Some(parser.value()?.string()?),
            Long("progress") => {
                let mode = parser.value()?.string()?;
                match mode.as_str() {
                    "auto" | "plain" | "tty" => {}
                    "quiet" => quiet = true,
                    other => bail!(
                        "invalid argument \"{other}\" for \"--progress\" flag: use auto, plain, tty or quiet"
                    ),
                }
            }
            Value(value) if context.is_none() => context = Some(value.string()?),
            other => return Err(usage(other.unexpected(), USAGE)),
        }
    }
    let Some(context) = context else {
        bail!("\"keel build\" requires exactly 1 argument.\nUsage:  keel {USAGE}");
    };
    if let Ok(epoch) = std::env::var(keel_build::SOURCE_DATE_EPOCH)
        && !build_args.contains_key(keel_build::SOURCE_DATE_EPOCH)
    {
        build_args.insert(keel_build::SOURCE_DATE_EPOCH.into(), epoch.into());
    }
    if quiet {
        query.push("q=1".to_owned());
    }
    if !ulimits.is_empty() {
        let json = serde_json::to_string(&ulimits).expect("JSON");
        query.push(format!("ulimits={}", encode(&json)));
    }
    let (dockerfile, outside) = dockerfile_in_context(&context, dockerfile.as_deref())?;
    query.push(format!("dockerfile={}", encode(&dockerfile)));
    for (name, map) in [("buildargs", &build_args), ("labels", &labels)] {
        if !map.is_empty() {
            let json = serde_json::to_string(map).expect("JSON");
            query.push(format!("{name}={}", encode(&json)));
        }
    }
    let path = format!("/build?{}", query.join("&"));
    let encoded = encode_secrets(&secrets);
    // The saved credentials go along, as the docker CLI sends them, for
    // the bases a --pull fetches; like it, a build without them still goes.
    let credentials = keel_registry::ConfigFile::load()
        .and_then(|config| config.all_credentials())
        .unwrap_or_default();
    let registry_config = keel_registry::AuthConfig::configs_header(&credentials);
    let mut headers = vec![("X-Registry-Config", registry_config.as_str())];
    if !secrets.is_empty() {
        headers.push((SECRETS_HEADER, encoded.as_str()));
    }
    let post = |path: &str, upload: Upload| client.request_with("POST", path, &headers, upload);
    let mut response = if context == "-" {
        let mut stdin = std::io::stdin().lock();
        post(&path, Upload::Stream(&mut stdin))?
    } else {
        let dir = Path::new(&context);
        if !dir.is_dir() {
            bail!("unable to prepare context: path {context:?} not found");
        }
        // The daemon is on this machine: it reads the directory where it
        // is, unless it sees another one there; then the tar goes.
        let dir = std::fs::canonicalize(dir)
            .with_context(|| format!("unable to prepare context: {context}"))?;
        let meta = std::fs::metadata(&dir)
            .with_context(|| format!("unable to prepare context: {context}"))?;
        let in_place = format!(
            "{path}&{CONTEXT_DIR}={}&{CONTEXT_ID}={}",
            encode(&dir.to_string_lossy()),
            encode(&context_id(&meta))
        );
        match outside {
            // A Dockerfile from elsewhere goes in the tar.
            Some(text) => upload_context(&post, &path, &dir, &dockerfile, Some(text))?,
            None => match post(&in_place, Upload::None)? {
                refused if refused.status == 412 => {
                    upload_context(&post, &path, &dir, &dockerfile, None)?
                }
                response => response,
            },
        }
    }
    .success()?;
    let mut out = std::io::stdout().lock();
    let mut id = None;
    for line in BufReader::new(response.body()).lines() {
        let line = line.context("the daemon's build stream was cut short")?;
        if line.trim().is_empty() {
            continue;
        }
        let message: Value =
            serde_json::from_str(&line).context("the daemon's build stream is not JSON")?;
        if let Some(error) = message["error"].as_str() {
            let code = message["errorDetail"]["code"].as_i64().unwrap_or(1);
            return Err(Exit {
                code: u8::try_from(code).ok().filter(|c| *c != 0).unwrap_or(1),
                message: Some(error.to_owned()),
            }
            .into());
        }
        if let Some(found) = message["aux"]["ID"].as_str() {
            id = Some(found.to_owned());
        }
        if let Some(text) = message["stream"].as_str() {
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    // The daemon ends every build with its result or its error.
    let Some(id) = id else {
        bail!("the daemon's build stream ended without the image built");
    };
    if let Some(path) = &iidfile {
        std::fs::write(path, id).with_context(|| format!("write {path}"))?;
    }
    Ok(())
}

/// An integer flag's value, or docker's error naming the flag.
fn integer(text: &str, flag: &str) -> Result<i64> {
    text.parse()
        .with_context(|| format!("invalid argument \"{text}\" for \"{flag}\" flag"))
}

/// `--secret id=ID[,src=FILE|,env=VAR][,type=file|env]`, as buildx reads
/// it: the secret's id and its bytes, from the file, the variable, or
/// the variable named as the id.
fn secret(value: &str) -> Result<(String, Vec<u8>)> {
    let (mut id, mut kind, mut source, mut env) = (None, None, None, None);
    for field in value.split(',') {
        let (key, text) = field.split_once('=').unwrap_or((field, ""));
        match key.to_ascii_lowercase().as_str() {
            "id" => id = Some(text.to_owned()),
            "type" if text == "file" || text == "env" => kind = Some(text.to_owned()),
            "type" => bail!("unsupported secret type {text:?}: use file or env"),
            "src" | "source" => source = Some(text.to_owned()),
            "env" => env = Some(text.to_owned()),
            _ => bail!(
                "unexpected key '{key}' in '{value}': --secret takes id, src (or source), env and type"
            ),
        }
    }
    let Some(id) = id.filter(|id| !id.is_empty()) else {
        bail!("invalid secret {value:?}: give its id (id=NAME)");
    };
    // type=env,src=VAR means the variable VAR.
    if kind.as_deref() == Some("env") && env.is_none() {
        env = source.take();
    }
    let variable = |name: &str| {
        std::env::var_os(name)
            .map(std::os::unix::ffi::OsStringExt::into_vec)
            .with_context(|| format!("secret {id}: the environment variable {name} is not set"))
    };
    let bytes = match (source, env) {
        (Some(path), _) => std::fs::read(&path)
            .with_context(|| format!("secret {id}: cannot read the file {path}"))?,
        (None, Some(name)) => variable(&name)?,
        (None, None) => variable(&id)?,
    };
    Ok((id, bytes))
}

/// Sends the context directory `dir` as the body of the build `path`,
/// posted by `post`.
fn upload_context(
    post: &dyn Fn(&str, Upload) -> Result<Response>,
    path: &str,
    dir: &Path,
    dockerfile: &str,
    outside: Option<Vec<u8>>,
) -> Result<Response> {
    let (reader, writer) = std::io::pipe().context("a pipe for the context")?;
    let sent = dir.to_owned();
    let dockerfile = dockerfile.to_owned();
    let sender =
        std::thread::spawn(move || send_context(&sent, &dockerfile, outside.as_deref(), writer));
    let mut reader = reader;
    let response = post(path, Upload::Stream(&mut reader));
    sender
        .join()
        .map_err(|_| anyhow::anyhow!("sending the context failed"))??;
    response
}

/// Where the Dockerfile is in the context, as the docker CLI finds it:
/// `-f` is relative to the current directory (with a directory context);
/// one outside the context, or `-` (stdin), is read here and sent in the
/// tar under a name of its own, as the docker CLI's
/// AddDockerfileToBuildContext does.
fn dockerfile_in_context(context: &str, given: Option<&str>) -> Result<(String, Option<Vec<u8>>)> {
    let own_name = || {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        format!(".dockerfile.{:08x}{:08x}", nanos, std::process::id())
    };
    match given {
        None => Ok(("Dockerfile".to_owned(), None)),
        Some("-") if context == "-" => {
            bail!("invalid argument: can't use stdin for both build context and dockerfile")
        }
        Some("-") => {
            let mut text = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut text)
                .context("cannot read the Dockerfile from stdin")?;
            Ok((own_name(), Some(text)))
        }
        // In a tar on stdin, the path is the tar's.
        Some(path) if context == "-" => Ok((path.to_owned(), None)),
        Some(path) => {
            let file = std::fs::canonicalize(path)
                .with_context(|| format!("cannot locate Dockerfile: {path:?}"))?;
            let dir = std::fs::canonicalize(context)
                .with_context(|| format!("unable to prepare context: {context}"))?;
            match file.strip_prefix(&dir) {
                Ok(relative) => Ok((relative.to_string_lossy().into_owned(), None)),
                Err(_) => {
                    let text = std::fs::read(&file)
                        .with_context(|| format!("cannot read {}", file.display()))?;
                    Ok((own_name(), Some(text)))
                }
            }
        }
    }
}

/// Writes the context directory as a tar (entries owned by root, as the
/// docker CLI sends them), leaving out what its `.dockerignore` excludes
/// but never the Dockerfile or the ignore file themselves. A Dockerfile
/// from outside (`outside`) is added as `dockerfile`, and the sent
/// .dockerignore leaves it out of what COPY sees.
fn send_context(
    dir: &Path,
    dockerfile: &str,
    outside: Option<&[u8]>,
    writer: impl std::io::Write,
) -> Result<()> {
    let ignore = keel_build::Ignore::for_build(dir, dockerfile)
        .with_context(|| format!("cannot read the .dockerignore of {}", dir.display()))?;
    let kept = |relative: &str| {
        relative == dockerfile
            || relative == ".dockerignore"
            || relative == format!("{dockerfile}.dockerignore")
            || !ignore.excludes(relative)
    };
    let mut tar = tar::Builder::new(writer);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut todo = vec![std::path::PathBuf::new()];
    while let Some(relative) = todo.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(dir.join(&relative))
            .with_context(|| format!("cannot list {}", dir.join(&relative).display()))?
            .collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let path = relative.join(entry.file_name());
            let name = path.to_string_lossy().into_owned();
            let is_dir = entry.file_type()?.is_dir();
            let replaced = outside.is_some() && name == ".dockerignore";
            if kept(&name) && !replaced {
                tar.append_path_with_name(dir.join(&path), &path)
                    .with_context(|| format!("cannot send {name}"))?;
            }
            if is_dir && (kept(&name) || ignore.may_include_below(&name)) {
                todo.push(path);
            }
        }
    }
    if let Some(text) = outside {
        let mut ignored = std::fs::read(dir.join(".dockerignore")).unwrap_or_default();
        ignored.extend_from_slice(format!("\n{dockerfile}\n").as_bytes());
        for (name, content) in [(dockerfile, text), (".dockerignore", &ignored[..])] {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o600);
            header.set_size(content.len() as u64);
            tar.append_data(&mut header, name, content)
                .with_context(|| format!("cannot send {name}"))?;
        }
    }
    tar.finish().context("cannot send the context")?;
    Ok(())
}
