//! Podman (Debian's package) as a peer in tests: each instance has its own
//! storage, run and temporary directories, no network, and cleans up all
//! it made when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// Podman's default rlimits exceed this machine class's hard limits
/// (no CAP_SYS_RESOURCE); see DESIGN.md.
pub const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=20000:20000",
    "--ulimit",
    "nproc=32768:32768",
];

/// A Podman with directories of its own, and optionally another OCI runtime.
#[derive(Debug)]
pub struct Podman {
    dir: TempDir,
    runtime: Option<PathBuf>,
}

impl Podman {
    /// A Podman whose storage holds the busybox rootfs as `keel-busybox`.
    pub fn with_busybox(runtime: Option<&Path>) -> Podman {
        let podman = Podman {
            dir: tempfile::Builder::new()
                .prefix("keel-podman-")
                .tempdir()
                .expect("temporary directory"),
            runtime: runtime.map(Path::to_owned),
        };
        let tar = podman.dir.path().join("busybox.tar");
        crate::busybox_rootfs_tar(&tar).expect("busybox tarball");
        let (code, _, err) = output(podman.command().arg("import").arg(&tar).arg("keel-busybox"));
        assert_eq!(code, 0, "podman import: {err}");
        podman
    }

    /// A directory of this instance's own, for a test's files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Podman with every directory of its own: besides --root and
    /// --runroot, --tmpdir, which holds exit files and the marker whose
    /// absence makes Podman reset all container states (as after a reboot).
    /// Shared, one test's `system reset` would wipe another's.
    pub fn command(&self) -> Command {
        let mut command = Command::new("podman");
        command
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .arg("--tmpdir")
            .arg(self.dir.path().join("tmp"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "none"]);
        if let Some(runtime) = &self.runtime {
            command.arg("--runtime").arg(runtime);
        }
        command
    }

    /// The command line of `command()`, for a shell.
    pub fn command_line(&self) -> String {
        let command = self.command();
        std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `podman run` with this machine's rlimits and no network.
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut command = self.command();
        command
            .arg("run")
            .args(ULIMITS)
            .args(["--network", "none"])
            .args(args);
        output(&mut command)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = output(
            self.command()
                .args(["rm", "--all", "--force", "--time", "0"]),
        );
        let _ = output(self.command().args(["system", "reset", "--force"]));
        unmount_below(self.dir.path());
    }
}

/// Runs a command without input: (exit code, stdout, stderr).
pub fn output(command: &mut Command) -> (i32, String, String) {
    let out = command
        .stdin(Stdio::null())
        .output()
        .expect("peer command runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Unmounts whatever a peer left mounted under `dir`, deepest first, so
/// the temporary directory can go.
pub fn unmount_below(dir: &Path) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = rustix::mount::unmount(point, rustix::mount::UnmountFlags::DETACH);
    }
}
