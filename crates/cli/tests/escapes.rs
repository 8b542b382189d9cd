//! Escapes found by probing Keel as an attacker would, each attempted
//! through the daemon: the test is the attack, and fails if it works.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::TestDaemon;
use keel_testkit::escape::{
    CORE_PATTERN, CorePattern, HostUser, MASK_PROBE, SelfExeAttack, attack_result, compile_c,
    file_digest,
};

#[test]
fn a_container_whose_sh_is_proc_self_exe_cannot_write_over_keel_monitor_in_run_or_exec() {
    let daemon = TestDaemon::start_copied();
    let monitor = daemon.program.with_file_name("keel-monitor");
    let before = file_digest(&monitor).unwrap();
    let attack = SelfExeAttack::build();
    let tar = daemon.path("selfexe.tar");
    keel_testkit::busybox_rootfs_tar_with(&tar, |rootfs| attack.plant(rootfs, &[&monitor]))
        .unwrap();
    let image = "keel-test/selfexe";
    daemon.keel_ok(&["import", tar.to_str().unwrap(), image]);

    // The container's init is the monitor's child: its /bin/sh runs the
    // monitor's binary again, as the container's pid 1.
    let at_run = daemon.path("at-run");
    std::fs::create_dir(&at_run).unwrap();
    let volume = format!("{}:/attack", at_run.display());
    daemon.keel_ok(&["run", "-d", "-v", &volume, image, "/bin/sh"]);
    let result = attack_result(&at_run);
    assert!(
        result.starts_with("refused "),
        "the attack at run: {result}"
    );

    // An exec's process is a monitor's child too.
    let at_exec = daemon.path("at-exec");
    std::fs::create_dir(&at_exec).unwrap();
    let volume = format!("{}:/attack", at_exec.display());
    daemon.keel_ok(&[
        "run", "-d", "--name", "victim", "-v", &volume, image, "sleep", "100",
    ]);
    daemon.keel(&["exec", "victim", "/bin/sh"]);
    let result = attack_result(&at_exec);
    assert!(
        result.starts_with("refused "),
        "the attack at exec: {result}"
    );
    assert_eq!(
        file_digest(&monitor).unwrap(),
        before,
        "keel-monitor was written"
    );
}

#[test]
fn a_volume_at_dev_cannot_make_the_masks_of_proc_bind_host_files() {
    let daemon = TestDaemon::with_busybox();
    let original = CorePattern::save();
    daemon.keel_ok(&["volume", "create", "fake-dev"]);
    // The masks bind /dev/null over /proc/keys, /proc/timer_list...: a
    // /dev/null that is a symlink to a host file must not be what is bound.
    daemon.keel_ok(&[
        "run",
        "--rm",
        "-v",
        "fake-dev:/x",
        common::BUSYBOX,
        "ln",
        "-s",
        CORE_PATTERN,
        "/x/null",
    ]);
    let probe = daemon.keel(&[
        "run",
        "--rm",
        "-v",
        "fake-dev:/dev",
        common::BUSYBOX,
        "sh",
        "-c",
        MASK_PROBE,
    ]);
    original.assert_masks_held(&probe);
}

/// Prints its real and effective uid: run from a setuid-root file, it
/// shows whether a host user gained root.
const WHOAMI: &str = r#"
#include <stdio.h>
#include <unistd.h>
int main(void) { printf("uid=%d euid=%d\n", getuid(), geteuid()); return 0; }
"#;

#[test]
fn a_host_user_reaches_nothing_under_the_keel_root_nor_the_socket() {
    let daemon = TestDaemon::start();
    // Only Keel's own modes may stand between the user and its files.
    std::fs::set_permissions(daemon.path(""), std::fs::Permissions::from_mode(0o755)).unwrap();
    let tar = daemon.path("setuid.tar");
    keel_testkit::busybox_rootfs_tar_with(&tar, |rootfs| {
        let whoami = rootfs.join("bin/whoami-setuid");
        compile_c(WHOAMI, &whoami, &["-static"]);
        std::fs::set_permissions(&whoami, std::fs::Permissions::from_mode(0o4755)).unwrap();
    })
    .unwrap();
    daemon.keel_ok(&["import", tar.to_str().unwrap(), "keel-test/setuid"]);
    let id = daemon.keel_ok(&["run", "-d", "keel-test/setuid", "echo", "a line of log"]);
    daemon.keel_ok(&["wait", id.trim()]);
    let root = daemon.root();
    let found = |name: &str| {
        let out = common::output(Command::new("find").arg(&root).args(["-name", name]));
        out.1
            .lines()
            .next()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no {name} in {out:?}"))
    };
    let setuid = found("whoami-setuid");
    let log = found("container-json.log");

    let user = HostUser::add();
    let (code, out, err) = user.run(Path::new(&setuid), &[]);
    assert!(
        code != 0 && err.contains("Permission denied"),
        "{setuid}: {code} {out} {err}"
    );
    let (code, out, err) = user.run(Path::new("/bin/cat"), &[&log]);
    assert!(
        code != 0 && err.contains("Permission denied"),
        "{log}: {code} {out} {err}"
    );
    let (code, out, err) = user.run(Path::new("/bin/ls"), &[root.to_str().unwrap()]);
    assert!(
        code != 0 && err.contains("Permission denied"),
        "ls: {code} {out} {err}"
    );
    let socket = format!("unix://{}", daemon.socket().display());
    let (code, out, err) = user.run(Path::new(common::DOCKER), &["-H", &socket, "version"]);
    assert!(
        code != 0 && err.contains("permission denied"),
        "docker: {code} {out} {err}"
    );
    assert_eq!(
        std::fs::metadata(&root).unwrap().permissions().mode() & 0o7777,
        0o710,
        "the Keel root's mode, as /var/lib/docker's"
    );
}

