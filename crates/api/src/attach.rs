//! Hijacked connections to a process's stdio (attach, exec start): the
//! client's connection is taken over (HTTP 101) and joined to the
//! monitor's socket. Output goes to the client in Docker's multiplexed
//! frames, or raw for a terminal; the client's input goes in until it ends
//! or types the detach keys.

use std::os::unix::net::UnixStream;

use bytes::Bytes;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use keel_monitor_protocol::stream::{self, DetachWatch, Frames, STDERR, STDOUT};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::http::{ApiError, Body, Reply};

/// Which streams a client takes, and how.
#[derive(Debug, Clone)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Output unframed, as a terminal's is.
    pub tty: bool,
    pub detach_keys: Vec<u8>,
}

/// Detach keys as Docker writes them, or Docker's error for them.
pub fn detach_keys(text: Option<&str>) -> Result<Vec<u8>, ApiError> {
    stream::detach_keys(text).map_err(ApiError::bad_request)
}

/// Hands the connection over: `connect` (blocking) makes the connection to
/// the monitor, or says why there is none (sent to the client as text,
/// when there is something to say);
/// `finish` (blocking) runs after the output ends and before the client's
/// stream does.
pub fn hijack<B>(
    request: Request<B>,
    streams: Streams,
    connect: impl FnOnce() -> Result<UnixStream, String> + Send + 'static,
    finish: impl FnOnce() + Send + 'static,
) -> Reply {
    let content_type = if streams.tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    if !request.headers().contains_key(header::UPGRADE) {
        // No upgrade asked for: the output alone, as the response body.
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let (sink, mut source) = tokio::io::duplex(64 * 1024);
        tokio::spawn(serve(tokio::io::empty(), sink, streams, connect, finish));
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 32 * 1024];
            while let Ok(n @ 1..) = source.read(&mut buffer).await {
                if tx
                    .send(Ok(Bytes::copy_from_slice(&buffer[..n])))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::channel(rx))
            .expect("a valid response");
    }
    let upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let (input, output) = tokio::io::split(TokioIo::new(upgraded));
        serve(input, output, streams, connect, finish).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::Full(None))
        .expect("a valid response")
}

async fn serve(
    mut client_in: impl AsyncRead + Unpin,
    mut client_out: impl AsyncWrite + Unpin,
    streams: Streams,
    connect: impl FnOnce() -> Result<UnixStream, String> + Send + 'static,
    finish: impl FnOnce() + Send + 'static,
) {
    let connected = tokio::task::spawn_blocking(connect)
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    match connected {
        // An error ends this client's connection and concerns nothing else.
        Ok(monitor) => {
            let _ = relay(&mut client_in, &mut client_out, monitor, &streams).await;
        }
        Err(message) if !message.is_empty() => {
            let text = format!("{message}\r\n");
            let bytes = match streams.tty {
                true => text.into_bytes(),
                false => stream::frame(STDOUT, text.as_bytes()),
            };
            let _ = client_out.write_all(&bytes).await;
        }
        Err(_) => {}
    }
    let _ = tokio::task::spawn_blocking(finish).await;
    // Closing with the client's input unread would make the kernel reset
    // the connection under the client's last reads. As dockerd, only the
    // write side is shut; the client, seeing the output end, hangs up, and
    // what it sent until then is read and dropped.
    let _ = client_out.shutdown().await;
    let mut buffer = vec![0u8; 32 * 1024];
    while let Ok(1..) = client_in.read(&mut buffer).await {}
}

/// Joins client and monitor until the output ends or the client detaches.
async fn relay(
    client_in: &mut (impl AsyncRead + Unpin),
    client_out: &mut (impl AsyncWrite + Unpin),
    monitor: UnixStream,
    streams: &Streams,
) -> std::io::Result<()> {
    monitor.set_nonblocking(true)?;
    let monitor = tokio::net::UnixStream::from_std(monitor)?;
    let (mut from_monitor, mut to_monitor) = monitor.into_split();
    let output = async {
        let mut frames = Frames::default();
        let mut buffer = vec![0u8; 32 * 1024];
        loop {
            let n = from_monitor.read(&mut buffer).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            frames.push(&buffer[..n]);
            for (kind, payload) in frames.by_ref() {
                let wanted =
                    (kind == STDOUT && streams.stdout) || (kind == STDERR && streams.stderr);
                if !wanted {
                    continue;
                }
                if streams.tty {
                    client_out.write_all(&payload).await?;
                } else {
                    client_out.write_all(&stream::frame(kind, &payload)).await?;
                }
            }
            client_out.flush().await?;
        }
    };
    let input = async {
        if !streams.stdin {
            return std::future::pending::<std::io::Result<()>>().await;
        }
        let mut watch = DetachWatch::new(&streams.detach_keys);
        let mut buffer = vec![0u8; 32 * 1024];
        // A monitor gone with its process takes no more input; the rest
        // is dropped, and the output it sent before goes on to the client.
        let mut monitor_takes_input = true;
        loop {
            let n = client_in.read(&mut buffer).await.unwrap_or(0);
            if n == 0 {
                // The client's input ended, not its session: output goes on.
                if monitor_takes_input {
                    let _ = to_monitor
                        .write_all(&stream::frame(stream::STDIN_END, b""))
                        .await;
                }
                return std::future::pending().await;
            }
            let (data, detached) = watch.feed(&buffer[..n]);
            if monitor_takes_input && !data.is_empty() {
                monitor_takes_input = to_monitor
                    .write_all(&stream::frame(stream::STDIN, &data))
                    .await
                    .is_ok();
            }
            if detached {
                return Ok(());
            }
        }
    };
    tokio::select! {
        result = output => result,
        result = input => result,
    }
}
