//! Round trips with Podman (Debian's package): what `podman save` writes,
//! Keel loads and runs; what Keel saves, Podman loads and runs. Podman
//! runs containers with runc here (crun refuses this machine's hybrid
//! cgroup layout).

mod common;

use std::path::Path;

use common::{LayerTar, TestStore, archive_of, busybox_layer, run_in};
use keel_image::Reference;
use keel_testkit::podman::{Podman, output};

fn podman() -> Podman {
    Podman::with_busybox(Some(Path::new("/usr/sbin/runc")))
}

/// Loads what `podman save --format FORMAT` wrote and runs busybox from it.
fn load_podman_save(format: &str) {
    let podman = podman();
    let archive = podman.dir().join("saved.tar");
    let (code, _, err) = output(
        podman
            .command()
            .args(["save", "--format", format, "-o"])
            .arg(&archive)
            .arg("keel-busybox"),
    );
    assert_eq!(code, 0, "podman save: {err}");

    let test = TestStore::new();
    let loaded = test
        .store
        .load(
            std::fs::File::open(&archive).unwrap(),
            "saved.tar",
            &keel_image::Cancel::default(),
        )
        .unwrap();
    assert_eq!(loaded.len(), 1, "{loaded:?}");
    assert_eq!(
        loaded[0].reference,
        Some(Reference::parse("localhost/keel-busybox:latest").unwrap())
    );
    // What Podman calls the image's id is its config digest, as here.
    let (_, podman_id, _) =
        output(
            podman
                .command()
                .args(["image", "inspect", "--format", "{{.Id}}", "keel-busybox"]),
        );
    assert_eq!(loaded[0].id.hex(), podman_id.trim());
    // Podman's archive carries files that are not blobs; none are kept.
    assert_eq!(
        test.entries("blobs/sha256").len(),
        2,
        "{:?}",
        test.entries("blobs/sha256")
    );

    let snapshot = test
        .store
        .create_snapshot("from-podman", "localhost/keel-busybox", true)
        .unwrap();
    let root = test.store.mount_snapshot(&snapshot).unwrap();
    assert_eq!(
        run_in(&root, "echo hello from the podman image"),
        "hello from the podman image\n"
    );
}

#[test]
fn a_docker_archive_from_podman_save_loads_and_runs() {
    load_podman_save("docker-archive");
}

#[test]
fn an_oci_archive_from_podman_save_loads_and_runs() {
    load_podman_save("oci-archive");
}

#[test]
fn keel_save_output_loads_and_runs_in_podman() {
    let test = TestStore::new();
    let base = busybox_layer();
    let top = LayerTar::new()
        .file("greeting", b"hello from keel\n")
        .finish();
    test.load(&archive_of(&[&base, &top], &["keel-test/saved:1"]));
    let archive = test.scratch().join("saved.tar");
    test.store
        .save(
            &["keel-test/saved:1".to_owned()],
            std::fs::File::create(&archive).unwrap(),
        )
        .unwrap();

    let podman = podman();
    let (code, out, err) = output(podman.command().arg("load").arg("-i").arg(&archive));
    assert_eq!(code, 0, "podman load: {out}{err}");
    assert!(out.contains("docker.io/keel-test/saved:1"), "{out}");
    let (code, out, err) = podman.run(&["--rm", "docker.io/keel-test/saved:1", "cat", "/greeting"]);
    assert_eq!((code, out.as_str()), (0, "hello from keel\n"), "{err}");
}

/// The same archive without manifest.json: only its OCI image layout.
fn oci_layout_only(archive: &std::path::Path) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    let mut input = tar::Archive::new(std::fs::File::open(archive).unwrap());
    for entry in input.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some("manifest.json") {
            continue;
        }
        let mut header = entry.header().clone();
        let path = entry.path().unwrap().into_owned();
        out.append_data(&mut header, path, &mut entry).unwrap();
    }
    out.into_inner().unwrap()
}

#[test]
fn keel_save_output_is_also_an_oci_layout_that_keel_and_podman_load() {
    let test = TestStore::new();
    let base = busybox_layer();
    let top = LayerTar::new()
        .file("greeting", b"hello from an OCI layout\n")
        .finish();
    test.load(&archive_of(&[&base, &top], &["keel-test/oci:2"]));
    let saved = test.scratch().join("saved.tar");
    test.store
        .save(
            &["keel-test/oci:2".to_owned()],
            std::fs::File::create(&saved).unwrap(),
        )
        .unwrap();
    let oci = test.scratch().join("oci.tar");
    std::fs::write(&oci, oci_layout_only(&saved)).unwrap();

    let other = TestStore::new();
    let loaded = other
        .store
        .load(
            std::fs::File::open(&oci).unwrap(),
            "oci.tar",
            &keel_image::Cancel::default(),
        )
        .unwrap();
    assert_eq!(
        loaded[0].reference,
        Some(Reference::parse("keel-test/oci:2").unwrap())
    );
    let snapshot = other
        .store
        .create_snapshot("oci", "keel-test/oci:2", true)
        .unwrap();
    let root = other.store.mount_snapshot(&snapshot).unwrap();
    assert_eq!(run_in(&root, "cat /greeting"), "hello from an OCI layout\n");

    let podman = podman();
    let (code, out, err) = output(podman.command().arg("load").arg("-i").arg(&oci));
    assert_eq!(code, 0, "podman load: {out}{err}");
    let (code, out, err) = podman.run(&["--rm", "docker.io/keel-test/oci:2", "cat", "/greeting"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "hello from an OCI layout\n"),
        "{err}"
    );
}
