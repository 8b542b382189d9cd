//! The plumbing between hyper and the handlers: response bodies (whole or
//! streamed from a blocking writer), request bodies read as blocking
//! readers, query strings, Docker-shaped errors, and the connection's
//! socket, which reads what a client still sends after an early answer.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::{Response, StatusCode, header};
use keel_errdefs::{HasKind, Kind};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

/// A response body: whole bytes, or chunks sent from another thread;
/// those may carry a guard that cancels the work sending them once hyper
/// drops the body (the client went away).
#[derive(Debug)]
pub enum Body {
    Full(Option<Bytes>),
    Channel(
        mpsc::Receiver<io::Result<Bytes>>,
        Option<keel_image::CancelOnDrop>,
    ),
}

impl Body {
    pub fn channel(rx: mpsc::Receiver<io::Result<Bytes>>) -> Body {
        Body::Channel(rx, None)
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        match &mut *self {
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Channel(rx, _) => rx
                .poll_recv(cx)
                .map(|chunk| chunk.map(|c| c.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }
}

pub type Reply = Response<Body>;

/// An error answered as Docker does: a status and `{"message": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn reply(&self) -> Reply {
        json(self.status, &serde_json::json!({ "message": self.message }))
    }
}

/// Runs store or engine work, which blocks on disk and processes, off the
/// async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// An error with its causes, as one line: "what: why: why".
pub fn message(error: impl std::error::Error + Send + Sync + 'static) -> String {
    format!("{:#}", anyhow::Error::new(error))
}

/// Every error of the crates below turns into its status here, by its
/// kind, as moby's errdefs map to HTTP.
impl<E: HasKind + std::error::Error + Send + Sync + 'static> From<E> for ApiError {
    fn from(error: E) -> Self {
        let status = match error.kind() {
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::InvalidArgument => StatusCode::BAD_REQUEST,
            Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
            Kind::NotPermitted => StatusCode::FORBIDDEN,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, message(error))
    }
}

pub fn json(status: StatusCode, value: &impl Serialize) -> Reply {
    let mut bytes = serde_json::to_vec(value).expect("API types serialize");
    bytes.push(b'\n');
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Full(Some(Bytes::from(bytes))))
        .expect("a valid response")
}

pub fn empty(status: StatusCode) -> Reply {
    Response::builder()
        .status(status)
        .body(Body::Full(None))
        .expect("a valid response")
}

/// A response whose body a blocking task writes: `produce` runs on a
/// blocking thread with a writer that feeds the body.
pub fn streamed(
    content_type: &str,
    produce: impl FnOnce(&mut (dyn Write + Send)) -> io::Result<()> + Send + 'static,
) -> Reply {
    let (tx, rx) = mpsc::channel(8);
    tokio::task::spawn_blocking(move || {
        let mut writer = io::BufWriter::with_capacity(256 * 1024, ChannelWriter { tx: tx.clone() });
        let result = produce(&mut writer).and_then(|()| writer.flush());
        if let Err(error) = result {
            // Headers are gone: breaking the stream is how the client
            // learns, and the daemon's log is where it can read why.
            if error.kind() != io::ErrorKind::BrokenPipe {
                eprintln!("keel daemon: an answer ended early: {error}");
            }
            let _ = tx.blocking_send(Err(error));
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::channel(rx))
        .expect("a valid response")
}

struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A request body as a blocking reader, for the store's synchronous code:
/// a task forwards the body's chunks as they arrive.
pub fn body_reader(body: Incoming) -> BodyReader {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    tokio::spawn(async move {
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let chunk = match frame {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => Ok(data),
                    Err(_) => continue,
                },
                Err(error) => Err(io::Error::other(error)),
            };
            if tx.send(chunk).await.is_err() {
                break;
            }
        }
    });
    BodyReader {
        rx,
        chunk: Bytes::new(),
    }
}

