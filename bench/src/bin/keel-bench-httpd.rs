//! keel-bench-httpd: the network benchmark's second server, run inside
//! the container like busybox httpd but without a fork per connection,
//! so that the published port's path, not the server, sets the pace.
//! Serves the files of a directory, read once at start, answering each
//! GET and closing the connection as busybox httpd does (so requests per
//! second are connections per second). Built static, as the container
//! has no libc: `scripts/build-static keel-bench keel-bench-httpd`.
//!
//!   keel-bench-httpd PORT DIR

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;

/// Threads taking connections from one listener, as many as a 2-core
/// machine can keep busy while wrk shares it.
const THREADS: usize = 4;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(port), Some(dir)) = (args.next(), args.next()) else {
        eprintln!("usage: keel-bench-httpd PORT DIR");
        std::process::exit(2);
    };
    let port: u16 = port.parse().map_err(std::io::Error::other)?;
    let mut replies = HashMap::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let body = std::fs::read(entry.path())?;
        let mut reply = format!(
            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        reply.extend(body);
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "index.html" {
            replies.insert("/".to_owned(), reply.clone());
        }
        replies.insert(format!("/{name}"), reply);
    }
    let replies = Arc::new(replies);
    let listener = Arc::new(TcpListener::bind(("0.0.0.0", port))?);
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (listener, replies) = (Arc::clone(&listener), Arc::clone(&replies));
            std::thread::spawn(move || {
                for connection in listener.incoming().flatten() {
                    let _ = answer(connection, &replies);
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    Ok(())
}

/// Reads one request's head and writes the reply for its path.
fn answer(mut connection: TcpStream, replies: &HashMap<String, Vec<u8>>) -> std::io::Result<()> {
    let mut request = Vec::with_capacity(512);
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = connection.read(&mut buffer)?;
        if n == 0 || request.len() > 16 * 1024 {
            return Ok(());
        }
        request.extend_from_slice(&buffer[..n]);
    }
    let path = std::str::from_utf8(&request)
        .ok()
        .and_then(|head| head.split(' ').nth(1))
        .unwrap_or("/");
    match replies.get(path) {
        Some(reply) => connection.write_all(reply)?,
        None => connection.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")?,
    }
    connection.shutdown(Shutdown::Write)
}
