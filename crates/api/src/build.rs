//! `POST /build`: the classic builder's API (version 1), streaming its
//! progress as Docker's JSON messages; `POST /build/prune`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use hyper::Request;
use hyper::StatusCode;
use hyper::body::Incoming;
use keel_api_types::build::{
    CONTEXT_DIR, CONTEXT_ID, EXPLAIN_CACHE, NO_CACHE_FILTER, SECRETS_HEADER, context_id,
    decode_secrets,
};
use keel_build::context::Context;
use keel_build::{BuildOptions, JobNetwork, Progress, Secrets};
use keel_engine::{BuildRequest, JobLimits, Resources, Ulimit};
use keel_image::Reference;
use serde_json::{Value, json};

use crate::Daemon;
use crate::containers::UlimitBody;
use crate::http::{ApiError, Query, Reply, blocking, body_reader, json, streamed};

type Result<T> = std::result::Result<T, ApiError>;

/// A map parameter (`buildargs`, `labels`): JSON, where empty, `null`
/// and `{}` mean none and a null value means the variable's own.
fn map_parameter(query: &Query, name: &str) -> Result<BTreeMap<String, String>> {
    let text = query.get(name).unwrap_or_default();
    if text.is_empty() || text == "null" {
        return Ok(BTreeMap::new());
    }
    let map: BTreeMap<String, Option<String>> = serde_json::from_str(text).map_err(|error| {
        ApiError::bad_request(format!(
            "invalid {name} {text:?}: use a JSON object of strings ({error})"
        ))
    })?;
    Ok(map
        .into_iter()
        .filter_map(|(key, value)| {
            let value = value.or_else(|| std::env::var(&key).ok())?;
            Some((key, value))
        })
        .collect())
}

/// The build's request from its query, as Docker reads it, and the
/// secrets `keel build` sends in [`SECRETS_HEADER`].
fn request(query: &Query, headers: &hyper::HeaderMap) -> Result<BuildRequest> {
    if query.get("version") == Some("2") {
        return Err(ApiError::bad_request(
            "Keel has no BuildKit session API (version=2): use the classic builder (DOCKER_BUILDKIT=0) or keel build",
        ));
    }
    if query.get("remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::bad_request(
            "remote build contexts are not supported: send the context as the request body",
        ));
    }
    if let Some(platform) = query.get("platform").filter(|p| !p.is_empty()) {
        keel_build::check_platform(platform).map_err(ApiError::bad_request)?;
    }
    let network = match query.get("networkmode").unwrap_or_default() {
        "" | "default" | "bridge" => JobNetwork::Bridge,
        "none" => JobNetwork::Isolated,
        "host" => JobNetwork::Host,
        other => {
            return Err(ApiError::bad_request(format!(
                "network mode {other:?} is not one a build uses: use default, none or host"
            )));
        }
    };
    let tags = query
        .all("t")
        .into_iter()
        .filter(|t| !t.is_empty())
        // Reference::parse adds `latest` to a name without tag or digest.
        .map(|t| {
            Reference::parse(t)
                .map_err(|_| ApiError::bad_request(format!("invalid reference format: {t}")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(BuildRequest {
        options: BuildOptions {
            target: query
                .get("target")
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
            build_args: map_parameter(query, "buildargs")?,
            labels: map_parameter(query, "labels")?,
            no_cache: query.flag("nocache"),
            no_cache_filter: query
                .all(NO_CACHE_FILTER)
                .into_iter()
                .flat_map(|stages| stages.split(','))
                .filter(|stage| !stage.is_empty())
                .map(str::to_owned)
                .collect(),
            explain_cache: query.flag(EXPLAIN_CACHE),
            network,
            extra_hosts: query
                .all("extrahosts")
                .into_iter()
                .flat_map(|hosts| hosts.split(','))
                .filter(|host| !host.is_empty())
                .map(str::to_owned)
                .collect(),
            secrets: Secrets(match headers.get(SECRETS_HEADER) {
                None => BTreeMap::new(),
                Some(value) => value
                    .to_str()
                    .map_err(|_| format!("invalid {SECRETS_HEADER} header: not ASCII"))
                    .and_then(decode_secrets)
                    .map_err(ApiError::bad_request)?,
            }),
        },
        dockerfile: query
            .get("dockerfile")
            .filter(|d| !d.is_empty())
            .unwrap_or("Dockerfile")
            .to_owned(),
        tags,
        limits: limits(query)?,
        pull: query.flag("pull"),
        auths: match headers.get("x-registry-config") {
            None => BTreeMap::new(),
            Some(value) => value
                .to_str()
                .map_err(|_| ApiError::bad_request("invalid X-Registry-Config header: not ASCII"))
                .and_then(|value| {
                    keel_registry::AuthConfig::configs_from_header(value).map_err(|e| {
                        ApiError::bad_request(format!("invalid X-Registry-Config header: {e}"))
                    })
                })?,
        },
    })
}

/// What the build's RUN steps are limited to: the swagger's `memory`,
/// `memswap`, `cpushares`, `cpusetcpus`, `cpuperiod`, `cpuquota`,
/// `shmsize` and `ulimits` (empty values are none).
fn limits(query: &Query) -> Result<JobLimits> {
    let number = |name: &str| -> Result<i64> {
        match query.get(name).filter(|v| !v.is_empty()) {
            None => Ok(0),
            Some(text) => text.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid {name} {text:?}: use a number of bytes or units"
                ))
            }),
        }
    };
    let ulimits = match query.get("ulimits").filter(|v| !v.is_empty() && *v != "null") {
        None => Vec::new(),
        Some(text) => serde_json::from_str::<Vec<UlimitBody>>(text)
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "invalid ulimits {text:?}: use a JSON list of {{\"Name\", \"Soft\", \"Hard\"}} ({e})"
                ))
            })?
            .into_iter()
            .map(Ulimit::from)
            .collect(),
    };
    let shm_size = number("shmsize")?;
    Ok(JobLimits {
        resources: Resources {
            memory: number("memory")?,
            memory_swap: number("memswap")?,
            cpu_shares: number("cpushares")?,
            cpu_period: number("cpuperiod")?,
            cpu_quota: number("cpuquota")?,
            cpuset_cpus: query.get("cpusetcpus").unwrap_or_default().to_owned(),
            ulimits,
            ..Resources::default()
        },
        shm_size: u64::try_from(shm_size).ok().filter(|size| *size > 0),
    })
}

