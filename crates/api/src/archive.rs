//! `HEAD`, `GET` and `PUT /containers/{id}/archive`: what `docker cp`,
//! docker-py's `get_archive`/`put_archive` and testcontainers copy with.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Response, StatusCode, header};
use keel_api_types::archive::{ContainerPathStat, PATH_STAT_HEADER};

use crate::Daemon;
use crate::http::{ApiError, Body, Query, Reply, blocking, body_reader};

type Result<T> = std::result::Result<T, ApiError>;

/// The `path` parameter, which Docker requires.
fn path(query: &Query) -> Result<String> {
    match query.get("path") {
        Some(path) if !path.is_empty() => Ok(path.to_owned()),
        _ => Err(ApiError::bad_request("bad parameter: path cannot be empty")),
    }
}

fn stat_header(stat: keel_engine::PathStat) -> String {
    ContainerPathStat {
        name: stat.name,
        size: stat.size as i64,
        mode: stat.mode,
        mtime: stat.mtime,
        link_target: stat.link_target,
    }
    .to_header()
}

/// HEAD: the path's stat, in the header only.
pub async fn stat(daemon: Arc<Daemon>, name: String, query: Query) -> Result<Reply> {
    let path = path(&query)?;
    let stat = blocking(move || Ok(daemon.engine.stat_path(&name, &path)?)).await?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(PATH_STAT_HEADER, stat_header(stat))
        .body(Body::Full(None))
        .expect("a valid response"))
}

/// GET: the path as a tar, its stat in the header.
pub async fn get(daemon: Arc<Daemon>, name: String, query: Query) -> Result<Reply> {
    let path = path(&query)?;
    // A missing or refused path is answered before the body starts.
    let stat = {
        let (daemon, name, path) = (Arc::clone(&daemon), name.clone(), path.clone());
        blocking(move || Ok(daemon.engine.begin_archive(&name, &path)?)).await?
    };
    let mut reply = crate::http::streamed("application/x-tar", move |out| {
        daemon
            .engine
            .archive_path(&name, &path, out)
            .map_err(|e| std::io::Error::other(crate::http::message(e)))
    });
    reply.headers_mut().insert(
        PATH_STAT_HEADER,
        header::HeaderValue::from_str(&stat_header(stat)).expect("base64 is a header value"),
    );
    Ok(reply)
}

/// PUT: unpacks the tar body into the directory `path`.
pub async fn put(daemon: Arc<Daemon>, name: String, query: Query, body: Incoming) -> Result<Reply> {
    let path = path(&query)?;
    let options = keel_engine::ExtractOptions {
        no_overwrite_dir_non_dir: query.flag("noOverwriteDirNonDir"),
        copy_uid_gid: query.flag("copyUIDGID"),
    };
    let mut reader = body_reader(body);
    blocking(move || {
        let extracted = daemon
            .engine
            .extract_to_dir(&name, &path, options, &mut reader);
        // A tar ends before its padding and the request's end: the rest is
        // read so that the client, still writing it, gets the answer and
        // not a broken pipe. After a failure only a little, as Go's server
        // does, so that a refused upload is not read to its end.
        let rest = match extracted {
            Ok(()) => u64::MAX,
            Err(_) => 256 << 10,
        };
        std::io::copy(
            &mut std::io::Read::take(&mut reader, rest),
            &mut std::io::sink(),
        )
        .ok();
        extracted?;
        Ok(crate::http::empty(StatusCode::OK))
    })
    .await
}
