//! The embedded DNS server of user networks, as Docker's 127.0.0.11: a UDP
//! socket and a TCP listener inside each container's namespace, all served
//! by one thread of the daemon (a TCP connection gets a thread of its own).
//! Names the caller knows (containers, aliases) are answered at once;
//! others are forwarded to the host's resolvers, over the transport the
//! question came by (a client asks over TCP when a UDP answer was cut
//! short), and the answer relayed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use rustix::event::{EventfdFlags, PollFd, PollFlags};

use crate::error::{Error, Result};
use crate::netns;

const RCODE_SERVFAIL: u8 = 2;
const RCODE_NXDOMAIN: u8 = 3;
/// What a local answer's records say they are good for, as Docker's.
const TTL: u32 = 600;
/// How long a forwarded query waits for the upstream server.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a TCP connection may sit idle between queries.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// A query's first question: its name (lowercase, no final dot), and
/// the query, to answer it.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub name: String,
    query: Message,
}

/// Reads the first question of a query (of class IN); `None` for a
/// message that is not such a query.
pub fn parse_query(message: &[u8]) -> Option<Question> {
    let query = Message::from_vec(message).ok()?;
    let first = query.queries.first()?;
    if query.metadata.message_type != MessageType::Query || first.query_class() != DNSClass::IN {
        return None;
    }
    let name = first.name().to_ascii().to_ascii_lowercase();
    Some(Question {
        name: name.strip_suffix('.').unwrap_or(&name).to_owned(),
        query,
    })
}

/// The answer to `question`'s query: `addresses` as A records (none for
/// other types: the name exists), or `rcode`.
pub fn answer(question: &Question, addresses: &[Ipv4Addr], rcode: u8) -> Vec<u8> {
    let query = &question.query;
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.response_code = ResponseCode::from(0, rcode);
    let first = query.queries[0].clone();
    if first.query_type() == RecordType::A {
        for address in addresses {
            let record = RData::A(A(*address));
            reply.add_answer(Record::from_rdata(first.name().clone(), TTL, record));
        }
    }
    reply.add_query(first);
    reply.to_vec().unwrap_or_default()
}

/// Who knows the names: what the server asks about the container behind
/// a socket (by its key).
pub trait Names: Send + Sync {
    /// The addresses of `name` for `asker`, or None to forward the query.
    fn lookup(&self, asker: &str, name: &str) -> Option<Vec<Ipv4Addr>>;
    /// The servers to forward `asker`'s other queries to.
    fn upstream(&self, asker: &str) -> Vec<SocketAddr>;
}

/// The sockets served in one container's namespace.
struct Endpoint {
    udp: Arc<UdpSocket>,
    tcp: Arc<TcpListener>,
}

/// The sockets served, by key (a container's id).
type Sockets = BTreeMap<String, Endpoint>;

/// The server: sockets come and go as containers start and stop.
pub struct Server {
    sockets: Arc<Mutex<Sockets>>,
    /// Wakes the serving thread when the sockets change.
    wake: Arc<rustix::fd::OwnedFd>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

impl Server {
    /// Starts the serving thread, answering from `names`.
    pub fn start(names: Arc<dyn Names>) -> Result<Server> {
        let wake = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map_err(|errno| Error::Io {
                what: "creating the DNS server's eventfd".to_owned(),
                source: errno.into(),
            })?;
        let server = Server {
            sockets: Arc::new(Mutex::new(BTreeMap::new())),
            wake: Arc::new(wake),
        };
        let sockets = Arc::clone(&server.sockets);
        let wake = Arc::clone(&server.wake);
        std::thread::Builder::new()
            .name("dns".to_owned())
            .spawn(move || {
                // Answers are tiny and every container start waits on the
                // CPU: the server thread goes first, so a name resolves
                // in a busy engine as fast as in an idle one. Best
                // effort: without CAP_SYS_NICE it keeps the default.
                let thread = rustix::thread::gettid();
                let _ = rustix::process::setpriority_process(Some(thread), -10);
                serve(&sockets, &wake, &names)
            })
            .map_err(|source| Error::Io {
                what: "starting the DNS server".to_owned(),
                source,
            })?;
        Ok(server)
    }