#[derive(Debug)]
pub struct BodyReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    chunk: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.chunk = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// How much of a request body nobody read is drained before the
/// connection closes: enough for the uploads clients send whole before
/// they read an answer (docker-py's `put_archive`, a `load`), and a bound
/// on what a client can make the daemon read for nothing.
const DRAIN_LIMIT: u64 = 64 << 20;
/// A client that sends nothing for this long has sent all it will.
const DRAIN_IDLE: Duration = Duration::from_secs(1);

/// A connection's socket that, when hyper closes the connection, first
/// reads and drops what the client still sends (up to [`DRAIN_LIMIT`]).
/// An answer given before the request's body was read (a 404 for an
/// unknown path or container, a 400 for a bad query) closes the
/// connection with the rest of the body unread; without this, a client
/// still sending it gets "broken pipe" instead of the answer. Once a
/// request upgrades the connection (attach, exec), its end is the
/// stream's own: [`Draining::upgraded`] turns the drain off.
pub struct Draining<S> {
    io: S,
    upgraded: Arc<AtomicBool>,
    drain: Drain,
}

enum Drain {
    Open,
    Reading {
        left: u64,
        idle: Pin<Box<tokio::time::Sleep>>,
        scratch: Box<[u8]>,
    },
    Done,
}

impl<S> Draining<S> {
    pub fn new(io: S) -> Self {
        Self {
            io,
            upgraded: Arc::default(),
            drain: Drain::Open,
        }
    }

    /// Set once the connection is handed to an upgraded request.
    pub fn upgraded(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.upgraded)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Draining<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Draining<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Ends the answer (the client reads its end), then drains until the
    /// client closes, goes quiet or reaches the limit.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.drain {
                Drain::Open => {
                    ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
                    if this.upgraded.load(Ordering::Relaxed) {
                        this.drain = Drain::Done;
                        continue;
                    }
                    this.drain = Drain::Reading {
                        left: DRAIN_LIMIT,
                        idle: Box::pin(tokio::time::sleep(DRAIN_IDLE)),
                        scratch: vec![0; 64 * 1024].into_boxed_slice(),
                    };
                }
                Drain::Reading {
                    left,
                    idle,
                    scratch,
                } => {
                    let mut buf = ReadBuf::new(scratch);
                    match Pin::new(&mut this.io).poll_read(cx, &mut buf) {
                        Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                            *left = left.saturating_sub(buf.filled().len() as u64);
                            if *left == 0 {
                                this.drain = Drain::Done;
                            } else {
                                idle.as_mut()
                                    .reset(tokio::time::Instant::now() + DRAIN_IDLE);
                            }
                        }
                        // The client's end, or a broken connection.
                        Poll::Ready(_) => this.drain = Drain::Done,
                        Poll::Pending => {
                            ready!(idle.as_mut().poll(cx));
                            this.drain = Drain::Done;
                        }
                    }
                }
                Drain::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

/// A query string's parameters, percent-decoded, in order.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(query: Option<&str>) -> Self {
        Self(
            query
                .unwrap_or_default()
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(key), decode(value))
                })
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Docker's booleans: `1`, `true`, `True` (any case) are true.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
    }

    /// A time as `since`/`until` give it (Unix seconds with an optional
    /// fraction; also what [`keel_time::parse_time`] reads), as Unix
    /// nanoseconds; absent or 0 for none.
    pub fn time(&self, name: &str) -> Result<Option<i128>, ApiError> {
        let Some(text) = self.get(name).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let time = keel_time::parse_time(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid value for \"{name}\": {text:?}: expected Unix seconds, optionally with a fraction"
            ))
        })?;
        Ok((time != 0).then_some(time))
    }

    /// The `filters` parameter: `{"name": ["value", ...]}`, or the older
    /// `{"name": {"value": true}}`.
    pub fn filters(&self) -> Result<Vec<(String, String)>, ApiError> {
        let Some(text) = self.get("filters").filter(|t| !t.is_empty()) else {
            return Ok(Vec::new());
        };
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("invalid filters {text:?}: {e}")))?;
        let object = value.as_object().ok_or_else(|| {
            ApiError::bad_request(format!("invalid filters {text:?}: expected a JSON object"))
        })?;
        let mut filters = Vec::new();
        for (name, values) in object {
            match values {
                serde_json::Value::Array(items) => {
                    filters.extend(
                        items
                            .iter()
                            .filter_map(|v| Some((name.clone(), v.as_str()?.to_owned()))),
                    );
                }
                serde_json::Value::Object(map) => {
                    filters.extend(map.keys().map(|v| (name.clone(), v.clone())));
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "invalid filter {name:?}: expected a list"
                    )));
                }
            }
        }
        Ok(filters)
    }
}

