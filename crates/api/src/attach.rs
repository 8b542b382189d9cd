//! Hijacked connections to a process's stdio (attach, exec start): the
//! client's connection is taken over (HTTP 101) and joined to the
//! monitor's socket. Output goes to the client in Docker's multiplexed
//! frames, or raw for a terminal; the client's input goes in until it ends
//! or types the detach keys. A WebSocket (`attach/ws`) carries the same
//! streams, raw, in binary messages.

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

/// Takes the connection over as a WebSocket (RFC 6455), as dockerd's
/// `attach/ws`: output unframed in binary messages (API 1.28 and later),
/// input from the client's messages, a close ending both.
pub fn websocket<B>(
    request: Request<B>,
    mut streams: Streams,
    connect: impl FnOnce() -> Result<UnixStream, String> + Send + 'static,
    finish: impl FnOnce() + Send + 'static,
) -> Result<Reply, ApiError> {
    let headers = request.headers();
    let names = |name: header::HeaderName, value: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(value))
            })
        })
    };
    let key = headers.get(header::SEC_WEBSOCKET_KEY).cloned();
    let (true, true, Some(key)) = (
        names(header::UPGRADE, "websocket"),
        names(header::SEC_WEBSOCKET_VERSION, "13"),
        key,
    ) else {
        return Err(ApiError::bad_request(
            "not a WebSocket handshake: attach/ws needs Upgrade: websocket, Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key",
        ));
    };
    // WebSocket messages keep the streams apart for the client: no frames.
    streams.tty = true;
    let upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let socket = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            None,
        )
        .await;
        let (near, far) = tokio::io::duplex(64 * 1024);
        tokio::spawn(carry_messages(socket, far));
        let (input, output) = tokio::io::split(near);
        serve(input, output, streams, connect, finish).await;
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()),
        )
        .body(Body::Full(None))
        .expect("a valid response"))
}

/// Moves bytes between a WebSocket and the byte stream `serve` relays:
/// each chunk of output becomes a binary message, each message's payload
/// input. The output's end closes the WebSocket; the client's close (a
/// WebSocket has no end of input short of it) ends the attachment.
async fn carry_messages<S>(
    socket: tokio_tungstenite::WebSocketStream<S>,
    relay: tokio::io::DuplexStream,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (mut to_client, mut from_client) = socket.split();
    let (mut from_relay, mut to_relay) = tokio::io::split(relay);
    let output = async {
        let mut buffer = vec![0u8; 32 * 1024];
        while let Ok(n @ 1..) = from_relay.read(&mut buffer).await {
            let message = Message::binary(Bytes::copy_from_slice(&buffer[..n]));
            if to_client.send(message).await.is_err() {
                return;
            }
        }
        let _ = to_client.close().await;
    };
    let input = async {
        while let Some(Ok(message)) = from_client.next().await {
            let payload = match message {
                Message::Binary(bytes) => bytes,
                Message::Text(text) => Bytes::from(text.as_str().to_owned()),
                Message::Close(_) => return,
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            if to_relay.write_all(&payload).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = output => {}
        () = input => {}
    }
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