/// The image store's entries under `sub` (`layers`, `blobs/sha256`...).
fn store_entries(daemon: &TestDaemon, sub: &str) -> Vec<String> {
    std::fs::read_dir(daemon.root().join("image").join(sub))
        .map(|dir| {
            dir.flatten()
                .map(|e| format!("{sub}/{}", e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default()
}

/// Sends the raw HTTP `request` (head and body) to the daemon, waits until
/// a layer is being unpacked, leaves, and fails the test unless the store
/// holds no layer, blob or image a second later.
fn leaving_mid_unpack_leaves_nothing(daemon: &TestDaemon, request: &[u8]) {
    use std::io::Write;
    let mut client = std::os::unix::net::UnixStream::connect(daemon.socket()).unwrap();
    client.write_all(request).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store_entries(daemon, "layers").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the unpack never began"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    drop(client);
    let gone = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let left: Vec<String> = ["layers", "blobs/sha256", "images", "ingest"]
            .iter()
            .flat_map(|sub| store_entries(daemon, sub))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < gone,
            "a second after the client went away, the store held {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(daemon.keel_ok(&["images", "-q"]).trim().is_empty());
}

/// 10 GiB of zeros in about 10 MB, and an image config naming it.
fn bomb_and_config() -> (Vec<u8>, Vec<u8>) {
    let bomb = keel_testkit::archive::gzip_bomb(10 << 30);
    let config = keel_testkit::archive::config(&[&bomb], 0);
    (bomb, config)
}

#[test]
fn a_gzip_bomb_load_whose_client_goes_away_stops_and_leaves_no_layer_blob_or_image() {
    let daemon = TestDaemon::start();
    let (bomb, config) = bomb_and_config();
    let archive = keel_testkit::archive::docker_archive(&[keel_testkit::archive::ArchiveImage {
        blobs: vec![bomb],
        config,
        tags: &["keel-test/bomb"],
    }]);
    let mut request = format!(
        "POST /v1.43/images/load HTTP/1.1\r\nHost: keel\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        archive.len()
    )
    .into_bytes();
    request.extend(archive);
    leaving_mid_unpack_leaves_nothing(&daemon, &request);
}

#[test]
fn a_gzip_bomb_pull_whose_client_goes_away_stops_and_leaves_no_layer_blob_or_image() {
    let registry = keel_testkit::registry::Registry::start();
    let daemon = TestDaemon::start();
    let (bomb, config) = bomb_and_config();
    let client = keel_registry::Registry::connect(&registry.address, None, &[]).unwrap();
    let descriptor = |bytes: &[u8], media_type: &str| keel_registry::Descriptor {
        media_type: media_type.to_owned(),
        digest: keel_image::Digest::of(bytes),
        size: bytes.len() as u64,
        platform: None,
    };
    for blob in [&bomb, &config] {
        let digest = keel_image::Digest::of(blob);
        client
            .upload_blob(
                "bomb/app",
                &digest,
                blob.len() as u64,
                &mut &blob[..],
                keel_registry::UPLOAD_CHUNK,
            )
            .unwrap();
    }
    let manifest = keel_registry::ImageManifest::new(
        descriptor(&config, keel_registry::DOCKER_CONFIG),
        vec![descriptor(
            &bomb,
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        )],
    );
    client
        .put_manifest(
            "bomb/app",
            "v1",
            keel_registry::DOCKER_MANIFEST,
            &manifest.to_json(),
        )
        .unwrap();
    let request = format!(
        "POST /v1.43/images/create?fromImage={}/bomb/app&tag=v1 HTTP/1.1\r\nHost: keel\r\nContent-Length: 0\r\n\r\n",
        registry.address
    );
    leaving_mid_unpack_leaves_nothing(&daemon, request.as_bytes());
}

#[test]
fn a_passwd_linked_to_a_host_file_names_no_user_of_the_host() {
    let daemon = TestDaemon::with_busybox();
    // A file of the host the image's /etc/passwd points at.
    let host_file = daemon.path("host-passwd");
    std::fs::write(&host_file, "hostuser:x:4242:4242::/:/bin/sh\n").unwrap();
    let context = daemon.path("passwd-link");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        format!(
            "FROM {}\nRUN mkdir -p /etc && ln -sf {} /etc/passwd\n",
            common::BUSYBOX,
            host_file.display()
        ),
    )
    .unwrap();
    daemon.keel_ok(&[
        "build",
        "-t",
        "keel-test/passwd-link",
        context.to_str().unwrap(),
    ]);
    let (code, out, err) = daemon.keel(&[
        "run",
        "--rm",
        "--user",
        "hostuser",
        "keel-test/passwd-link",
        "id",
        "-u",
    ]);
    assert_ne!(code, 0, "the host's user was found: {out}");
    assert!(
        err.contains("unable to find user hostuser: no matching entries in passwd file"),
        "{err}"
    );
}