pub(crate) fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match hex_byte(&bytes[i + 1..i + 3]) {
                Some(byte) => {
                    out.push(byte);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| char::from(b).to_digit(16);
    Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
}

/// A request's JSON body; an empty body is the default value.
pub(crate) async fn read_json<T: for<'de> serde::Deserialize<'de> + Default>(
    body: hyper::body::Incoming,
) -> Result<T, ApiError> {
    let bytes = http_body_util::BodyExt::collect(body)
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?
        .to_bytes();
    if bytes.is_empty() {
        return Ok(T::default());
    }
    decode_json(&bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// A JSON body read as Docker's Go decoder reads it.
pub(crate) fn decode_json<T: for<'de> serde::Deserialize<'de>>(
    bytes: &[u8],
) -> Result<T, serde_json::Error> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes)?;
    drop_nulls(&mut value);
    serde_json::from_value(value)
}

/// Removes every object member whose value is null: Go's decoder, which
/// Docker's clients are written against, leaves a field at its zero value
/// for a null as for a missing key (docker-py and compose v1 send
/// `"Timeout": null`, `"Driver": null`).
fn drop_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(members) => {
            members.retain(|_, v| !v.is_null());
            members.values_mut().for_each(drop_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_members_decode_as_missing_ones_at_any_depth() {
        #[derive(Debug, Default, serde::Deserialize, PartialEq)]
        #[serde(rename_all = "PascalCase", default)]
        struct Health {
            test: Vec<String>,
            timeout: i64,
        }
        #[derive(Debug, Default, serde::Deserialize, PartialEq)]
        #[serde(rename_all = "PascalCase", default)]
        struct Body {
            driver: String,
            healthcheck: Health,
            list: Vec<Health>,
        }
        let mut value = serde_json::json!({
            "Driver": null,
            "Healthcheck": {"Test": ["CMD", "true"], "Timeout": null},
            "List": [{"Timeout": null}],
        });
        drop_nulls(&mut value);
        let body: Body = serde_json::from_value(value).unwrap();
        let health = |test: &[&str]| Health {
            test: test.iter().map(|t| t.to_string()).collect(),
            timeout: 0,
        };
        assert_eq!(
            body,
            Body {
                driver: String::new(),
                healthcheck: health(&["CMD", "true"]),
                list: vec![health(&[])],
            }
        );
    }

    #[test]
    fn query_values_are_percent_decoded() {
        let query = Query::parse(Some("names=busybox%3Alatest&names=a%2Fb&quiet=1&x=%zz"));
        assert_eq!(query.all("names"), vec!["busybox:latest", "a/b"]);
        assert!(query.flag("quiet"));
        assert_eq!(query.get("x"), Some("%zz"));
    }

    #[test]
    fn both_filter_shapes_are_read() {
        let new = Query::parse(Some("filters=%7B%22dangling%22%3A%5B%22true%22%5D%7D"));
        assert_eq!(
            new.filters().unwrap(),
            vec![("dangling".to_owned(), "true".to_owned())]
        );
        let old = Query::parse(Some(
            "filters=%7B%22reference%22%3A%7B%22busy*%22%3Atrue%7D%7D",
        ));
        assert_eq!(
            old.filters().unwrap(),
            vec![("reference".to_owned(), "busy*".to_owned())]
        );
    }
}
