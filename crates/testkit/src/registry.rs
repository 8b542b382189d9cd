//! A real registry for tests: Debian's `docker-registry` (the Distribution
//! project's own server) on a free loopback port, storing under the test's
//! directory, optionally behind htpasswd basic auth or bearer tokens;
//! stopped (by its pid) when dropped.

use std::fmt::Write as _;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How the registry wants clients to authenticate.
enum Auth<'a> {
    None,
    Basic {
        user: &'a str,
        password: &'a str,
    },
    Token {
        realm: &'a str,
        service: &'a str,
        issuer: &'a str,
        certificate: &'a Path,
    },
}

#[derive(Debug)]
pub struct Registry {
    dir: TempDir,
    child: Option<Child>,
    /// `127.0.0.1:PORT`, as image references name it.
    pub address: String,
}

impl Registry {
    /// A registry anyone can pull from and push to.
    pub fn start() -> Registry {
        Self::launch(&Auth::None)
    }

    /// A registry that wants `user`'s password (basic auth).
    pub fn with_basic_auth(user: &str, password: &str) -> Registry {
        Self::launch(&Auth::Basic { user, password })
    }

    /// A registry that takes the bearer tokens an auth server at `realm`
    /// issues (signed by the key of `certificate`, a PEM file).
    pub fn with_token_auth(
        realm: &str,
        service: &str,
        issuer: &str,
        certificate: &Path,
    ) -> Registry {
        Self::launch(&Auth::Token {
            realm,
            service,
            issuer,
            certificate,
        })
    }

    fn launch(auth: &Auth<'_>) -> Registry {
        let program = "/usr/bin/docker-registry";
        assert!(
            Path::new(program).exists(),
            "{program} is missing: install Debian's docker-registry (scripts/install-deps)"
        );
        let dir = tempfile::Builder::new()
            .prefix("keel-registry-")
            .tempdir()
            .unwrap();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n",
            dir.path().join("data").display()
        );
        match auth {
            Auth::None => {}
            Auth::Basic { user, password } => {
                let hash = bcrypt::hash(password, 4).unwrap();
                let htpasswd = dir.path().join("htpasswd");
                fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
                let _ = write!(
                    config,
                    "auth:\n  htpasswd:\n    realm: keel-test\n    path: {}\n",
                    htpasswd.display()
                );
            }
            Auth::Token {
                realm,
                service,
                issuer,
                certificate,
            } => {
                let _ = write!(
                    config,
                    "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                    certificate.display()
                );
            }
        }
        // A port free now may be taken before the registry binds it: try
        // a few.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let address = format!("127.0.0.1:{port}");
            let file = dir.path().join("config.yml");
            fs::write(&file, format!("{config}http:\n  addr: {address}\n")).unwrap();
            let log = fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new(program)
                .arg("serve")
                .arg(&file)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            if listens(&mut child, &address) {
                return Registry {
                    dir,
                    child: Some(child),
                    address,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not start on a free loopback port");
    }

    /// Stops the server (SIGKILL, by the pid this fixture started).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What the server logged, with one access-log line per request.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// How many times a blob was downloaded (`GET …/blobs/DIGEST`).
    pub fn blob_downloads(&self, digest: &str) -> usize {
        self.log()
            .lines()
            .filter(|line| {
                line.contains("\"GET /v2/") && line.contains(&format!("/blobs/{digest} "))
            })
            .count()
    }

    /// Where the registry keeps a blob's bytes, to damage it on purpose.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

/// Whether the server comes to listen on `address` (false if it exits).
fn listens(child: &mut Child, address: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if TcpStream::connect(address).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}
