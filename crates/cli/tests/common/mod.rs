//! A Keel daemon of the test's own (root, socket) and the clients that
//! talk to it: keel, the docker CLI, docker-py.
#![allow(dead_code)]

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const KEEL: &str = env!("CARGO_BIN_EXE_keel");
/// The Docker 28 CLI on this machine class (API 1.50; it negotiates down).
pub const DOCKER: &str = "/usr/local/bin/docker";

/// The image [`TestDaemon::with_busybox`] imports.
pub const BUSYBOX: &str = "keel-test/busybox";

/// (exit code, stdout, stderr)
pub type Output = (i32, String, String);

pub struct TestDaemon {
    pub dir: TempDir,
    child: Child,
    /// The default bridge of this daemon: its own name and subnet, so
    /// tests run side by side.
    pub bridge: String,
    /// `10.x.y`: the daemon has 10.x.y.0/22, its default bridge the first
    /// /24, user networks the next ones (see [`TestDaemon::user_subnet`]).
    pub subnet: String,
    /// The network namespace the daemon runs in, if not the test's.
    netns: Option<PathBuf>,
    /// The keel binary the daemon runs (keel-daemon and keel-monitor
    /// beside it).
    pub program: PathBuf,
}

/// A bridge name and a /22 no other test daemon running now has.
fn own_network() -> (String, String) {
    static DAEMONS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = DAEMONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pid = std::process::id();
    let slot = pid.wrapping_mul(4).wrapping_add(n);
    let subnet = format!("10.{}.{}", 100 + (slot >> 6) % 100, (slot % 64) * 4);
    (format!("kt{pid}-{n}"), subnet)
}

/// `--default-address-pool` over the last two spare /24s of the /22 whose
/// first /24 is `subnet` (`10.x.y`, y a multiple of 4): user subnets 1 and 2.
fn spare_pool(subnet: &str) -> String {
    let (prefix, third) = subnet.rsplit_once('.').unwrap();
    let third: u32 = third.parse().unwrap();
    format!("base={prefix}.{}.0/23,size=24", third + 2)
}

impl TestDaemon {
    pub fn start() -> TestDaemon {
        Self::start_in(None)
    }

    /// A daemon in the network namespace bound at `netns` (one the test
    /// made, so that what it does to that namespace's firewall stays
    /// there), or in the test's own.
    pub fn start_in(netns: Option<&Path>) -> TestDaemon {
        Self::start_of(netns, |_| PathBuf::from(KEEL))
    }

    /// A daemon that runs copies of keel, keel-daemon and keel-monitor in
    /// its own directory, for tests whose attacks, if they worked, would write
    /// over the binaries.
    pub fn start_copied() -> TestDaemon {
        Self::start_of(None, |dir| {
            let bin = dir.join("bin");
            std::fs::create_dir(&bin).unwrap();
            for name in ["keel", "keel-daemon", "keel-monitor"] {
                std::fs::copy(Path::new(KEEL).with_file_name(name), bin.join(name)).unwrap();
            }
            bin.join("keel")
        })
    }

    /// A daemon on a root that `fill` makes first (in the directory it is
    /// given), as one left by an earlier Keel.
    pub fn start_on(fill: impl FnOnce(&Path)) -> TestDaemon {
        Self::start_of(None, |dir| {
            fill(&dir.join("root"));
            PathBuf::from(KEEL)
        })
    }

    fn start_of(netns: Option<&Path>, program: impl FnOnce(&Path) -> PathBuf) -> TestDaemon {
        let dir = tempfile::Builder::new()
            .prefix("keel-cli-")
            .tempdir()
            .unwrap();
        let (bridge, subnet) = own_network();
        let netns = netns.map(Path::to_owned);
        let program = program(dir.path());
        let child = spawn_daemon(&program, dir.path(), &bridge, &subnet, netns.as_deref());
        let daemon = TestDaemon {
            dir,
            child,
            bridge,
            subnet,
            netns,
            program,
        };
        wait_for_socket(&daemon.socket());
        daemon
    }

    /// Stops the daemon (SIGTERM, as a service manager would) and starts
    /// another on the same root and socket.
    pub fn restart(&mut self) {
        self.stop_daemon();
        self.start_again();
    }

    /// Kills the daemon with SIGKILL (no chance to clean up) and starts
    /// another on the same root and socket.
    pub fn kill_and_restart(&mut self) {
        self.kill_and_restart_after(|| {});
    }

