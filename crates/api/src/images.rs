//! The Engine API's image endpoints, answered from Keel's image store in
//! Docker's JSON shapes.

use std::sync::Arc;

use hyper::StatusCode;
use hyper::body::Incoming;
use keel_engine::CommitOptions;
use keel_image::{Digest, Image, ImportOptions, Reference, Removal};
use serde_json::{Value, json};

use crate::Daemon;
use crate::filters::Filters;
use crate::http::{ApiError, Query, Reply, blocking, body_reader, json, read_json, streamed};
use keel_time::unix_seconds;

type Result<T> = std::result::Result<T, ApiError>;

fn created(image: &Image) -> i64 {
    image
        .config
        .created()
        .as_deref()
        .and_then(unix_seconds)
        .unwrap_or(0)
}

fn tags(image: &Image) -> Vec<String> {
    image.tags.iter().map(Reference::familiar).collect()
}

fn digests(image: &Image) -> Vec<String> {
    image.digests.iter().map(Reference::familiar).collect()
}

/// GET /images/json
pub async fn list(daemon: Arc<Daemon>, query: Query) -> Result<Reply> {
    let filters = Filters::parse(
        &query,
        &["dangling", "label", "label!", "reference"],
        &["before", "since", "until"],
    )?;
    let dangling = filters.bool("dangling")?;
    let all = query.flag("all");
    blocking(move || {
        let images = daemon.store().images()?;
        let mut out = Vec::new();
        for mut image in images {
            if dangling.is_some_and(|dangling| dangling != image.tags.is_empty())
                || !filters.image_labels_match(&image.labels())
                || !keep_matching_references(&mut image, &filters)
            {
                continue;
            }
            let _ = all; // Keel keeps no intermediate images; -a lists the same.
            out.push(summary(&image, -1, -1));
        }
        Ok(json(StatusCode::OK, &out))
    })
    .await
}

/// An image as lists show it; shared size and container count are -1
/// where not computed, as in Docker.
fn summary(image: &Image, shared_size: i64, containers: i64) -> Value {
    let labels = image
        .config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone());
    json!({
        "Id": image.id,
        "ParentId": "",
        "RepoTags": tags(image),
        "RepoDigests": digests(image),
        "Created": created(image),
        "Size": image.size,
        "SharedSize": shared_size,
        "Labels": labels,
        "Containers": containers,
    })
}

/// GET /system/df: images, containers, volumes and the build cache.
pub async fn disk_usage(daemon: Arc<Daemon>) -> Result<Reply> {
    blocking(move || {
        let usage = daemon.store().disk_usage()?;
        let cache = daemon.store().build_cache_usage()?;
        let builder_size: u64 = cache.iter().filter(|c| !c.shared).map(|c| c.size).sum();
        let cache: Vec<Value> = cache
            .into_iter()
            .map(|c| {
                json!({
                    "ID": c.id, "Parents": [], "Type": c.kind, "Description": "",
                    "InUse": false, "Shared": c.shared, "Size": c.size,
                    "CreatedAt": c.created, "LastUsedAt": null, "UsageCount": 0,
                })
            })
            .collect();
        let containers: Vec<Value> = daemon
            .engine
            .containers()
            .iter()
            .map(|c| {
                let mut summary = crate::containers::summary(&daemon, c);
                summary["SizeRw"] = json!(daemon.engine.size_rw(&c.id));
                summary
            })
            .collect();
        let images: Vec<Value> = usage
            .images
            .iter()
            .map(|u| summary(&u.image, u.shared_size as i64, u.containers as i64))
            .collect();
        Ok(json(
            StatusCode::OK,
            &json!({
                "LayersSize": usage.layers_size,
                "Images": images,
                "Containers": containers,
                "Volumes": crate::volumes::with_usage(&daemon),
                "BuildCache": cache,
                "BuilderSize": builder_size,
            }),
        ))
    })
    .await
}

/// `reference=PATTERN` (with `*` wildcards, as Docker matches them): the
/// image is listed with only the references that match, as Docker lists
/// it, and not at all when none does.
fn keep_matching_references(image: &mut Image, filters: &Filters) -> bool {
    if !filters.contains("reference") {
        return true;
    }
    let matches = |reference: &Reference| {
        filters.get("reference").any(|pattern| {
            glob(pattern, &reference.familiar())
                || glob(pattern, reference.familiar_name())
                || glob(pattern, &reference.to_string())
        })
    };
    image.tags.retain(|reference| matches(reference));
    image.digests.retain(|reference| matches(reference));
    !image.tags.is_empty() || !image.digests.is_empty()
}

/// Shell-style matching with `*` (not across '/') and `?`.
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && t[0] != b'/' && go(p, &t[1..])),
            (Some(b'?'), Some(&c)) if c != b'/' => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// GET /images/{name}/json