/// The context the client asks the daemon to read in place, if it does
/// (see [`keel_api_types::build`]).
fn in_place(query: &Query, dockerfile: &str) -> Result<Option<Context>> {
    let Some(dir) = query.get(CONTEXT_DIR).filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let path = Path::new(dir);
    if !path.is_absolute() {
        return Err(ApiError::bad_request(format!(
            "{CONTEXT_DIR} {dir:?} is not an absolute path"
        )));
    }
    let seen = std::fs::metadata(path)
        .ok()
        .filter(std::fs::Metadata::is_dir)
        .map(|meta| context_id(&meta));
    if seen.as_deref() != query.get(CONTEXT_ID) {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            format!(
                "the build context {dir} is not the directory the client sees there: send the context as the request body"
            ),
        ));
    }
    Ok(Some(Context::in_place(path, dockerfile)?))
}

/// One JSON message of the stream, flushed at once.
fn send(out: &mut (dyn Write + Send), message: &Value) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message).expect("JSON");
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}

/// POST /build: the body is the context tar, unless the context is read
/// in place ([`keel_api_types::build`]).
pub async fn build(daemon: Arc<Daemon>, query: Query, http: Request<Incoming>) -> Result<Reply> {
    let request = request(&query, http.headers())?;
    let body = http.into_body();
    let context = in_place(&query, &request.dockerfile)?;
    let quiet = query.flag("q");
    let reader = body_reader(body);
    let cancel = keel_image::Cancel::default();
    let stop = cancel.clone();
    Ok(streamed("application/json", move |out| {
        // A client that went away stops the build.
        let _cancel_when_gone = stop.on_drop();
        let mut broken = false;
        let mut say = |out: &mut (dyn Write + Send), message: Value| {
            if !broken && send(out, &message).is_err() {
                broken = true;
                cancel.cancel();
            }
        };
        let built = {
            let mut progress = |event: Progress| {
                if quiet {
                    return;
                }
                let text = match event {
                    Progress::Step {
                        number,
                        total,
                        text,
                    } => format!("Step {number}/{total} : {text}\n"),
                    Progress::Cached => " ---> Using cache\n".to_owned(),
                    Progress::Running { id } => format!(" ---> Running in {id}\n"),
                    Progress::Output(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    Progress::Done { id } => format!(" ---> {id}\n"),
                    Progress::Line(line) => format!("{line}\n"),
                };
                say(out, json!({ "stream": text }));
            };
            match &context {
                Some(context) => daemon
                    .engine
                    .build(context, &request, &cancel, &mut progress),
                None => daemon
                    .engine
                    .build_archive(reader, &request, &cancel, &mut progress),
            }
        };
        match built {
            Ok(id) => {
                say(out, json!({"aux": {"ID": id}}));
                if quiet {
                    say(out, json!({ "stream": format!("{id}\n") }));
                } else {
                    say(
                        out,
                        json!({ "stream": format!("Successfully built {}\n", &id.hex()[..12]) }),
                    );
                    for tag in &request.tags {
                        say(
                            out,
                            json!({ "stream": format!("Successfully tagged {}\n", tag.familiar()) }),
                        );
                    }
                }
            }
            Err(error) => {
                let code = match &error {
                    keel_engine::Error::Build(keel_build::Error::Failed { code, .. }) => *code,
                    _ => 1,
                };
                let message = crate::http::message(error);
                say(
                    out,
                    json!({"errorDetail": {"code": code, "message": message}, "error": message}),
                );
            }
        }
        Ok(())
    }))
}

/// POST /build/prune: forgets the build cache.
pub async fn prune(daemon: Arc<Daemon>) -> Result<Reply> {
    blocking(move || {
        let reclaimed = daemon.store().prune_build_cache()?;
        Ok(json(
            StatusCode::OK,
            &json!({"CachesDeleted": [], "SpaceReclaimed": reclaimed}),
        ))
    })
    .await
}