    /// As [`kill_and_restart`](Self::kill_and_restart), doing `meanwhile`
    /// while no daemon runs.
    pub fn kill_and_restart_after(&mut self, meanwhile: impl FnOnce()) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        meanwhile();
        self.start_again();
    }

    /// A new daemon on the same root, socket, bridge and namespace.
    fn start_again(&mut self) {
        self.child = spawn_daemon(
            &self.program,
            self.dir.path(),
            &self.bridge,
            &self.subnet,
            self.netns.as_deref(),
        );
        wait_for_socket(&self.socket());
    }

    fn stop_daemon(&mut self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `keel events` between two times, of one type, formatted.
    pub fn events_of(&self, since: &str, until: &str, kind: &str, format: &str) -> String {
        self.keel_ok(&[
            "events",
            "--since",
            since,
            "--until",
            until,
            "--filter",
            &format!("type={kind}"),
            "--format",
            format,
        ])
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("keel.sock")
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `keel args` against this daemon, to run.
    pub fn keel_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(KEEL);
        command
            .args(args)
            .env("KEEL_HOST", format!("unix://{}", self.socket().display()))
            .env("KEEL_ROOT", self.root())
            // Registry credentials: the test's own, shared with its docker CLI.
            .env("DOCKER_CONFIG", self.path("docker-config"))
            // The test owns its daemon: a keel command after it is gone
            // (or crashed) must fail, not start one nobody stops.
            .env("KEEL_AUTOSTART", "0");
        command
    }

    pub fn keel(&self, args: &[&str]) -> Output {
        output(&mut self.keel_command(args))
    }

    /// Fails the test unless `keel args` succeeds; returns its stdout.
    pub fn keel_ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.keel(args);
        assert_eq!(code, 0, "keel {args:?}: {err}");
        out
    }

    /// The docker CLI against this daemon, to run.
    pub fn docker_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(DOCKER);
        command
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.path("docker-config"));
        command
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        output(&mut self.docker_command(args))
    }

    /// A daemon with busybox imported as `keel-test/busybox`, the image the
    /// container tests run.
    pub fn with_busybox() -> TestDaemon {
        Self::with_busybox_in(None)
    }

    /// [`with_busybox`](Self::with_busybox) in a network namespace (see
    /// [`start_in`](Self::start_in)).
    pub fn with_busybox_in(netns: Option<&Path>) -> TestDaemon {
        let daemon = TestDaemon::start_in(netns);
        daemon.import_busybox(BUSYBOX);
        daemon
    }

    /// busybox imported as `name`; returns its id.
    pub fn import_busybox(&self, name: &str) -> String {
        let tar = self.busybox_tar();
        let out = self.keel_ok(&[
            "import",
            "-c",
            "CMD [\"sh\"]",
            "-m",
            "busybox for tests",
            tar.to_str().unwrap(),
            name,
        ]);
        out.trim().to_owned()
    }

    /// A busybox rootfs tarball in the test's directory.
    pub fn busybox_tar(&self) -> PathBuf {
        let path = self.path("busybox.tar");
        if !path.exists() {
            keel_testkit::busybox_rootfs_tar(&path).unwrap();
        }
        path
    }

    /// The default bridge's subnet: `10.x.y.0/24`.
    pub fn network_subnet(&self) -> keel_network::Subnet {
        format!("{}.0/24", self.subnet).parse().unwrap()
    }

    /// A /24 of this test's own for user network `n` (0 to 2).
    pub fn user_subnet(&self, n: u32) -> String {
        assert!(n < 3, "a test daemon has three spare /24s");
        let (prefix, third) = self.subnet.rsplit_once('.').unwrap();
        let third: u32 = third.parse().unwrap();
        format!("{prefix}.{}.0/24", third + 1 + n)
    }

    /// The default bridge's gateway: `10.x.y.1`.
    pub fn gateway(&self) -> String {
        format!("{}.1", self.subnet)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("daemon.log")).unwrap_or_default()
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        // Containers outlive the daemon (their monitors leave its session):
        // remove them through it first.
        let (_, ids, _) = self.keel(&["ps", "-aq", "--no-trunc"]);
        for id in ids.lines() {
            let _ = self.keel(&["rm", "-f", id]);
        }
        // User networks' bridges and rules go with them.
        let _ = self.keel(&["network", "prune", "-f"]);
        self.stop_daemon();
        keel_testkit::podman::unmount_below(self.dir.path());
        // A namespace of the test's own takes these with it.
        if self.netns.is_none() {
            let rules = keel_network::nft::Rules {
                bridge: &self.bridge,
                subnet: self.network_subnet(),
                internal: false,
            };
            rules.uninstall().ok();
            keel_network::firewall::stop_letting_through(&self.bridge);
            keel_network::bridge::remove(&self.bridge).ok();
        }
    }
}

fn spawn_daemon(
    program: &Path,
    dir: &Path,
    bridge: &str,
    subnet: &str,
    netns: Option<&Path>,
) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("daemon.log"))
        .unwrap();
    // nsenter execs the daemon: its pid is the daemon's.
    let mut command = match netns {
        Some(path) => {
            let mut command = Command::new("nsenter");
            command
                .arg(format!("--net={}", path.display()))
                .arg(program);
            command
        }
        None => Command::new(program),
    };
    command
        .arg("daemon")
        .arg("--root")
        .arg(dir.join("root"))
        .arg("-H")
        .arg(format!("unix://{}", dir.join("keel.sock").display()))
        .args(["--bridge", bridge, "--bip", &format!("{subnet}.1/24")])
        // User networks made without a subnet take the test's last two
        // spare /24s, not Docker's pools, which other tests' daemons share.
        .arg("--default-address-pool")
        .arg(spare_pool(subnet))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

pub fn output(command: &mut Command) -> Output {
    let out = command.stdin(Stdio::null()).output().unwrap();
    decode(out)
}

/// Runs `command` with `input` as its stdin.
pub fn fed(command: &mut Command, input: &str) -> Output {
    decode(fed_bytes(command, input.as_bytes()))
}

/// Runs `command` with the bytes `input` as its stdin; its raw output.
pub fn fed_bytes(command: &mut Command, input: &[u8]) -> std::process::Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn decode(out: std::process::Output) -> Output {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn wait_for_socket(socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "no daemon on {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SIGTERM to a process that is not our child (init reaps it), then
/// SIGKILL if it is still there after 5 s.
pub fn stop(pid: i32) {
    let pid = rustix::process::Pid::from_raw(pid).unwrap();
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while rustix::process::test_kill_process(pid).is_ok() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
}

/// Now, as Unix seconds with nanoseconds (as `--since` and `--until`
/// take a time).
pub fn unix_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}
