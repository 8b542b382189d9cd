//! keel-bench-httpd: the network benchmark's second server, run inside
//! the container like busybox httpd, but with a thread per connection and
//! HTTP/1.1 keep-alive, so that the published port's path, not the
//! server, sets the pace: busybox httpd forks and closes per connection
//! (which measures connections per second), this one measures requests
//! over open connections. (Short connections at this one's pace would fill
//! the kernel's connection-tracking table within seconds.) Serves the
//! files of a directory, read once at start. Built static, as the
//! container has no libc: `scripts/build-static keel-bench
//! keel-bench-httpd`.
//!
//!   keel-bench-httpd PORT DIR

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(port), Some(dir)) = (args.next(), args.next()) else {
        eprintln!("usage: keel-bench-httpd PORT DIR");
        std::process::exit(2);
    };
    let port: u16 = port.parse().map_err(std::io::Error::other)?;
    let mut bodies = HashMap::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let body = std::fs::read(entry.path())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "index.html" {
            bodies.insert("/".to_owned(), body.clone());
        }
        bodies.insert(format!("/{name}"), body);
    }
    let bodies = Arc::new(bodies);
    for connection in TcpListener::bind(("0.0.0.0", port))?.incoming() {
        let Ok(connection) = connection else { continue };
        let bodies = Arc::clone(&bodies);
        std::thread::spawn(move || serve(connection, &bodies));
    }
    Ok(())
}

/// Answers the requests of one connection until the client closes it or
/// asks for it to close (as an HTTP/1.0 request does by default).
fn serve(mut connection: TcpStream, bodies: &HashMap<String, Vec<u8>>) {
    let _ = connection.set_nodelay(true);
    let mut pending = Vec::with_capacity(4096);
    let mut buffer = [0u8; 4096];
    loop {
        let end = loop {
            if let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            match connection.read(&mut buffer) {
                Ok(n) if n > 0 && pending.len() < 16 * 1024 => {
                    pending.extend_from_slice(&buffer[..n])
                }
                _ => return,
            }
        };
        let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
        pending.drain(..end);
        let mut words = head.split_whitespace();
        let path = words.nth(1).unwrap_or("/");
        let keep_alive = words.next() == Some("http/1.1") && !head.contains("connection: close");
        let (status, body) = match bodies.get(path) {
            Some(body) => ("200 OK", body.as_slice()),
            None => ("404 Not Found", &[][..]),
        };
        let connection_header = if keep_alive { "keep-alive" } else { "close" };
        let reply = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: {connection_header}\r\n\r\n",
            body.len()
        );
        if connection.write_all(reply.as_bytes()).is_err()
            || connection.write_all(body).is_err()
            || !keep_alive
        {
            return;
        }
    }
}