pub async fn inspect(daemon: Arc<Daemon>, name: String) -> Result<Reply> {
    blocking(move || {
        let id = daemon.store().resolve(&name)?;
        let image = daemon.store().image(&id)?;
        let raw: Value = serde_json::from_slice(&daemon.store().raw_config(&id)?).unwrap_or_default();
        let lower: Vec<String> = image
            .chain_ids
            .iter()
            .rev()
            .map(|c| daemon.store().layers().diff_dir(c).display().to_string())
            .collect();
        Ok(json(
            StatusCode::OK,
            &json!({
                "Id": image.id,
                "RepoTags": tags(&image),
                "RepoDigests": digests(&image),
                "Parent": "",
                "Comment": image.config.history().as_ref().and_then(|h| h.last()?.comment().clone()).unwrap_or_default(),
                "Created": raw.get("created").cloned().unwrap_or(Value::Null),
                "DockerVersion": raw.get("docker_version").cloned().unwrap_or(json!("")),
                "Author": raw.get("author").cloned().unwrap_or(json!("")),
                "Config": raw.get("config").cloned().unwrap_or(Value::Null),
                "Architecture": raw.get("architecture").cloned().unwrap_or(Value::Null),
                "Variant": raw.get("variant").cloned(),
                "Os": raw.get("os").cloned().unwrap_or(Value::Null),
                "Size": image.size,
                "GraphDriver": {"Name": "overlay2", "Data": {"LowerDir": lower.join(":")}},
                "RootFS": {"Type": "layers", "Layers": image.layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>()},
                "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
            }),
        ))
    })
    .await
}

/// GET /images/{name}/history
pub async fn history(daemon: Arc<Daemon>, name: String) -> Result<Reply> {
    blocking(move || {
        let id = daemon.store().resolve(&name)?;
        let image = daemon.store().image(&id)?;
        let steps = daemon.store().history(&id)?;
        let count = steps.len();
        let out: Vec<Value> = steps
            .into_iter()
            .enumerate()
            .rev()
            .map(|(i, step)| {
                let top = i + 1 == count;
                json!({
                    "Id": if top { image.id.to_string() } else { "<missing>".to_owned() },
                    "Created": step.created.as_deref().and_then(unix_seconds).unwrap_or(0),
                    "CreatedBy": step.created_by,
                    "Tags": if top { Some(tags(&image)) } else { None },
                    "Size": step.size,
                    "Comment": step.comment,
                })
            })
            .collect();
        Ok(json(StatusCode::OK, &out))
    })
    .await
}

/// POST /images/{name}/tag?repo=&tag=
pub async fn tag(daemon: Arc<Daemon>, name: String, query: Query) -> Result<Reply> {
    let repo = query.get("repo").unwrap_or_default().to_owned();
    let tag = query
        .get("tag")
        .filter(|t| !t.is_empty())
        .unwrap_or("latest")
        .to_owned();
    blocking(move || {
        let reference = Reference::parse_repository(&repo)
            .or_else(|_| Reference::parse(&repo))?
            .with_tag(&tag)?;
        daemon.engine.tag_image(&name, &reference)?;
        Ok(crate::http::empty(StatusCode::CREATED))
    })
    .await
}

/// DELETE /images/{name}?force=
pub async fn remove(daemon: Arc<Daemon>, name: String, query: Query) -> Result<Reply> {
    let force = query.flag("force");
    blocking(move || {
        let removals = daemon.engine.remove_image(&name, force)?;
        Ok(json(
            StatusCode::OK,
            &removals.iter().map(removal_json).collect::<Vec<_>>(),
        ))
    })
    .await
}

fn removal_json(removal: &Removal) -> Value {
    match removal {
        Removal::Untagged(name) => json!({"Untagged": name}),
        Removal::Deleted(digest) => json!({"Deleted": digest}),
    }
}

