//! A real registry for tests: Debian's `docker-registry` (the Distribution
//! project's own server) on a free loopback port, storing under the test's
//! directory, optionally behind htpasswd basic auth; stopped (by its pid)
//! when dropped.

use std::fmt::Write as _;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

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
        Self::launch(None)
    }

    /// A registry that wants `user`'s password (basic auth).
    pub fn with_basic_auth(user: &str, password: &str) -> Registry {
        Self::launch(Some((user, password)))
    }

    fn launch(auth: Option<(&str, &str)>) -> Registry {
        let program = "/usr/bin/docker-registry";
        assert!(
            Path::new(program).exists(),
            "{program} is missing: install Debian's docker-registry (scripts/install-deps)"
        );
        let mut dir = tempfile::Builder::new()
            .prefix("keel-registry-")
            .tempdir()
            .unwrap();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = auth {
            let hash = bcrypt::hash(password, 4).unwrap();
            let htpasswd = dir.path().join("htpasswd");
            fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
            let _ = write!(
                config,
                "auth:\n  htpasswd:\n    realm: keel-test\n    path: {}\n",
                htpasswd.display()
            );
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
            let child = Command::new(program)
                .arg("serve")
                .arg(&file)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            let mut registry = Registry {
                dir,
                child: Some(child),
                address,
            };
            if registry.wait_until_listening() {
                return registry;
            }
            registry.stop();
            dir = registry.take_dir();
        }
        panic!("docker-registry did not start on a free loopback port");
    }

    fn take_dir(mut self) -> TempDir {
        self.stop();
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    fn wait_until_listening(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = &mut self.child
                && child.try_wait().ok().flatten().is_some()
            {
                return false;
            }
            if TcpStream::connect(&self.address).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
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

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}
