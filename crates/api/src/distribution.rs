//! The Engine API's registry endpoints: pull (`POST /images/create` with
//! `fromImage`), push, login (`POST /auth`), search and distribution
//! inspect, with Docker's JSON progress stream.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hyper::StatusCode;
use hyper::body::Incoming;
use keel_api_types::distribution::{self as wire, DistributionInspect};
use keel_engine::Progress;
use keel_image::Reference;
use keel_registry::{AuthConfig, Manifest, Platform};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::Daemon;
use crate::http::{ApiError, Body, Query, Reply, blocking, json, read_json};

type Result<T> = std::result::Result<T, ApiError>;

/// The credentials a client sent in `X-Registry-Auth`.
pub fn registry_auth(headers: &hyper::HeaderMap) -> Result<Option<AuthConfig>> {
    let Some(value) = headers.get("x-registry-auth") else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::bad_request("invalid X-Registry-Auth header: not ASCII"))?;
    AuthConfig::from_header(value).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// One line of Docker's JSON progress stream (without the deprecated
/// `progress` text: clients draw the bar from `progressDetail`).
fn progress_line(progress: &Progress) -> Value {
    let mut line = json!({ "status": progress.status });
    if let Some(id) = &progress.id {
        line["id"] = id.clone().into();
    }
    if let (Some(current), Some(total)) = (progress.current, progress.total) {
        line["progressDetail"] = json!({ "current": current, "total": total });
    } else {
        line["progressDetail"] = json!({});
    }
    line
}

fn error_line(message: &str) -> Value {
    json!({ "errorDetail": { "message": message }, "error": message })
}

/// Streams progress lines from the engine's (possibly several) threads.
/// An error before the first line is answered as an HTTP error (a pull of
/// a missing image is a 404, as from dockerd); a later one ends the stream
/// with Docker's error line. A client that goes away (hyper drops the
/// body) cancels the work.
async fn progress_stream(
    run: impl FnOnce(&(dyn Fn(Progress) + Sync), &keel_image::Cancel) -> keel_engine::Result<()>
    + Send
    + 'static,
) -> Result<Reply> {
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(64);
    let cancel = keel_image::Cancel::default();
    let cancel_when_gone = cancel.on_drop();
    let (started_tx, started) = oneshot::channel::<Option<ApiError>>();
    tokio::task::spawn_blocking(move || {
        let started = Mutex::new(Some(started_tx));
        let begin = || started.lock().unwrap_or_else(|p| p.into_inner()).take();
        let send = |line: &Value| {
            if let Some(started) = begin() {
                let _ = started.send(None);
            }
            let mut bytes = serde_json::to_vec(line).expect("JSON serializes");
            bytes.extend_from_slice(b"\r\n");
            let _ = tx.blocking_send(Ok(Bytes::from(bytes)));
        };
        match run(&|progress| send(&progress_line(&progress)), &cancel) {
            Ok(()) => {
                if let Some(started) = begin() {
                    let _ = started.send(None);
                }
            }
            Err(error) => match begin() {
                Some(started) => {
                    let _ = started.send(Some(error.into()));
                }
                None => send(&error_line(&crate::http::message(error))),
            },
        }
    });
    if let Ok(Some(error)) = started.await {
        return Err(error);
    }
    Ok(hyper::Response::builder()
        .status(StatusCode::OK)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Body::Channel(rx, Some(cancel_when_gone)))
        .expect("a valid response"))
}

