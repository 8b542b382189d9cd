//! The Docker Engine API on a unix socket: routes requests (with or
//! without a `/v1.NN` prefix) to handlers that answer from Keel's stores in
//! Docker's JSON shapes, so that the docker CLI, docker-py and Keel's own
//! CLI all drive Keel the same way.

mod archive;
mod attach;
mod build;
mod changes;
mod containers;
mod distribution;
mod events;
mod exec;
mod filters;
mod http;
mod images;
mod network;
mod networks;
mod prune;
mod stats;
mod swarm;
mod system;
mod top;
mod update;
mod volumes;

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use keel_api_types::{API_VERSION, MIN_API_VERSION};
use tokio::net::UnixListener;

pub use http::ApiError;

use crate::http::{Query, Reply};

/// What the daemon serves from.
#[derive(Debug)]
pub struct Daemon {
    pub engine: Arc<keel_engine::Engine>,
}

impl Daemon {
    /// Opens the daemon's state under `root`; `monitor` is the keel-monitor
    /// binary that watches each container.
    pub fn open(
        root: &Path,
        monitor: &Path,
        options: keel_engine::Options,
    ) -> Result<Self, keel_engine::Error> {
        Ok(Self {
            engine: keel_engine::Engine::open(root, monitor, options)?,
        })
    }

    fn store(&self) -> &keel_image::Store {
        self.engine.images()
    }
}