    /// Serves `key`'s namespace at `netns` on 127.0.0.11:53, UDP and TCP.
    pub fn add(&self, key: &str, netns: &Path) -> Result<()> {
        let address = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 11), 53);
        let (udp, tcp) = netns::run_in(netns, || {
            let udp = UdpSocket::bind(address)?;
            let tcp = TcpListener::bind(address)?;
            udp.set_nonblocking(true)?;
            tcp.set_nonblocking(true)?;
            Ok((udp, tcp))
        })?
        .map_err(|source: std::io::Error| Error::Io {
            what: format!("binding the DNS server to {address} in {}", netns.display()),
            source,
        })?;
        let endpoint = Endpoint {
            udp: Arc::new(udp),
            tcp: Arc::new(tcp),
        };
        self.lock().insert(key.to_owned(), endpoint);
        self.wake();
        Ok(())
    }

    pub fn remove(&self, key: &str) {
        if self.lock().remove(key).is_some() {
            self.wake();
        }
    }

    pub fn serves(&self, key: &str) -> bool {
        self.lock().contains_key(key)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sockets> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(&self) {
        let _ = rustix::io::write(&*self.wake, &1u64.to_ne_bytes());
    }
}

fn serve(sockets: &Mutex<Sockets>, wake: &rustix::fd::OwnedFd, names: &Arc<dyn Names>) {
    let mut buffer = [0u8; 1500];
    loop {
        let current: Vec<(String, Arc<UdpSocket>, Arc<TcpListener>)> = sockets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(key, e)| (key.clone(), Arc::clone(&e.udp), Arc::clone(&e.tcp)))
            .collect();
        let mut fds: Vec<PollFd<'_>> = vec![PollFd::new(wake, PollFlags::IN)];
        for (_, udp, tcp) in &current {
            fds.push(PollFd::new(udp.as_ref(), PollFlags::IN));
            fds.push(PollFd::new(tcp.as_ref(), PollFlags::IN));
        }
        if rustix::event::poll(&mut fds, None).is_err() {
            continue;
        }
        let ready: Vec<bool> = fds.iter().map(|fd| !fd.revents().is_empty()).collect();
        drop(fds);
        if ready[0] {
            let mut counter = [0u8; 8];
            let _ = rustix::io::read(wake, &mut counter);
        }
        for ((key, udp, tcp), ready) in current.iter().zip(ready[1..].chunks(2)) {
            if ready[0] {
                while let Ok((length, from)) = udp.recv_from(&mut buffer) {
                    let query = &buffer[..length];
                    // Known names at once; a forward off the serving thread.
                    if let Some(reply) = local_reply(names.as_ref(), key, query) {
                        let _ = udp.send_to(&reply, from);
                        continue;
                    }
                    let (names, key, query, udp) = (
                        Arc::clone(names),
                        key.clone(),
                        query.to_vec(),
                        Arc::clone(udp),
                    );
                    spawn("dns-forward", move || {
                        if let Some(reply) = forwarded_reply(names.as_ref(), &key, &query, false) {
                            let _ = udp.send_to(&reply, from);
                        }
                    });
                }
            }
            if ready[1] {
                while let Ok((connection, _)) = tcp.accept() {
                    let (names, key) = (Arc::clone(names), key.clone());
                    spawn("dns-tcp", move || {
                        serve_tcp(connection, names.as_ref(), &key)
                    });
                }
            }
        }
    }
}

fn spawn(name: &str, work: impl FnOnce() + Send + 'static) {
    let _ = std::thread::Builder::new()
        .name(name.to_owned())
        .stack_size(64 * 1024)
        .spawn(work);
}

/// The answer to `query` when its name is one the containers know.
fn local_reply(names: &dyn Names, key: &str, query: &[u8]) -> Option<Vec<u8>> {
    let question = parse_query(query)?;
    let addresses = names.lookup(key, &question.name)?;
    Some(answer(&question, &addresses, 0))
}

/// The upstream servers' answer to `query` (the first to answer), else
/// SERVFAIL (NXDOMAIN when there is no server to ask). None for a message
/// that is not a query.
fn forwarded_reply(names: &dyn Names, key: &str, query: &[u8], tcp: bool) -> Option<Vec<u8>> {
    let question = parse_query(query)?;
    let servers = names.upstream(key);
    if let Some(reply) = servers.iter().find_map(|server| ask(server, query, tcp)) {
        return Some(reply);
    }
    let rcode = match servers.is_empty() {
        true => RCODE_NXDOMAIN,
        false => RCODE_SERVFAIL,
    };
    Some(answer(&question, &[], rcode))
}