/// POST /images/create?fromImage=NAME&tag=TAG|DIGEST[&platform=P]: pull;
/// an empty tag on a name without one pulls every tag.
pub async fn pull(daemon: Arc<Daemon>, query: Query, headers: &hyper::HeaderMap) -> Result<Reply> {
    let auth = registry_auth(headers)?;
    let image = query.get("fromImage").unwrap_or_default().to_owned();
    let tag = query.get("tag").unwrap_or_default().to_owned();
    let platform = match query.get("platform").filter(|p| !p.is_empty()) {
        Some(text) => {
            Some(Platform::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))?)
        }
        None => None,
    };
    let base = Reference::parse_repository(&image).or_else(|_| Reference::parse(&image))?;
    let reference = match (
        tag.as_str(),
        base.tag().is_some() || base.digest().is_some(),
    ) {
        ("", true) => Some(base.clone()),
        ("", false) => None,
        (tag, _) => Some(match tag.parse() {
            Ok(digest) => base.with_digest(digest),
            Err(_) => base.with_tag(tag)?,
        }),
    };
    progress_stream(move |report, cancel| {
        let engine = &daemon.engine;
        let references = match reference {
            Some(reference) => vec![reference],
            None => engine
                .remote_tags(&base, auth.clone())?
                .iter()
                .map(|tag| base.with_tag(tag))
                .collect::<std::result::Result<_, _>>()?,
        };
        for reference in references {
            engine.pull(&reference, platform.as_ref(), auth.clone(), report, cancel)?;
        }
        Ok(())
    })
    .await
}

/// POST /images/{name}/push?tag=TAG: push one tag, or every tag of the
/// repository when none is given.
pub async fn push(
    daemon: Arc<Daemon>,
    name: String,
    query: Query,
    headers: &hyper::HeaderMap,
) -> Result<Reply> {
    let auth = registry_auth(headers)?;
    let base = Reference::parse_repository(&name).or_else(|_| Reference::parse(&name))?;
    let references = match query.get("tag").filter(|t| !t.is_empty()) {
        Some(tag) => vec![base.with_tag(tag)?],
        None if base.tag().is_some() => vec![base],
        None => {
            let all: Vec<Reference> = daemon
                .store()
                .images()?
                .into_iter()
                .flat_map(|image| image.tags)
                .filter(|r| r.name() == base.name())
                .collect();
            if all.is_empty() {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!(
                        "An image does not exist locally with the tag: {}",
                        base.familiar_name()
                    ),
                ));
            }
            all
        }
    };
    // A push writes nothing here that a cancel would have to clean.
    progress_stream(move |report, _| {
        for reference in references {
            daemon.engine.push(&reference, auth.clone(), report)?;
        }
        Ok(())
    })
    .await
}

/// POST /auth: checks credentials with the registry, as `docker login`
/// asks the daemon to; the client stores them.
pub async fn login(daemon: Arc<Daemon>, body: Incoming) -> Result<Reply> {
    let auth: AuthConfig = read_json(body).await?;
    let auth = auth
        .normalized()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let server = auth.serveraddress.clone();
    blocking(move || {
        daemon.engine.login(&server, auth)?;
        Ok(json(
            StatusCode::OK,
            &json!({ "Status": "Login Succeeded", "IdentityToken": "" }),
        ))
    })
    .await
}

/// Docker Hub's `/v1/search` answer.
#[derive(Deserialize)]
struct SearchAnswer {
    #[serde(default)]
    results: Vec<SearchResult>,
}

/// One search result, in the shape both Docker Hub and the Engine API use;
/// a field missing or null is its default.
#[derive(Serialize, Deserialize)]
struct SearchResult {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    description: String,
    #[serde(default, deserialize_with = "nullable")]
    star_count: u64,
    #[serde(default, deserialize_with = "nullable")]
    is_official: bool,
    #[serde(default, deserialize_with = "nullable")]
    is_automated: bool,
}