/// POST /images/prune?filters=
pub async fn prune(daemon: Arc<Daemon>, query: Query) -> Result<Reply> {
    let filter = crate::prune::PruneFilter::parse(&query, &["dangling"])?;
    // Only dangling images unless `dangling=false`.
    let all = filter.filters.bool("dangling")? == Some(false);
    blocking(move || {
        let pruned = daemon.engine.prune_images(all, |image| {
            let created = image.config.created().as_deref().unwrap_or_default();
            filter.selects_image(created, &image.labels())
        })?;
        let deleted: Vec<Value> = pruned.removals.iter().map(removal_json).collect();
        Ok(json(
            StatusCode::OK,
            &json!({"ImagesDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) }, "SpaceReclaimed": pruned.reclaimed}),
        ))
    })
    .await
}

/// POST /images/load: the body is the archive; answers Docker's stream of
/// `{"stream": "Loaded image: ..."}` lines.
pub async fn load(daemon: Arc<Daemon>, body: Incoming) -> Result<Reply> {
    let reader = body_reader(body);
    // A client that goes away drops this future, and the load stops.
    let cancel = keel_image::Cancel::default();
    let _cancel_when_gone = cancel.on_drop();
    blocking(move || {
        let loaded = daemon
            .engine
            .load_images(reader, "the uploaded archive", &cancel)?;
        let mut lines = Vec::new();
        for image in loaded {
            if let (Some(reference), Some(old)) = (&image.reference, &image.replaced) {
                lines.push(format!(
                    "The image {} already exists, renaming the old one with ID {old} to empty string\n",
                    reference.familiar()
                ));
            }
            lines.push(match &image.reference {
                Some(reference) => format!("Loaded image: {}\n", reference.familiar()),
                None => format!("Loaded image ID: {}\n", image.id),
            });
        }
        let mut out = Vec::new();
        for line in lines {
            out.extend(serde_json::to_vec(&json!({ "stream": line })).expect("JSON"));
            out.push(b'\n');
        }
        Ok(hyper::Response::builder()
            .status(StatusCode::OK)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(crate::http::Body::Full(Some(out.into())))
            .expect("a valid response"))
    })
    .await
}

/// GET /images/get?names=... and GET /images/{name}/get: a docker-archive.
pub async fn save(daemon: Arc<Daemon>, names: Vec<String>) -> Result<Reply> {
    if names.is_empty() {
        return Err(ApiError::bad_request("no image to save: name at least one"));
    }
    // Every name checked before the answer begins: a bad one is an error
    // status, not a cut archive.
    let checked = Arc::clone(&daemon);
    let names = blocking(move || {
        for name in &names {
            checked.store().resolve(name)?;
        }
        Ok(names)
    })
    .await?;
    Ok(streamed("application/x-tar", move |out| {
        daemon
            .engine
            .save_images(&names, out)
            .map_err(|e| std::io::Error::other(crate::http::message(e)))
    }))
}

/// POST /images/create?fromSrc=-: import the body as a root filesystem.
pub async fn create(daemon: Arc<Daemon>, query: Query, body: Incoming) -> Result<Reply> {
    if query.get("fromSrc") != Some("-") {
        return Err(ApiError::bad_request(
            "import needs fromSrc=- (the tarball as the request body)",
        ));
    }
    let reference = repo_tag_reference(&query)?;
    let changes: Vec<String> = query
        .all("changes")
        .into_iter()
        .map(str::to_owned)
        .collect();
    let options = ImportOptions {
        config: serde_json::Map::new(),
        message: query
            .get("message")
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        source: "-".to_owned(),
        created: keel_time::now_rfc3339(),
    };
    let reader = body_reader(body);
    let cancel = keel_image::Cancel::default();
    let _cancel_when_gone = cancel.on_drop();
    blocking(move || {
        let id: Digest =
            daemon
                .engine
                .import_image(reader, &changes, options, reference.as_ref(), &cancel)?;
        Ok(json(StatusCode::OK, &json!({ "status": id })))
    })
    .await
}

/// The reference `repo` and `tag` name (`latest` when no tag is given),
/// as import and commit take them; none without a repo.
fn repo_tag_reference(query: &Query) -> Result<Option<Reference>> {
    let Some(repo) = query.get("repo").filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let base = Reference::parse_repository(repo).or_else(|_| Reference::parse(repo))?;
    Ok(Some(match query.get("tag").filter(|t| !t.is_empty()) {
        Some(tag) => base.with_tag(tag)?,
        None if base.tag().is_some() => base,
        None => base.with_tag("latest")?,
    }))
}

/// POST /commit?container=…: the container's changes as a new image. The
/// body, a container config, overrides what the container runs where it
/// sets a field.
pub async fn commit(daemon: Arc<Daemon>, query: Query, body: Incoming) -> Result<Reply> {
    let container = query.get("container").unwrap_or_default().to_owned();
    let overrides: Option<serde_json::Map<String, Value>> = read_json(body).await?;
    let options = CommitOptions {
        changes: query
            .all("changes")
            .into_iter()
            .map(str::to_owned)
            .collect(),
        comment: query.get("comment").unwrap_or_default().to_owned(),
        author: query.get("author").unwrap_or_default().to_owned(),
        // Paused unless the client says pause=false, as Docker.
        pause: query.get("pause").is_none() || query.flag("pause"),
        reference: repo_tag_reference(&query)?,
        overrides: overrides.unwrap_or_default(),
    };
    let cancel = keel_image::Cancel::default();
    let _cancel_when_gone = cancel.on_drop();
    blocking(move || {
        let id = daemon.engine.commit(&container, &options, &cancel)?;
        Ok(json(StatusCode::CREATED, &json!({ "Id": id })))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_patterns_match_as_docker_globs() {
        assert!(glob("busy*", "busybox:latest"));
        assert!(glob("*/app:*", "team/app:1"));
        assert!(!glob("*", "team/app"));
        assert!(glob("keel-test/*", "keel-test/a"));
    }
}
