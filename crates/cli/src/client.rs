//! A small blocking HTTP/1.1 client for the daemon's unix socket: one
//! request per connection, bodies streamed both ways. The CLI needs no
//! async runtime to talk to the daemon, so it starts in a millisecond.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
// The API version this CLI speaks; the daemon accepts it or says why not.
use keel_api_types::API_VERSION;

#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

/// What a request sends as its body.
pub enum Upload<'a> {
    None,
    Json(&'a serde_json::Value),
    /// A request to take the connection over as a raw stream (`attach`,
    /// exec start, with this JSON body if any): the answer is 101, the
    /// body is the stream, and [`Response::input`] writes to it.
    Upgrade(Option<&'a serde_json::Value>),
    /// A stream of unknown length, sent chunked (a tarball from stdin).
    Stream(&'a mut dyn Read),
}

/// A response: status, and the body still to be read.
pub struct Response {
    pub status: u16,
    body: Box<dyn Read>,
    pub content_type: String,
    /// Every header, as sent.
    headers: Vec<(String, String)>,
    /// The connection's writing side, once upgraded.
    input: Option<UnixStream>,
}

impl Client {
    pub fn new(socket: &Path) -> Self {
        Self {
            socket: socket.to_owned(),
        }
    }

    /// Sends a request; `path` is under the API prefix and may carry a
    /// query string.
    pub fn request(&self, method: &str, path: &str, upload: Upload<'_>) -> Result<Response> {
        self.request_with(method, path, &[], upload)
    }

    /// [`Client::request`] with extra headers (`X-Registry-Auth`).
    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        upload: Upload<'_>,
    ) -> Result<Response> {
        let mut stream = UnixStream::connect(&self.socket).with_context(|| {
            format!(
                "Cannot connect to the Keel daemon at unix://{}. Is the keel daemon running?",
                self.socket.display()
            )
        })?;
        let mut head = format!(
            "{method} /v{API_VERSION}{path} HTTP/1.1\r\nHost: keel\r\nUser-Agent: keel-cli/{}\r\n",
            env!("CARGO_PKG_VERSION")
        );
        for (name, value) in headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        let mut json = Vec::new();
        match &upload {
            Upload::None | Upload::Upgrade(None) => head.push_str("Content-Length: 0\r\n"),
            Upload::Json(value) | Upload::Upgrade(Some(value)) => {
                json = serde_json::to_vec(value)?;
                let _ = write!(
                    head,
                    "Content-Type: application/json\r\nContent-Length: {}\r\n",
                    json.len()
                );
            }
            Upload::Stream(_) => {
                head.push_str("Content-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n")
            }
        }
        let upgrade = matches!(upload, Upload::Upgrade(_));
        head.push_str(match upgrade {
            true => "Connection: Upgrade\r\nUpgrade: tcp\r\n",
            false => "Connection: close\r\n",
        });
        head.push_str("\r\n");
        let send = |stream: &mut UnixStream| -> io::Result<()> {
            stream.write_all(head.as_bytes())?;
            match upload {
                Upload::None => {}
                Upload::Json(_) | Upload::Upgrade(_) => stream.write_all(&json)?,
                Upload::Stream(reader) => {
                    let mut buffer = vec![0u8; 256 * 1024];
                    loop {
                        let n = reader.read(&mut buffer)?;
                        write!(stream, "{n:x}\r\n")?;
                        stream.write_all(&buffer[..n])?;
                        stream.write_all(b"\r\n")?;
                        if n == 0 {
                            break;
                        }
                    }
                }
            }
            stream.flush()
        };
        // The daemon may answer (an error) before reading the whole body.
        let sent = send(&mut stream);
        let input = match upgrade {
            true => Some(stream.try_clone()?),
            false => None,
        };
        let response = read_head(BufReader::with_capacity(64 * 1024, stream)).map(|mut r| {
            r.input = input;
            r
        });
        match (response, sent) {
            (Ok(response), _) => Ok(response),
            (Err(error), Err(send_error)) => Err(error.context(send_error)),
            (Err(error), Ok(())) => Err(error),
        }
    }

    /// A request without a body whose answer need only be a success
    /// (start, stop, kill, rm, ...).
    pub fn send(&self, method: &str, path: &str) -> Result<()> {
        self.request(method, path, Upload::None)?.success()?;
        Ok(())
    }

    /// A request whose answer must be a success with a JSON body.
    pub fn json(&self, method: &str, path: &str, upload: Upload<'_>) -> Result<serde_json::Value> {
        let mut response = self.request(method, path, upload)?.success()?;
        let mut body = Vec::new();
        response.body.read_to_end(&mut body)?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&body).context("the daemon's answer is not JSON")
    }
}

/// An error the daemon answered, worded as the docker CLI words it.
#[derive(Debug)]
pub struct DaemonError(pub String);

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Error response from daemon: {}", self.0)
    }
}

impl std::error::Error for DaemonError {}

impl Response {
    /// The response itself if it is a success, else the daemon's message.
    pub fn success(mut self) -> Result<Self> {
        // 101: the connection became the stream asked for (attach); 304:
        // already as asked (start of a running container, stop of a
        // stopped one), which docker takes as success too.
        if self.status == 101 || self.status == 304 || (200..300).contains(&self.status) {
            return Ok(self);
        }
        let mut body = Vec::new();
        self.body.read_to_end(&mut body).ok();
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
        Err(DaemonError(message).into())
    }

    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body(&mut self) -> &mut dyn Read {
        &mut self.body
    }

    /// The stream's writing side, for an upgraded connection.
    pub fn input(&mut self) -> Option<UnixStream> {
        self.input.take()
    }
}

fn read_head(mut reader: BufReader<UnixStream>) -> Result<Response> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .context("the daemon closed the connection")?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("the daemon's answer is not HTTP: {line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    let mut content_type = String::new();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            headers.push((name.to_owned(), value.to_owned()));
            if name.eq_ignore_ascii_case("content-type") {
                content_type = value.to_owned();
            } else if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<u64>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding")
                && value.eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            }
        }
    }
    let body: Box<dyn Read> = if chunked {
        Box::new(Chunked {
            inner: reader,
            left: 0,
            done: false,
        })
    } else if let Some(length) = length {
        Box::new(reader.take(length))
    } else {
        Box::new(reader)
    };
    Ok(Response {
        status,
        body,
        content_type,
        headers,
        input: None,
    })
}

/// Reads a chunked transfer-encoded body.
struct Chunked<R> {
    inner: R,
    left: u64,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            self.inner.read_line(&mut line)?;
            if line.trim().is_empty() {
                line.clear();
                self.inner.read_line(&mut line)?;
            }
            let size = line.trim().split(';').next().unwrap_or_default();
            self.left = u64::from_str_radix(size, 16).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad chunk size {size:?}"),
                )
            })?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let limit = buf.len().min(self.left as usize);
        let n = self.inner.read(&mut buf[..limit])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the daemon's answer was cut short",
            ));
        }
        self.left -= n as u64;
        if self.left == 0 {
            let mut crlf = [0u8; 2];
            self.inner.read_exact(&mut crlf)?;
        }
        Ok(n)
    }
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}