/// Asks one upstream server, over UDP or TCP; its answer to this query.
fn ask(server: &SocketAddr, query: &[u8], tcp: bool) -> Option<Vec<u8>> {
    let reply = match tcp {
        false => {
            let out = UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))).ok()?;
            out.set_read_timeout(Some(FORWARD_TIMEOUT)).ok()?;
            out.send_to(query, server).ok()?;
            let mut buffer = [0u8; 4096];
            let (length, answered_by) = out.recv_from(&mut buffer).ok()?;
            (answered_by == *server).then(|| buffer[..length].to_vec())?
        }
        true => {
            let mut out = TcpStream::connect_timeout(server, FORWARD_TIMEOUT).ok()?;
            out.set_read_timeout(Some(FORWARD_TIMEOUT)).ok()?;
            write_framed(&mut out, query).ok()?;
            read_framed(&mut out).ok()??
        }
    };
    (reply.get(..2) == query.get(..2)).then_some(reply)
}

/// Answers the queries of one TCP connection (each framed by its length)
/// until the client closes it or leaves it idle.
fn serve_tcp(mut connection: TcpStream, names: &dyn Names, key: &str) {
    if connection.set_nonblocking(false).is_err()
        || connection.set_read_timeout(Some(TCP_IDLE)).is_err()
    {
        return;
    }
    while let Ok(Some(query)) = read_framed(&mut connection) {
        let reply =
            local_reply(names, key, &query).or_else(|| forwarded_reply(names, key, &query, true));
        match reply {
            Some(reply) if write_framed(&mut connection, &reply).is_ok() => {}
            _ => return,
        }
    }
}

/// A DNS message over TCP: two bytes of length, then the message; None at
/// the end of the stream.
fn read_framed(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut length = [0u8; 2];
    match stream.read_exact(&mut length) {
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    }
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut message)?;
    Ok(Some(message))
}

fn write_framed(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<()> {
    let length = u16::try_from(message.len())
        .map_err(|_| std::io::Error::other("a DNS message over 64 KiB"))?;
    let mut framed = length.to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    stream.write_all(&framed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` of type `kind`, as a stub resolver sends it.
    fn query(name: &str, kind: u16) -> Vec<u8> {
        let mut message = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            message.push(label.len() as u8);
            message.extend_from_slice(label.as_bytes());
        }
        message.push(0);
        message.extend_from_slice(&kind.to_be_bytes());
        message.extend_from_slice(&1u16.to_be_bytes());
        message
    }

    #[test]
    fn a_query_is_answered_with_its_id_question_and_addresses() {
        let q = query("Web.example", 1);
        let question = parse_query(&q).unwrap();
        assert_eq!(question.name, "web.example");
        let reply = answer(&question, &[Ipv4Addr::new(10, 1, 2, 3)], 0);
        assert_eq!(&reply[..2], &[0x12, 0x34]);
        assert_eq!(reply[2] & 0x80, 0x80, "a response");
        assert_eq!(reply[2] & 0x01, 0x01, "recursion desired, as asked");
        assert_eq!(reply[3] & 0x0f, 0, "no error");
        assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), 1, "one answer");
        assert_eq!(&reply[reply.len() - 4..], &[10, 1, 2, 3]);
        assert_eq!(&reply[12..q.len()], &q[12..], "the question, as asked");
    }

    #[test]
    fn other_types_get_no_records_and_errors_their_code() {
        let q = query("web", 28);
        let question = parse_query(&q).unwrap();
        let reply = answer(&question, &[Ipv4Addr::new(10, 1, 2, 3)], 0);
        assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), 0);
        let missing = answer(&question, &[], RCODE_NXDOMAIN);
        assert_eq!(missing[3] & 0x0f, RCODE_NXDOMAIN);
        assert!(parse_query(&missing).is_none(), "a response is not a query");
        assert!(parse_query(&q[..10]).is_none());
    }
}
