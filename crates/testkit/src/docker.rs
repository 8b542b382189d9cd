//! Docker (Debian's docker.io: dockerd 20.10 with its containerd) as a
//! peer: a daemon of its own with its own data, exec root and socket (no
//! bridge and no iptables rules unless networked), busybox imported as
//! `keel-busybox`; it removes its containers and stops when dropped.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::podman::{output, unmount_below};

#[derive(Debug)]
pub struct Docker {
    dir: TempDir,
    daemon: Child,
}

impl Docker {
    /// Starts dockerd, with `runtimes` (name, path) added beside runc.
    pub fn start(runtimes: &[(&str, &Path)]) -> Docker {
        Self::launch(
            runtimes,
            &[
                "--bridge",
                "none",
                "--iptables=false",
                "--ip-masq=false",
                "--ip-forward=false",
            ],
        )
    }

    /// Starts dockerd with its default network: docker0, its iptables
    /// rules and docker-proxy, as a user's Docker runs. Its FORWARD policy
    /// drops what it does not know; `DOCKER-USER` is where others are let
    /// through.
    pub fn start_networked() -> Docker {
        Self::launch(&[], &[])
    }

    fn launch(runtimes: &[(&str, &Path)], network: &[&str]) -> Docker {
        let dir = tempfile::Builder::new()
            .prefix("keel-docker-")
            .tempdir()
            .expect("temporary directory");
        let path = dir.path();
        let log = std::fs::File::create(path.join("dockerd.log")).expect("dockerd.log");
        let mut command = Command::new("dockerd");
        command
            .arg("--data-root")
            .arg(path.join("data"))
            .arg("--exec-root")
            .arg(path.join("exec"))
            .arg("--pidfile")
            .arg(path.join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", path.join("docker.sock").display()))
            .args(network);
        for (name, binary) in runtimes {
            command
                .arg("--add-runtime")
                .arg(format!("{name}={}", binary.display()));
        }
        let daemon = command
            .stdout(log.try_clone().expect("dockerd.log"))
            .stderr(log)
            .spawn()
            .expect("dockerd from Debian's docker.io");
        let docker = Docker { dir, daemon };
        let deadline = Instant::now() + Duration::from_secs(30);
        while output(docker.command().arg("version")).0 != 0 {
            assert!(
                Instant::now() < deadline,
                "dockerd did not come up: {}",
                docker.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let tar = docker.dir.path().join("busybox.tar");
        crate::busybox_rootfs_tar(&tar).expect("busybox tarball");
        let (code, _, err) = output(docker.command().args([
            "import",
            tar.to_str().expect("UTF-8 path"),
            "keel-busybox",
        ]));
        assert_eq!(code, 0, "docker import: {err}");
        docker
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// A directory of this instance's own, for a test's files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// dockerd's pid.
    pub fn pid(&self) -> i32 {
        self.daemon.id() as i32
    }

    /// Debian's 20.10 client, matching the daemon.
    pub fn command(&self) -> Command {
        let mut command = Command::new("/usr/bin/docker");
        command.arg("--host").arg(format!(
            "unix://{}",
            self.dir.path().join("docker.sock").display()
        ));
        command
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        // Containers one per call: dockerd 20.10 deadlocks on several
        // (moby#42545).
        let (_, ids, _) = output(self.command().args(["ps", "--all", "--quiet"]));
        for id in ids.lines() {
            let _ = output(self.command().args(["rm", "--force", id]));
        }
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.daemon),
            rustix::process::Signal::TERM,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.daemon.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        unmount_below(self.dir.path());
    }
}
