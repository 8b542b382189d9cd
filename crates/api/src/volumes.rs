//! The Engine API's volume endpoints: create, list, inspect, remove and
//! prune, in Docker's JSON shapes.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::StatusCode;
use hyper::body::Incoming;
use keel_engine::Volume;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Daemon;
use crate::filters::{Filters, regex_match};
use crate::http::{ApiError, Query, Reply, blocking, empty, json, read_json};

type Result<T> = std::result::Result<T, ApiError>;

fn shown(volume: &Volume) -> Value {
    json!({
        "Name": volume.name,
        "Driver": volume.driver,
        "Mountpoint": volume.mountpoint,
        "CreatedAt": volume.created_at,
        "Labels": volume.labels,
        "Options": volume.options,
        "Scope": volume.scope,
    })
}

/// Volumes with their size and how many containers use them (system df).
pub fn with_usage(daemon: &Daemon) -> Vec<Value> {
    daemon
        .engine
        .volumes()
        .iter()
        .map(|(volume, users)| {
            let mut out = shown(volume);
            out["UsageData"] = json!({
                "Size": daemon.engine.volume_size(&volume.name),
                "RefCount": users.len(),
            });
            out
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: Option<String>,
    driver: Option<String>,
    labels: BTreeMap<String, String>,
}

/// POST /volumes/create
pub async fn create(daemon: Arc<Daemon>, body: Incoming) -> Result<Reply> {
    let request: CreateBody = read_json(body).await?;
    if let Some(driver) = request.driver.filter(|d| !d.is_empty() && d != "local") {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("error looking up volume plugin {driver}: plugin \"{driver}\" not found"),
        ));
    }
    blocking(move || {
        let volume = daemon
            .engine
            .volume_create(request.name.as_deref(), request.labels)?;
        Ok(json(StatusCode::CREATED, &shown(&volume)))
    })
    .await
}

/// GET /volumes?filters=: dangling, driver, name, label.
pub async fn list(daemon: Arc<Daemon>, query: Query) -> Result<Reply> {
    let filters = Filters::parse(&query, &["dangling", "driver", "name", "label"], &[])?;
    let dangling = filters.bool("dangling")?;
    blocking(move || {
        let volumes: Vec<Value> = daemon
            .engine
            .volumes()
            .iter()
            .filter(|(volume, users)| {
                dangling.is_none_or(|dangling| dangling == users.is_empty())
                    && filters.exact("driver", &volume.driver)
                    && filters.any("name", |name| regex_match(name, &volume.name))
                    && filters.has_labels("label", &volume.labels)
            })
            .map(|(volume, _)| shown(volume))
            .collect();
        Ok(json(
            StatusCode::OK,
            &json!({"Volumes": volumes, "Warnings": []}),
        ))
    })
    .await
}

/// GET /volumes/{name}
pub async fn inspect(daemon: Arc<Daemon>, name: String) -> Result<Reply> {
    let volume = daemon.engine.volume(&name)?;
    Ok(json(StatusCode::OK, &shown(&volume)))
}

/// DELETE /volumes/{name}
pub async fn remove(daemon: Arc<Daemon>, name: String) -> Result<Reply> {
    blocking(move || {
        daemon.engine.volume_remove(&name)?;
        Ok(empty(StatusCode::NO_CONTENT))
    })
    .await
}

/// POST /volumes/prune?filters={"all":["true"]}: unused anonymous volumes,
/// or with `all` every unused one.
pub async fn prune(daemon: Arc<Daemon>, query: Query) -> Result<Reply> {
    let filter = crate::prune::PruneFilter::parse(&query, &["all"])?;
    let all = filter.filters.get("all").any(|v| v == "true" || v == "1");
    blocking(move || {
        let (names, bytes) = daemon
            .engine
            .volume_prune(all, |v| filter.selects(&v.created_at, &v.labels))?;
        Ok(json(
            StatusCode::OK,
            &json!({"VolumesDeleted": names, "SpaceReclaimed": bytes}),
        ))
    })
    .await
}
