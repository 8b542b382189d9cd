//! Drives the keel-runtime binary the way containerd and conmon do, with a
//! state root of its own per test.
#![allow(dead_code)] // Each test file uses a different part.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use keel_testkit::{Bundle, unique_name};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};
use tempfile::TempDir;

pub struct Runtime {
    dir: TempDir,
    /// The state root given as --root: `dir` itself, or a directory in it
    /// that keel-runtime makes.
    root: PathBuf,
    binary: PathBuf,
}

impl Runtime {
    pub fn new() -> Runtime {
        Self::of_binary(Path::new(env!("CARGO_BIN_EXE_keel-runtime")))
    }

    /// A runtime that runs the keel-runtime binary at `binary`.
    pub fn of_binary(binary: &Path) -> Runtime {
        let dir = tempfile::Builder::new()
            .prefix("keel-runtime-root-")
            .tempdir()
            .expect("state root");
        Runtime {
            root: dir.path().to_owned(),
            dir,
            binary: binary.to_owned(),
        }
    }

    /// A runtime whose state root keel-runtime makes itself, in a
    /// directory anyone may pass through.
    pub fn making_its_root() -> Runtime {
        let mut runtime = Self::new();
        std::fs::set_permissions(
            runtime.dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        runtime.root = runtime.dir.path().join("state");
        runtime
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command.arg("--root").arg(&self.root);
        command
    }

    /// Runs keel-runtime with `args` and returns what it printed. Output
    /// goes through files, not pipes: a created container inherits them and
    /// would hold a pipe open long after keel-runtime exits.
    pub fn output(&self, args: &[&str]) -> Output {
        let stdout = tempfile::tempfile().expect("temporary file");
        let stderr = tempfile::tempfile().expect("temporary file");
        let status = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout.try_clone().expect("dup"))
            .stderr(stderr.try_clone().expect("dup"))
            .status()
            .expect("keel-runtime runs");
        Output {
            status,
            stdout: read_back(stdout),
            stderr: read_back(stderr),
        }
    }

    /// `run` in the foreground: (exit code, stdout, stderr).
    pub fn run(&self, bundle: &Bundle, id: &str) -> (i32, String, String) {
        let out = self.output(&["run", "--bundle", bundle.path().to_str().unwrap(), id]);
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }

    /// Creates a container that is deleted (forcibly) when the guard drops,
    /// even if the test fails first.
    pub fn create<'a>(&'a self, bundle: &Bundle, id: &str) -> Container<'a> {
        let out = self.output(&["create", "--bundle", bundle.path().to_str().unwrap(), id]);
        assert!(
            out.status.success(),
            "create {id} failed: {}",
            text(&out.stderr)
        );
        Container {
            runtime: self,
            id: id.to_owned(),
        }
    }

    pub fn state(&self, id: &str) -> serde_json::Value {
        let out = self.output(&["state", id]);
        assert!(
            out.status.success(),
            "state {id} failed: {}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("state is JSON")
    }
}

pub struct Container<'a> {
    pub runtime: &'a Runtime,
    pub id: String,
}

impl Container<'_> {
    pub fn status(&self) -> String {
        self.runtime.state(&self.id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn pid(&self) -> i32 {
        self.runtime.state(&self.id)["pid"]
            .as_i64()
            .unwrap_or_default() as i32
    }

    pub fn start(&self) {
        let out = self.runtime.output(&["start", &self.id]);
        assert!(out.status.success(), "start failed: {}", text(&out.stderr));
    }

    /// Waits until the container's process has exited.
    pub fn wait_stopped(&self) {
        for _ in 0..500 {
            if self.status() == "stopped" {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("container {} did not stop", self.id);
    }

    /// `exec` in the foreground: (exit code, stdout, stderr).
    pub fn exec(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = vec!["exec", self.id.as_str()];
        all.extend_from_slice(args);
        let out = self.runtime.output(&all);
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.runtime.output(&["delete", "--force", &self.id]);
    }
}

fn read_back(mut file: std::fs::File) -> Vec<u8> {
    use std::io::{Read, Seek};
    let mut bytes = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut bytes))
        .expect("reading output back");
    bytes
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The directory of the cgroup `name` in the v1 hierarchy `controller`.
pub fn v1_cgroup(controller: &str, name: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup").join(controller).join(name)
}

/// Whether any mount in the host's table mentions `needle`.
pub fn host_mounts_mention(needle: &Path) -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mountinfo.contains(needle.to_str().unwrap())
}

/// Changes the namespace list of `spec`.
pub fn edit_namespaces(
    spec: &mut oci_spec::runtime::Spec,
    change: impl FnOnce(&mut Vec<LinuxNamespace>),
) {
    let linux = spec.linux_mut().as_mut().expect("a linux section");
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    change(&mut namespaces);
    linux.set_namespaces(Some(namespaces));
}

/// A new namespace of type `typ`.
pub fn namespace(typ: LinuxNamespaceType) -> LinuxNamespace {
    let mut ns = LinuxNamespace::default();
    ns.set_typ(typ);
    ns
}

/// The container joins the namespace at `path` instead of making its own.
pub fn join_namespace(spec: &mut oci_spec::runtime::Spec, typ: LinuxNamespaceType, path: &str) {
    edit_namespaces(spec, |list| {
        for ns in list.iter_mut().filter(|ns| ns.typ() == typ) {
            ns.set_path(Some(path.into()));
        }
    });
}

/// A hook running `path` with `args` (args[0] is the program's name).
pub fn hook(path: &str, args: &[&str]) -> oci_spec::runtime::Hook {
    let mut hook = oci_spec::runtime::Hook::default();
    hook.set_path(path.into())
        .set_args(Some(args.iter().map(|a| a.to_string()).collect()));
    hook
}

/// Changes `linux.resources` of `spec`.
pub fn edit_resources(
    spec: &mut oci_spec::runtime::Spec,
    change: impl FnOnce(&mut oci_spec::runtime::LinuxResources),
) {
    let linux = spec.linux_mut().as_mut().expect("a linux section");
    let mut resources = linux.resources().clone().unwrap_or_default();
    change(&mut resources);
    linux.set_resources(Some(resources));
}

/// A bind mount of the host's `source` at `destination`, with `options`
/// (which should include bind or rbind).
pub fn bind_mount(source: &Path, destination: &str, options: &[&str]) -> oci_spec::runtime::Mount {
    let mut mount = oci_spec::runtime::Mount::default();
    mount
        .set_destination(destination.into())
        .set_typ(Some("bind".into()))
        .set_source(Some(source.to_owned()))
        .set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    mount
}
