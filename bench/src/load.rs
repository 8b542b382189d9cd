//! `keel-bench load`: unpacking the same multi-layer image (~200 MB: a
//! busybox base, tens of thousands of small files, a few big ones) from a
//! docker-archive, by Keel's image store and by `podman load`, each a fresh
//! process into an empty store, taking turns.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use keel_image::{Digest, Store};

use crate::{median, ms};

/// The hidden subcommand the benchmark runs as Keel's side: one load into
/// an empty store, in a process of its own.
pub fn load_once(root: &Path, archive: &Path) -> Result<()> {
    let store = Store::open(root)?;
    let file = std::fs::File::open(archive).with_context(|| archive.display().to_string())?;
    store.load(
        file,
        &archive.display().to_string(),
        &keel_image::Cancel::default(),
    )?;
    Ok(())
}

/// Who loads the image, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    /// Keel's image store, in a fresh process.
    Keel,
    /// `podman load`, with directories of its own.
    Podman,
    /// `ctr images import` (which unpacks) into a containerd started for
    /// the round with a root of its own; its RSS is the daemon's.
    Containerd,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Keel => "keel",
            Peer::Podman => "podman load",
            Peer::Containerd => "containerd",
        }
    }
}

struct Contender {
    peer: Peer,
    times: Vec<Duration>,
    peak_rss_kib: Vec<i64>,
}

pub fn load_bench(iterations: usize) -> Result<()> {
    let work = tempfile::Builder::new()
        .prefix("keel-bench-load-")
        .tempdir_in("/var/tmp")?;
    let archive = work.path().join("image.tar");
    let size = write_image(&archive)?;
    println!(
        "image: {:.0} MB uncompressed in 4 layers, as a docker-archive",
        size as f64 / 1e6
    );
    let mut contenders = vec![Contender::new(Peer::Keel)];
    for (peer, program) in [(Peer::Podman, "podman"), (Peer::Containerd, "containerd")] {
        if which(program).is_some() {
            contenders.push(Contender::new(peer));
        } else {
            println!("{program}: not installed, skipped");
        }
    }
    let time_file = work.path().join("time.out");
    let warmup = 2;
    for i in 0..warmup + iterations {
        for k in 0..contenders.len() {
            let index = (i + k) % contenders.len();
            let peer = contenders[index].peer;
            // Every load gets a fresh store, and stores are removed only at
            // the end: removing big trees between loads sets this disk
            // (ext4 with discard) trimming for a while. What earlier loads
            // left unsynced is flushed first, so nobody pays for another.
            let root = work.path().join(format!("root-{index}-{i}"));
            rustix::fs::sync();
            let (elapsed, peak_rss_kib) = match peer {
                Peer::Keel => {
                    let mut command = timed(&time_file);
                    command
                        .arg(std::env::current_exe()?)
                        .arg("load-once")
                        .arg(&root)
                        .arg(&archive);
                    run_timed(&mut command, peer, &time_file)?
                }
                Peer::Podman => {
                    let mut command = timed(&time_file);
                    command
                        .args(podman_args(&root))
                        .args(["load", "-q", "-i"])
                        .arg(&archive);
                    run_timed(&mut command, peer, &time_file)?
                }
                Peer::Containerd => containerd_import(&root, &archive, &time_file)?,
            };
            if i >= warmup {
                contenders[index].times.push(elapsed);
                contenders[index].peak_rss_kib.push(peak_rss_kib);
            }
        }
    }
    for i in 0..warmup + iterations {
        for (index, contender) in contenders.iter().enumerate() {
            remove_store(
                &work.path().join(format!("root-{index}-{i}")),
                contender.peer,
            )?;
        }
    }
    println!(
        "load of the same image into an empty store, {iterations} iterations each after {warmup} warm-up, taking turns"
    );
    println!(
        "{:<14} {:>12} {:>10} {:>14}",
        "who", "median", "vs keel", "peak RSS"
    );
    let keel = median(&contenders[0].times);
    for contender in &mut contenders {
        let time = median(&contender.times);
        contender.peak_rss_kib.sort_unstable();
        println!(
            "{:<14} {:>9.0} ms {:>9.2}x {:>10} KiB",
            contender.peer.name(),
            ms(time),
            ms(time) / ms(keel),
            contender.peak_rss_kib[contender.peak_rss_kib.len() / 2]
        );
    }
    Ok(())
}

impl Contender {
    fn new(peer: Peer) -> Contender {
        Contender {
            peer,
            times: Vec::new(),
            peak_rss_kib: Vec::new(),
        }
    }
}

/// Runs a command under /usr/bin/time: (wall time, peak RSS in KiB).
fn run_timed(command: &mut Command, peer: Peer, time_file: &Path) -> Result<(Duration, i64)> {
    let started = Instant::now();
    let status = command.status()?;
    let elapsed = started.elapsed();
    ensure!(status.success(), "{} failed", peer.name());
    Ok((elapsed, peak_rss(time_file)?))
}

/// The peak RSS /usr/bin/time wrote: its last line (a line before it says
/// when the process was killed by a signal).
fn peak_rss(time_file: &Path) -> Result<i64> {
    let text = std::fs::read_to_string(time_file)?;
    let last = text.lines().last().unwrap_or_default();
    last.trim()
        .parse()
        .with_context(|| format!("/usr/bin/time wrote {text:?}"))
}

