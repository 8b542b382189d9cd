//! Test fixtures built offline from Debian's `busybox-static`: a root
//! filesystem with every applet, OCI bundles around it, and tarballs of it
//! for peers (Podman, Docker) to import.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use oci_spec::runtime::{LinuxDeviceCgroup, Spec};
use tempfile::TempDir;

pub mod archive;
pub mod docker;
pub mod escape;
pub mod podman;
pub mod registry;
pub mod tmux;

/// Where Debian's busybox-static installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Checks that the busybox binary is there and static, so a test fails
/// with a fix rather than with a confusing exec error in a container.
pub fn busybox() -> &'static Path {
    let path = Path::new(BUSYBOX);
    let bytes = fs::read(path).unwrap_or_else(|e| {
        panic!("{BUSYBOX}: {e}; install Debian's busybox-static (apt-get install busybox-static)")
    });
    assert!(
        !has_interpreter(&bytes),
        "{BUSYBOX} is dynamically linked; install busybox-static instead of busybox"
    );
    path
}

/// Whether a 64-bit little-endian ELF has a PT_INTERP program header, that
/// is, needs a dynamic loader.
fn has_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let read = |at: usize, len: usize| -> Option<u64> {
        let bytes = elf.get(at..at + len)?;
        Some(
            bytes
                .iter()
                .rev()
                .fold(0, |acc, b| acc << 8 | u64::from(*b)),
        )
    };
    let (Some(offset), Some(size), Some(count)) = (read(0x20, 8), read(0x36, 2), read(0x38, 2))
    else {
        return false;
    };
    (0..count).any(|i| read((offset + i * size) as usize, 4) == Some(u64::from(PT_INTERP)))
}

/// Fills `dir` with a busybox root filesystem: the binary, a symlink per
/// applet in /bin, the usual top-level directories, /etc/passwd and
/// /etc/group (root, nobody, and user 1000), and /www/index.html for httpd.
pub fn busybox_rootfs(dir: &Path) -> io::Result<()> {
    let busybox = busybox();
    for sub in [
        "bin",
        "dev",
        "etc",
        "proc",
        "sys",
        "tmp",
        "root",
        "www",
        "var",
        "home/user",
    ] {
        fs::create_dir_all(dir.join(sub))?;
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::copy(busybox, dir.join("bin/busybox"))?;
    let list = Command::new(busybox).arg("--list").output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            symlink("busybox", dir.join("bin").join(applet))?;
        }
    }
    symlink("bin", dir.join("sbin"))?;
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    fs::write(
        dir.join("etc/group"),
        "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n",
    )?;
    fs::write(dir.join("www/index.html"), "hello from keel\n")?;
    Ok(())
}

/// A name no other test running now has: `prefix`, this process's pid and
/// a counter. Container ids, cgroup paths and bridge names built from it do
/// not collide when tests run side by side.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An OCI bundle in a temporary directory: `rootfs/` from busybox and a
/// `config.json` written by [`Bundle::save`].
#[derive(Debug)]
pub struct Bundle {
    dir: TempDir,
    pub spec: Spec,
}

/// runc's default config (all namespaces but user, default mounts, masked
/// paths, all devices denied but the defaults) running `args`, without a
/// terminal, in a cgroup of its own named after `id`.
pub fn busybox_spec(id: &str, args: &[&str]) -> Spec {
    let mut spec = Spec::default();
    spec.set_hostname(Some("keel".to_owned()));
    let process = spec.process_mut().as_mut().expect("default process");
    process.set_terminal(Some(false));
    process.set_args(Some(args.iter().map(|a| a.to_string()).collect()));
    let linux = spec.linux_mut().as_mut().expect("default linux section");
    linux.set_cgroups_path(Some(PathBuf::from(format!("/{id}"))));
    if let Some(resources) = linux.resources_mut() {
        let mut deny_all = LinuxDeviceCgroup::default();
        deny_all.set_allow(false).set_access(Some("rwm".to_owned()));
        resources.set_devices(Some(vec![deny_all]));
    }
    spec
}

/// Writes a busybox bundle (rootfs/ and config.json) into `dir`.
pub fn write_busybox_bundle(dir: &Path, id: &str, args: &[&str]) -> io::Result<()> {
    busybox_rootfs(&dir.join("rootfs"))?;
    let json = serde_json::to_vec_pretty(&busybox_spec(id, args)).map_err(io::Error::other)?;
    fs::write(dir.join("config.json"), json)
}

impl Bundle {
    /// A bundle in a temporary directory; see [`busybox_spec`].
    pub fn busybox(id: &str, args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("keel-bundle-")
            .tempdir()
            .expect("temporary directory for a bundle");
        busybox_rootfs(&dir.path().join("rootfs")).expect("busybox rootfs");
        let bundle = Bundle {
            dir,
            spec: busybox_spec(id, args),
        };
        bundle.save();
        bundle
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Writes `spec` to config.json.
    pub fn save(&self) {
        let json = serde_json::to_vec_pretty(&self.spec).expect("serializable spec");
        fs::write(self.dir.path().join("config.json"), json).expect("writing config.json");
    }

    /// Changes the spec and saves it.
    pub fn edit(&mut self, change: impl FnOnce(&mut Spec)) {
        change(&mut self.spec);
        self.save();
    }
}

/// The busybox root filesystem as an uncompressed tarball, as `podman
/// import` and `docker import` take it.
pub fn busybox_rootfs_tar(path: &Path) -> io::Result<()> {
    busybox_rootfs_tar_with(path, |_| {})
}

/// [`busybox_rootfs_tar`] of a busybox root filesystem that `change`
/// changed first.
pub fn busybox_rootfs_tar_with(path: &Path, change: impl FnOnce(&Path)) -> io::Result<()> {
    let staging = tempfile::Builder::new().prefix("keel-rootfs-").tempdir()?;
    busybox_rootfs(staging.path())?;
    change(staging.path());
    let mut builder = tar::Builder::new(fs::File::create(path)?);
    builder.follow_symlinks(false);
    builder.append_dir_all(".", staging.path())?;
    builder.into_inner()?.sync_all()
}
