//! Hostile and broken layers are refused with an error naming the entry
//! or the cause, and leave nothing in the store.

mod common;

use common::{
    ArchiveImage, LayerTar, TestStore, archive_of, config, docker_archive, gzip, gzip_bomb,
};
use keel_image::{Cancel, Error};

/// Loads `archive` into an empty store, expects it refused, and checks that
/// nothing of it stayed. Returns the error's message.
fn refused(archive: &[u8]) -> String {
    refused_in(&TestStore::new(), archive)
}

/// [`refused`] by the store of `test`.
fn refused_in(test: &TestStore, archive: &[u8]) -> String {
    let error = test
        .store
        .load(archive, "hostile.tar", &Cancel::default())
        .unwrap_err();
    test.assert_empty();
    assert!(test.store.images().unwrap().is_empty());
    error.to_string()
}

fn refused_layer(layer: &[u8]) -> (String, Vec<String>) {
    let message = refused(&archive_of(&[layer], &["keel-test/hostile"]));
    let victims = ["/tmp/keel-escaped", "/keel-escaped"]
        .iter()
        .filter(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
        .collect();
    (message, victims)
}

#[test]
fn an_entry_climbing_out_with_dot_dot_is_refused() {
    let layer = LayerTar::new()
        .file("ok", b"1")
        .file("a/../../keel-escaped", b"x")
        .finish();
    let (message, victims) = refused_layer(&layer);
    assert!(
        message.contains("\"a/../../keel-escaped\" climbs out of the layer"),
        "{message}"
    );
    assert!(victims.is_empty());
}

#[test]
fn absolute_entries_land_inside_the_layer_and_never_on_the_host() {
    // As Docker's untar: the path is taken from the layer's root, where
    // ".." goes nowhere.
    let test = TestStore::new();
    let layer = LayerTar::new()
        .file("/tmp/keel-escaped", b"x")
        .file("/../../keel-escaped", b"y")
        .finish();
    test.load(&archive_of(&[&layer], &["keel-test/absolute"]));
    let layers = test.entries("layers");
    assert_eq!(layers.len(), 1, "{layers:?}");
    let diff = test.root().join("layers").join(&layers[0]).join("diff");
    assert_eq!(std::fs::read(diff.join("tmp/keel-escaped")).unwrap(), b"x");
    assert_eq!(std::fs::read(diff.join("keel-escaped")).unwrap(), b"y");
    for victim in ["/tmp/keel-escaped", "/keel-escaped"] {
        assert!(!std::path::Path::new(victim).exists(), "{victim}");
    }
}

#[test]
fn an_entry_through_a_symlink_is_refused() {
    let layer = LayerTar::new()
        .symlink("escape", "/tmp")
        .file("escape/keel-escaped", b"x")
        .finish();
    let (message, victims) = refused_layer(&layer);
    assert!(
        message.contains("\"escape/keel-escaped\" passes through a symbolic link"),
        "{message}"
    );
    assert!(victims.is_empty(), "{victims:?}");
}

#[test]
fn a_hardlink_to_outside_the_layer_is_refused() {
    for target in ["../../../../etc/passwd", "/etc/passwd"] {
        let layer = LayerTar::new().hardlink("passwd", target).finish();
        let message = refused(&archive_of(&[&layer], &["keel-test/hostile"]));
        assert!(message.contains("\"passwd\""), "{message}");
        assert!(
            message.contains("climbs out") || message.contains("not in this layer"),
            "{message}"
        );
    }
    let through_symlink = LayerTar::new()
        .symlink("etc", "/etc")
        .hardlink("passwd", "etc/passwd")
        .finish();
    let message = refused(&archive_of(&[&through_symlink], &["keel-test/hostile"]));
    assert!(
        message.contains("\"passwd\" passes through a symbolic link"),
        "{message}"
    );
}

#[test]
fn a_layer_whose_content_does_not_match_its_diff_id_is_refused() {
    let real = LayerTar::new().file("a", b"real").finish();
    let claimed = LayerTar::new().file("a", b"claimed").finish();
    let archive = docker_archive(&[ArchiveImage {
        blobs: vec![gzip(&real)],
        config: config(&[&claimed], 0),
        tags: &["keel-test/mismatch"],
    }]);
    let message = refused(&archive);
    assert!(message.contains("does not match its digest"), "{message}");
}

#[test]
fn a_truncated_gzip_layer_is_refused() {
    let layer = LayerTar::new().file("big", &vec![7u8; 300_000]).finish();
    let compressed = gzip(&layer);
    let archive = docker_archive(&[ArchiveImage {
        blobs: vec![compressed[..compressed.len() / 2].to_vec()],
        config: config(&[&layer], 0),
        tags: &["keel-test/truncated"],
    }]);
    let test = TestStore::new();
    let error = test
        .store
        .load(archive.as_slice(), "truncated.tar", &Cancel::default())
        .unwrap_err();
    test.assert_empty();
    assert!(
        matches!(error, Error::BadLayer { .. } | Error::Unpack { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains(&keel_image::Digest::of(&layer).to_string()),
        "{error}"
    );
}

#[test]
fn a_blob_in_an_oci_layout_that_does_not_match_its_name_is_refused() {
    let mut builder = tar::Builder::new(Vec::new());
    let name = format!("blobs/sha256/{}", "0".repeat(64));
    common::append(&mut builder, &name, b"not what the name says");
    let message = refused(&builder.into_inner().unwrap());
    assert!(message.contains("does not match its digest"), "{message}");
    assert!(message.contains(&name), "{message}");
}

#[test]
fn an_archive_without_a_manifest_is_refused_with_what_was_expected() {
    let mut builder = tar::Builder::new(Vec::new());
    common::append(&mut builder, "random.txt", b"hello");
    let message = refused(&builder.into_inner().unwrap());
    assert!(message.contains("neither manifest.json"), "{message}");
}

#[test]
fn a_symlink_whose_target_linux_cannot_keep_is_refused_naming_the_entry_and_the_limit() {
    let target = "t/".repeat(2500);
    let layer = LayerTar::new()
        .pax("linkpath", target.as_bytes())
        .symlink("long", "placeholder")
        .finish();
    let (message, _) = refused_layer(&layer);
    assert!(
        message
            .contains("entry \"long\" is a symbolic link whose target is longer than 4095 bytes"),
        "{message}"
    );
}

#[test]
fn a_gzip_bomb_stops_at_the_disk_reserve_naming_the_layer_and_leaves_nothing() {
    // 1 GiB of zeros in about a megabyte, onto a disk of 256 MiB that must
    // keep 64 MiB free.
    let bomb = gzip_bomb(1 << 30);
    assert!(bomb.len() < 4 << 20, "the bomb is {} bytes", bomb.len());
    let archive = docker_archive(&[ArchiveImage {
        blobs: vec![bomb.clone()],
        config: config(&[&bomb], 0),
        tags: &["keel-test/bomb"],
    }]);
    let test = TestStore::on_tmpfs(256, keel_image::DiskReserve::Bytes(64 << 20));
    let error = test
        .store
        .load(archive.as_slice(), "bomb.tar", &Cancel::default())
        .unwrap_err();
    let message = error.to_string();
    let layer = format!("layer {}: unpacking stopped", keel_image::Digest::of(&bomb));
    assert!(message.contains(&layer), "{message}");
    assert!(
        message.contains("below the 64.0 MiB Keel keeps free"),
        "{message}"
    );
    test.assert_empty();
    let free = rustix::fs::statvfs(test.root().as_path()).unwrap();
    assert!(
        free.f_bavail * free.f_frsize > 200 << 20,
        "the half-made layer stayed: {} bytes free",
        free.f_bavail * free.f_frsize
    );
}

#[test]
fn a_disk_already_below_the_reserve_takes_no_layer() {
    let test = TestStore::on_tmpfs(64, keel_image::DiskReserve::Default);
    let message = refused_in(
        &test,
        &archive_of(
            &[&LayerTar::new().file("f", b"1").finish()],
            &["keel-test/small"],
        ),
    );
    // The default reserve: 1 GiB, more than this whole disk.
    assert!(
        message.contains("below the 1.0 GiB Keel keeps free"),
        "{message}"
    );
}