/// Starts a containerd of its own under `root` (not timed), times `ctr
/// images import`, stops the daemon and returns its peak RSS.
fn containerd_import(root: &Path, archive: &Path, time_file: &Path) -> Result<(Duration, i64)> {
    std::fs::create_dir_all(root)?;
    let socket = root.join("containerd.sock");
    let config = root.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "version = 2\nroot = \"{root}/root\"\nstate = \"{root}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{socket}\"\n",
            root = root.display(),
            socket = socket.display()
        ),
    )?;
    let mut daemon = timed(time_file)
        .arg("containerd")
        .arg("--config")
        .arg(&config)
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        ensure!(Instant::now() < deadline, "containerd did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    let status = Command::new("ctr")
        .arg("-a")
        .arg(&socket)
        .args(["-n", "keel-bench", "images", "import"])
        .arg(archive)
        .stdout(Stdio::null())
        .status()?;
    let elapsed = started.elapsed();
    // containerd is /usr/bin/time's child: stopped by its own pid (the
    // socket's peer), it exits and time reports its peak.
    let peer = std::os::unix::net::UnixStream::connect(&socket)?;
    let pid = rustix::net::sockopt::socket_peercred(&peer)?.pid;
    rustix::process::kill_process(pid, rustix::process::Signal::TERM)?;
    // containerd 1.6 sometimes hangs in its shutdown; its peak is known by
    // then, so a KILL after a grace period loses nothing.
    let deadline = Instant::now() + Duration::from_secs(5);
    while daemon.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            daemon.wait()?;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ensure!(status.success(), "ctr images import failed");
    Ok((elapsed, peak_rss(time_file)?))
}

fn timed(out: &Path) -> Command {
    let mut command = Command::new("/usr/bin/time");
    command
        .args(["-f", "%M", "-o"])
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

fn podman_args(root: &Path) -> Vec<String> {
    let dir = |sub: &str| root.join(sub).display().to_string();
    vec![
        "podman".into(),
        "--root".into(),
        dir("root"),
        "--runroot".into(),
        dir("run"),
        "--tmpdir".into(),
        dir("tmp"),
        "--cgroup-manager".into(),
        "cgroupfs".into(),
        "--events-backend".into(),
        "none".into(),
    ]
}

/// Removes a store the benchmark made.
fn remove_store(root: &Path, peer: Peer) -> Result<()> {
    if peer == Peer::Podman {
        let args = podman_args(root);
        Command::new(&args[0])
            .args(&args[1..])
            .args(["system", "reset", "--force"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
    }
    keel_testkit::podman::unmount_below(root);
    match std::fs::remove_dir_all(root) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
        _ => Ok(()),
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.exists())
}

/// Writes the benchmark image; returns the total size of its layers.
pub(crate) fn write_image(path: &Path) -> Result<u64> {
    let base = {
        let dir = tempfile::tempdir()?;
        let tar = dir.path().join("busybox.tar");
        keel_testkit::busybox_rootfs_tar(&tar)?;
        std::fs::read(tar)?
    };
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    // Grouped by directory, as tar writes a walk of a tree.
    let small = layer((0..30_000).map(|i| {
        let len = 1024 + (i * 97) % 3072;
        (
            format!("usr/share/small/{:03}/file-{i}", i / 100),
            random.bytes(len),
        )
    }))?;
    let big = layer((0..3).map(|i| {
        // Half noise, half zeros: compressible like real binaries.
        let mut content = random.bytes(15 << 20);
        content.resize(30 << 20, 0);
        (format!("opt/big/blob-{i}.bin"), content)
    }))?;
    let medium = layer((0..5_000).map(|i| {
        (
            format!("var/lib/medium/{:02}/item-{i}", i / 100),
            random.bytes(8192),
        )
    }))?;
    let layers = [base, small, big, medium];
    let diff_ids: Vec<String> = layers.iter().map(|l| Digest::of(l).to_string()).collect();
    let config = format!(
        r#"{{"architecture":"{}","os":"linux","created":"2026-01-01T00:00:00Z","config":{{"Cmd":["sh"]}},"rootfs":{{"type":"layers","diff_ids":{}}}}}"#,
        keel_image::go_arch(),
        serde_json_list(&diff_ids)
    );
    let config_name = format!("{}.json", Digest::of(config.as_bytes()).hex());
    let mut archive = tar::Builder::new(std::io::BufWriter::new(std::fs::File::create(path)?));
    append(&mut archive, &config_name, config.as_bytes())?;
    let mut names = Vec::new();
    for (layer, diff_id) in layers.iter().zip(&diff_ids) {
        let name = format!("{}/layer.tar", &diff_id["sha256:".len()..]);
        append(&mut archive, &name, layer)?;
        names.push(name);
    }
    let manifest = format!(
        r#"[{{"Config":"{config_name}","RepoTags":["keel-bench/load:latest"],"Layers":{}}}]"#,
        serde_json_list(&names)
    );
    append(&mut archive, "manifest.json", manifest.as_bytes())?;
    archive.into_inner()?.flush()?;
    Ok(layers.iter().map(|l| l.len() as u64).sum())
}

fn serde_json_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(",")
    )
}

fn layer(files: impl Iterator<Item = (String, Vec<u8>)>) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for (name, content) in files {
        let mut parent = Path::new(&name).parent();
        let mut missing = Vec::new();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            if dirs.insert(dir.to_owned()) {
                missing.push(dir.to_owned());
            }
            parent = dir.parent();
        }
        for dir in missing.iter().rev() {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(1_700_000_000);
            header.set_size(0);
            tar.append_data(&mut header, dir, std::io::empty())?;
        }
        append(&mut tar, &name, &content)?;
    }
    Ok(tar.into_inner()?)
}

fn append(tar: &mut tar::Builder<impl Write>, name: &str, content: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(content.len() as u64);
    header.set_mtime(1_700_000_000);
    tar.append_data(&mut header, name, content)?;
    Ok(())
}

/// Cheap deterministic noise, so files are neither empty nor alike.
struct XorShift(u64);

impl XorShift {
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            out.extend_from_slice(&self.0.to_le_bytes());
        }
        out.truncate(len);
        out
    }
}