fn nullable<'de, D, T>(deserializer: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// GET /images/search?term=T&limit=N&filters=…: Docker Hub's search API
/// (or the registry the term names), filtered as Docker filters it.
pub async fn search(
    daemon: Arc<Daemon>,
    query: Query,
    headers: &hyper::HeaderMap,
) -> Result<Reply> {
    let auth = registry_auth(headers)?;
    let term = query.get("term").unwrap_or_default().to_owned();
    if term.is_empty() {
        return Err(ApiError::bad_request(
            "term is required: what to search for",
        ));
    }
    let limit: u32 = match query.get("limit").filter(|l| !l.is_empty()) {
        Some(text) => match text.parse() {
            Ok(n @ 1..=100) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "invalid limit {text:?}: Limit {text} is outside the range of [1, 100]"
                )));
            }
        },
        None => 25,
    };
    let mut min_stars = 0;
    let mut official = None;
    let mut automated = None;
    for (key, value) in query.filters()? {
        let flag = || match value.as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(ApiError::bad_request(format!(
                "invalid filter '{key}={value}': expected true or false"
            ))),
        };
        match key.as_str() {
            "stars" => {
                min_stars = value.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid filter 'stars={value}': expected a whole number"
                    ))
                })?
            }
            "is-official" => official = Some(flag()?),
            "is-automated" => automated = Some(flag()?),
            other => {
                return Err(ApiError::bad_request(format!("invalid filter '{other}'")));
            }
        }
    }
    blocking(move || {
        let bytes = daemon.engine.search(&term, limit, auth)?;
        let answer: SearchAnswer = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("the registry's search answer is not JSON: {e}"),
            )
        })?;
        let results: Vec<SearchResult> = answer
            .results
            .into_iter()
            .filter(|r| r.star_count >= min_stars)
            .filter(|r| official.is_none_or(|o| r.is_official == o))
            .filter(|r| automated.is_none_or(|a| r.is_automated == a))
            .collect();
        Ok(json(StatusCode::OK, &results))
    })
    .await
}

/// GET /distribution/{name}/json: the manifest or index a name resolves to
/// in its registry and the platforms it serves, pulling nothing (moby's
/// distribution router).
pub async fn inspect(
    daemon: Arc<Daemon>,
    name: String,
    headers: &hyper::HeaderMap,
) -> Result<Reply> {
    // As moby: a bad X-Registry-Auth is taken as none.
    let auth = registry_auth(headers).ok().flatten();
    let reference = Reference::parse(&name)?;
    blocking(move || {
        let registry = keel_registry::Registry::connect(
            reference.domain(),
            auth,
            daemon.engine.insecure_registries(),
        )?;
        let path = reference.path();
        let wanted = match (reference.digest(), reference.tag()) {
            (Some(digest), _) => digest.to_string(),
            (None, tag) => tag.unwrap_or("latest").to_owned(),
        };
        let (manifest, bytes, digest) =
            registry
                .manifest(path, &wanted)
                .map_err(|error| match error {
                    // moby answers with the registry's own error here ("name
                    // unknown: …"), not a pull's "manifest for … not found".
                    keel_registry::Error::Status {
                        status: 404,
                        message,
                        ..
                    } => ApiError::new(StatusCode::NOT_FOUND, message),
                    other => other.into(),
                })?;
        let (media_type, platforms) = match manifest {
            Manifest::Index(index) => {
                let platforms = index
                    .manifests
                    .iter()
                    .filter_map(|entry| entry.platform.as_ref())
                    .map(|platform| wire::Platform {
                        architecture: platform.architecture.clone(),
                        os: platform.os.clone(),
                        variant: platform.variant.clone().unwrap_or_default(),
                        ..wire::Platform::default()
                    })
                    .collect();
                (index.media_type, platforms)
            }
            // An image's platform is its config's, when the config names
            // one (moby leaves it out otherwise).
            Manifest::Image(image) => {
                let platform = registry
                    .small_blob(path, &image.config.digest)
                    .ok()
                    .and_then(|config| serde_json::from_slice::<wire::Platform>(&config).ok())
                    .filter(|p| !p.os.is_empty() || !p.architecture.is_empty());
                (image.media_type, platform.into_iter().collect())
            }
        };
        Ok(json(
            StatusCode::OK,
            &DistributionInspect {
                descriptor: wire::Descriptor {
                    media_type,
                    digest: digest.to_string(),
                    size: bytes.len() as u64,
                },
                platforms,
            },
        ))
    })
    .await
}
