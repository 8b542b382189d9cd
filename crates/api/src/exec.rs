//! The Engine API's exec endpoints: create, start (attached over a
//! hijacked connection, or detached), inspect and resize.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use keel_engine::ExecConfig;
use serde::Deserialize;
use serde_json::json;

use crate::Daemon;
use crate::attach::{self, Streams};
use crate::http::{ApiError, Query, Reply, blocking, empty, json, read_json};

type Result<T> = std::result::Result<T, ApiError>;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    detach_keys: Option<String>,
    tty: bool,
    env: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    privileged: bool,
    user: Option<String>,
    working_dir: Option<String>,
}

/// POST /containers/{id}/exec
pub async fn create(daemon: Arc<Daemon>, name: String, body: Incoming) -> Result<Reply> {
    let request: CreateBody = read_json(body).await?;
    // Checked now: a bad value is the create's error, as in Docker.
    attach::detach_keys(request.detach_keys.as_deref())?;
    let config = ExecConfig {
        cmd: request.cmd.unwrap_or_default(),
        env: request.env.unwrap_or_default(),
        user: request.user,
        working_dir: request.working_dir,
        tty: request.tty,
        attach_stdin: request.attach_stdin,
        attach_stdout: request.attach_stdout,
        attach_stderr: request.attach_stderr,
        privileged: request.privileged,
        detach_keys: request.detach_keys,
    };
    blocking(move || {
        let id = daemon.engine.exec_create(&name, config)?;
        Ok(json(StatusCode::CREATED, &json!({"Id": id})))
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct StartBody {
    detach: bool,
    console_size: Option<[u16; 2]>,
}

/// POST /exec/{id}/start
pub async fn start(daemon: Arc<Daemon>, id: String, request: Request<Incoming>) -> Result<Reply> {
    let (parts, body) = request.into_parts();
    let body: StartBody = read_json(body).await?;
    let exec = daemon.engine.exec(&id)?;
    let size = body.console_size.map(|[rows, cols]| (rows, cols));
    if body.detach {
        return blocking(move || {
            daemon.engine.exec_start(&id, false, size)?;
            Ok(empty(StatusCode::OK))
        })
        .await;
    }
    let streams = Streams {
        stdin: exec.config.attach_stdin,
        stdout: exec.config.attach_stdout,
        stderr: exec.config.attach_stderr,
        tty: exec.config.tty,
        detach_keys: attach::detach_keys(exec.config.detach_keys.as_deref())?,
    };
    let engine = Arc::clone(&daemon.engine);
    let exec_id = id.clone();
    let connect = move || match engine.exec_start(&exec_id, true, size) {
        Ok(Some(connection)) => Ok(connection),
        Ok(None) => Err(String::new()),
        Err(error) => Err(crate::http::message(error)),
    };
    // The exit code is recorded before the client's stream ends, so an
    // inspect right after it finds it.
    let finish = move || {
        let _ = daemon.engine.exec_wait(&id);
    };
    Ok(attach::hijack(
        Request::from_parts(parts, ()),
        streams,
        connect,
        finish,
    ))
}

/// GET /exec/{id}/json
pub async fn inspect(daemon: Arc<Daemon>, id: String) -> Result<Reply> {
    let exec = daemon.engine.exec(&id)?;
    let (entrypoint, arguments) = exec
        .config
        .cmd
        .split_first()
        .map(|(first, rest)| (first.clone(), rest.to_vec()))
        .unwrap_or_default();
    Ok(json(
        StatusCode::OK,
        &json!({
            "ID": exec.id,
            "Running": exec.running,
            "ExitCode": exec.exit_code,
            "ProcessConfig": {
                "tty": exec.config.tty,
                "entrypoint": entrypoint,
                "arguments": arguments,
                "privileged": exec.config.privileged,
                "user": exec.config.user.clone().unwrap_or_default(),
            },
            "OpenStdin": exec.config.attach_stdin,
            "OpenStderr": exec.config.attach_stderr,
            "OpenStdout": exec.config.attach_stdout,
            "CanRemove": false,
            "ContainerID": exec.container_id,
            "DetachKeys": exec.config.detach_keys.clone().unwrap_or_default(),
            "Pid": exec.pid,
        }),
    ))
}

/// POST /exec/{id}/resize?h=&w=
pub async fn resize(daemon: Arc<Daemon>, id: String, query: Query) -> Result<Reply> {
    let (rows, cols) = crate::containers::terminal_size(&query)?;
    blocking(move || {
        daemon.engine.exec_resize(&id, rows, cols)?;
        Ok(empty(StatusCode::OK))
    })
    .await
}