/// Serves the API on `listener` until the task is dropped.
pub async fn serve(listener: UnixListener, daemon: Arc<Daemon>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let daemon = Arc::clone(&daemon);
        tokio::spawn(async move {
            let stream = http::Draining::new(stream);
            let upgraded = stream.upgraded();
            let service = service_fn(move |request| {
                let daemon = Arc::clone(&daemon);
                let upgraded = Arc::clone(&upgraded);
                async move {
                    let reply = route(daemon, request).await;
                    if reply.status() == StatusCode::SWITCHING_PROTOCOLS {
                        upgraded.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok::<_, Infallible>(reply)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

/// `1.47` as (1, 47).
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The API version a request's path names (`/v1.47/…`), if it names one.
pub(crate) fn api_version(path: &str) -> Option<(u32, u32)> {
    parse_version(path.strip_prefix("/v")?.split_once('/')?.0)
}

/// The path without its API version prefix (`/v1.47/images/json`), and
/// whether that version is one Keel speaks.
fn strip_version(path: &str) -> Result<&str, ApiError> {
    let Some(asked) = api_version(path) else {
        return Ok(path);
    };
    let (version, tail) = path[2..].split_once('/').expect("a versioned path");
    let min = parse_version(MIN_API_VERSION).expect("a valid version");
    let max = parse_version(API_VERSION).expect("a valid version");
    if asked < min {
        return Err(ApiError::bad_request(format!(
            "client version {version} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    if asked > max {
        return Err(ApiError::bad_request(format!(
            "client version {version} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    Ok(&path[version.len() + 2..][..tail.len() + 1])
}

async fn route(daemon: Arc<Daemon>, request: Request<Incoming>) -> Reply {
    // Names in paths may come percent-encoded (`busybox%3Alatest`).
    let path = crate::http::decode(request.uri().path());
    let query = Query::parse(request.uri().query());
    let method = request.method().clone();
    let result = match strip_version(&path) {
        Ok(path) => dispatch(daemon, method, path, query, request).await,
        Err(error) => Err(error),
    };
    result.unwrap_or_else(|error| error.reply())
}

async fn dispatch(
    daemon: Arc<Daemon>,
    method: Method,
    path: &str,
    query: Query,
    request: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "page not found");
    if let Some(answer) = swarm::answer(&method, path) {
        return answer;
    }
    if method == Method::GET
        && let Some(name) = path
            .strip_prefix("/distribution/")
            .and_then(|rest| rest.strip_suffix("/json"))
    {
        return distribution::inspect(daemon, name.to_owned(), request.headers()).await;
    }
    match (&method, path) {
        (&Method::GET, "/_ping") => return Ok(system::ping(false)),
        (&Method::HEAD, "/_ping") => return Ok(system::ping(true)),
        (&Method::GET, "/version") => return Ok(system::version()),
        (&Method::GET, "/info") => return Ok(system::info(&daemon)),
        (&Method::GET, "/events") => return events::events(daemon, query).await,
        (&Method::GET, "/images/json") => return images::list(daemon, query).await,
        (&Method::GET, "/system/df") => return images::disk_usage(daemon).await,
        (&Method::POST, "/build") => {
            return build::build(daemon, query, request).await;
        }
        (&Method::POST, "/build/prune") => return build::prune(daemon).await,
        (&Method::POST, "/commit") => {
            return images::commit(daemon, query, request.into_body()).await;
        }
        (&Method::POST, "/images/load") => return images::load(daemon, request.into_body()).await,
        (&Method::POST, "/images/prune") => return images::prune(daemon, query).await,
        (&Method::POST, "/images/create") if query.get("fromImage").is_some() => {
            return distribution::pull(daemon, query, request.headers()).await;
        }
        (&Method::POST, "/images/create") => {
            return images::create(daemon, query, request.into_body()).await;
        }
        (&Method::GET, "/images/search") => {
            return distribution::search(daemon, query, request.headers()).await;
        }
        (&Method::POST, "/auth") => return distribution::login(daemon, request.into_body()).await,
        (&Method::POST, "/containers/create") => {
            return containers::create(daemon, query, request.into_body()).await;
        }
        (&Method::GET, "/containers/json") => return containers::list(daemon, query).await,
        (&Method::POST, "/containers/prune") => return containers::prune(daemon, query).await,
        (&Method::GET, "/volumes") => return volumes::list(daemon, query).await,
        (&Method::POST, "/volumes/create") => {
            return volumes::create(daemon, request.into_body()).await;
        }
        (&Method::POST, "/volumes/prune") => return volumes::prune(daemon, query).await,
        (&Method::GET, "/networks") => return networks::list(daemon, query).await,
        (&Method::POST, "/networks/create") => {
            return networks::create(daemon, request.into_body()).await;
        }
        (&Method::POST, "/networks/prune") => return networks::prune(daemon, query).await,
        (&Method::GET, "/images/get") => {
            let names = query.all("names").into_iter().map(str::to_owned).collect();
            return images::save(daemon, names).await;
        }
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/containers/") {
        let (name, action) = rest.split_once('/').unwrap_or((rest, ""));
        let name = name.to_owned();
        return match (&method, action) {
            (&Method::POST, "start") => containers::start(daemon, name).await,
            (&Method::POST, "wait") => containers::wait(daemon, name, query).await,
            (&Method::POST, "kill") => containers::kill(daemon, name, query).await,
            (&Method::POST, "stop") => containers::stop(daemon, name, query).await,
            (&Method::POST, "restart") => containers::restart(daemon, name, query).await,
            (&Method::POST, "rename") => containers::rename(daemon, name, query).await,
            (&Method::POST, "pause") => containers::pause(daemon, name, true).await,
            (&Method::POST, "unpause") => containers::pause(daemon, name, false).await,
            (&Method::GET, "top") => top::top(daemon, name, query).await,
            (&Method::GET, "changes") => changes::changes(daemon, name).await,
            (&Method::POST, "update") => update::update(daemon, name, request.into_body()).await,
            (&Method::GET, "stats") => stats::stats(daemon, name, query).await,
            (&Method::POST, "attach") => containers::attach(daemon, name, query, request).await,
            (&Method::GET, "attach/ws") => {
                containers::attach_websocket(daemon, name, query, request).await
            }
            (&Method::POST, "resize") => containers::resize(daemon, name, query).await,
            (&Method::POST, "exec") => exec::create(daemon, name, request.into_body()).await,
            (&Method::GET, "json") => containers::inspect(daemon, name).await,
            (&Method::GET, "logs") => containers::logs(daemon, name, query).await,
            (&Method::GET, "export") => containers::export(daemon, name).await,
            (&Method::HEAD, "archive") => archive::stat(daemon, name, query).await,
            (&Method::GET, "archive") => archive::get(daemon, name, query).await,
            (&Method::PUT, "archive") => {
                archive::put(daemon, name, query, request.into_body()).await
            }
            (&Method::DELETE, "") => containers::remove(daemon, name, query).await,
            _ => Err(not_found()),
        };
    }
    if let Some(name) = path.strip_prefix("/volumes/") {
        let name = name.to_owned();
        return match method {
            Method::GET => volumes::inspect(daemon, name).await,
            Method::DELETE => volumes::remove(daemon, name).await,
            _ => Err(not_found()),
        };
    }
    if let Some(rest) = path.strip_prefix("/networks/") {
        // A network's name may hold any character, '/' too, as Docker's.
        let (name, action) = match rest.rsplit_once('/') {
            Some((name, action @ ("connect" | "disconnect"))) => (name, action),
            _ => (rest, ""),
        };
        let name = name.to_owned();
        return match (&method, action) {
            (&Method::GET, "") => networks::inspect(daemon, name).await,
            (&Method::DELETE, "") => networks::remove(daemon, name).await,
            (&Method::POST, "connect") => {
                networks::connect(daemon, name, request.into_body()).await
            }
            (&Method::POST, "disconnect") => {
                networks::disconnect(daemon, name, request.into_body()).await
            }
            _ => Err(not_found()),
        };
    }
    if let Some(rest) = path.strip_prefix("/exec/") {
        let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
        let id = id.to_owned();
        return match (&method, action) {
            (&Method::POST, "start") => exec::start(daemon, id, request).await,
            (&Method::POST, "resize") => exec::resize(daemon, id, query).await,
            (&Method::GET, "json") => exec::inspect(daemon, id).await,
            _ => Err(not_found()),
        };
    }
    // Image names hold slashes: the action is the last segment.
    let Some(image_path) = path.strip_prefix("/images/") else {
        return Err(not_found());
    };
    let (name, action) = match image_path.rsplit_once('/') {
        Some((name, action @ ("json" | "history" | "tag" | "get" | "push"))) => (name, action),
        _ => (image_path, ""),
    };
    let name = name.to_owned();
    match (&method, action) {
        (&Method::GET, "json") => images::inspect(daemon, name).await,
        (&Method::GET, "history") => images::history(daemon, name).await,
        (&Method::POST, "tag") => images::tag(daemon, name, query).await,
        (&Method::GET, "get") => images::save(daemon, vec![name]).await,
        (&Method::DELETE, "") => images::remove(daemon, name, query).await,
        (&Method::POST, "push") => distribution::push(daemon, name, query, request.headers()).await,
        _ => Err(not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefixes_are_stripped_and_checked() {
        assert_eq!(strip_version("/v1.47/images/json").unwrap(), "/images/json");
        assert_eq!(strip_version("/v1.41/_ping").unwrap(), "/_ping");
        assert_eq!(strip_version("/images/json").unwrap(), "/images/json");
        let error = strip_version("/v1.99/info").unwrap_err();
        assert!(error.message.contains("too new"), "{}", error.message);
        assert!(
            strip_version("/v1.12/info")
                .unwrap_err()
                .message
                .contains("too old")
        );
    }
}
