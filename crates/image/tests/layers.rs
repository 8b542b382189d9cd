//! Layers on disk, shared between images, and containers' snapshots over
//! them, on the real kernel's overlayfs.

mod common;

use std::fs;

use common::{LayerTar, TestStore, archive_of, busybox_layer, run_in, tree_digest};
use keel_image::{Digest, Removal};

fn du_bytes(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("du")
        .args(["-s", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn two_images_sharing_a_base_layer_store_it_once_and_survive_each_others_removal() {
    let test = TestStore::new();
    let base = busybox_layer();
    let top_a = LayerTar::new().file("a.txt", b"image a\n").finish();
    let top_b = LayerTar::new().file("b.txt", b"image b\n").finish();
    test.load(&archive_of(&[&base, &top_a], &["keel-test/a:1"]));
    let one_image = du_bytes(&test.root().join("layers"));
    test.load(&archive_of(&[&base, &top_b], &["keel-test/b:1"]));
    let two_images = du_bytes(&test.root().join("layers"));

    // Three layer directories: the base once, and each image's own top.
    assert_eq!(
        test.entries("layers").len(),
        3,
        "{:?}",
        test.entries("layers")
    );
    let base_size = du_bytes(&test.store.layers().diff_dir(&Digest::of(&base)));
    assert!(base_size > 500_000, "the busybox layer holds the binary");
    assert!(
        two_images - one_image < base_size / 10,
        "the second image added {} bytes, the base is {base_size}",
        two_images - one_image
    );

    let usage = test.store.disk_usage().unwrap();
    let base_bytes = test
        .store
        .layers()
        .get(&Digest::of(&base))
        .unwrap()
        .unwrap()
        .size;
    assert_eq!(
        usage.layers_size,
        base_bytes + 16,
        "the base once, and 8 bytes per top"
    );
    for image in &usage.images {
        assert_eq!(image.shared_size, base_bytes);
        assert_eq!(image.image.size, base_bytes + 8);
    }

    let removed = test
        .store
        .remove_image("keel-test/a:1", false, |_| false)
        .unwrap();
    assert_eq!(removed[0], Removal::Untagged("keel-test/a:1".into()));
    assert_eq!(
        removed.len(),
        3,
        "untag, delete image, delete its top layer: {removed:?}"
    );
    assert_eq!(test.entries("layers").len(), 2);

    let snapshot = test
        .store
        .create_snapshot("runs-b", "keel-test/b:1", true)
        .unwrap();
    let root = test.store.mount_snapshot(&snapshot).unwrap();
    assert_eq!(
        run_in(&root, "cat /b.txt; test -e /a.txt || echo no-a"),
        "image b\nno-a\n"
    );
}

#[test]
fn a_containers_writes_land_in_its_upper_layer_only() {
    let test = TestStore::new();
    let base = busybox_layer();
    let loaded = test.load(&archive_of(&[&base], &["keel-test/writes"]));
    let layer_dir = test.store.layers().diff_dir(&Digest::of(&base));
    let before = tree_digest(&layer_dir);

    let first = test
        .store
        .create_snapshot("first", "keel-test/writes", true)
        .unwrap();
    let root = test.store.mount_snapshot(&first).unwrap();
    run_in(
        &root,
        "echo written > /etc/new-file && rm /bin/vi && echo changed >> /etc/passwd",
    );
    assert_eq!(
        fs::read_to_string(first.upper().join("etc/new-file")).unwrap(),
        "written\n"
    );
    assert_eq!(tree_digest(&layer_dir), before, "the image's layer changed");

    let second = test
        .store
        .create_snapshot("second", &loaded[0].id.to_string(), true)
        .unwrap();
    let other_root = test.store.mount_snapshot(&second).unwrap();
    assert_eq!(
        run_in(
            &other_root,
            "test -e /etc/new-file || echo clean; test -e /bin/vi && echo vi"
        ),
        "clean\nvi\n"
    );

    let mut exported = Vec::new();
    test.store.export("first", &mut exported).unwrap();
    let mut names = Vec::new();
    for entry in tar::Archive::new(exported.as_slice()).entries().unwrap() {
        let path = entry.unwrap().path().unwrap().display().to_string();
        names.push(path.trim_start_matches("./").to_owned());
    }
    assert!(
        names.iter().any(|n| n == "etc/new-file"),
        "export lacks the new file"
    );
    assert!(
        !names.iter().any(|n| n == "bin/vi"),
        "export shows a deleted file"
    );

    test.store.remove_snapshot("first").unwrap();
    assert!(!first.dir.exists());
    assert_eq!(tree_digest(&layer_dir), before);
    assert_eq!(test.entries("snapshots"), vec!["second".to_owned()]);
}

#[test]
fn whiteouts_delete_files_and_opaque_directories_replace_the_lower_ones() {
    let test = TestStore::new();
    let base = busybox_layer();
    let middle = LayerTar::new()
        .dir("data")
        .file("data/old-1", b"1")
        .file("data/old-2", b"2")
        .file("gone.txt", b"gone")
        .dir("kept")
        .file("kept/a", b"a")
        .finish();
    let top = LayerTar::new()
        .file(".wh.gone.txt", b"")
        .dir("data")
        .file("data/.wh..wh..opq", b"")
        .file("data/new", b"new")
        .file("kept/.wh.a", b"")
        .file("kept/b", b"b")
        .finish();
    test.load(&archive_of(
        &[&base, &middle, &top],
        &["keel-test/whiteouts"],
    ));
    let snapshot = test
        .store
        .create_snapshot("w", "keel-test/whiteouts", true)
        .unwrap();
    let root = test.store.mount_snapshot(&snapshot).unwrap();
    assert_eq!(
        run_in(
            &root,
            "ls -A /data; ls -A /kept; test -e /gone.txt || echo no-gone"
        ),
        "new\nb\nno-gone\n"
    );
}

#[test]
fn an_opaque_marker_alone_implies_its_directory_as_docker_unpacks_it() {
    let test = TestStore::new();
    let base = busybox_layer();
    let lower = LayerTar::new().dir("data").file("data/old", b"1").finish();
    // No "data/" entry before the marker, nor "fresh/" anywhere below.
    let top = LayerTar::new()
        .file("data/.wh..wh..opq", b"")
        .file("fresh/.wh..wh..opq", b"")
        .finish();
    test.load(&archive_of(&[&base, &lower, &top], &["keel-test/implied"]));
    let snapshot = test
        .store
        .create_snapshot("i", "keel-test/implied", true)
        .unwrap();
    let root = test.store.mount_snapshot(&snapshot).unwrap();
    assert_eq!(run_in(&root, "ls -A /data; ls -Ad /fresh"), "/fresh\n");
}

#[test]
fn a_stack_too_tall_for_one_mount_option_string_still_mounts() {
    let test = TestStore::new();
    let base = busybox_layer();
    let tops: Vec<Vec<u8>> = (0..120)
        .map(|i| {
            LayerTar::new()
                .file(&format!("layer-{i:03}"), format!("{i}").as_bytes())
                .finish()
        })
        .collect();
    let mut layers: Vec<&[u8]> = vec![&base];
    layers.extend(tops.iter().map(Vec::as_slice));
    test.load(&archive_of(&layers, &["keel-test/tall"]));
    let snapshot = test
        .store
        .create_snapshot("tall", "keel-test/tall", true)
        .unwrap();
    let lower_option_length: usize = snapshot
        .layers
        .iter()
        .map(|c| test.store.layers().diff_dir(c).as_os_str().len() + 1)
        .sum();
    assert!(
        lower_option_length > 4096,
        "the stack must exceed one page of options"
    );
    let root = test.store.mount_snapshot(&snapshot).unwrap();
    assert_eq!(run_in(&root, "ls / | grep -c layer-"), "120\n");
    assert_eq!(run_in(&root, "cat /layer-119"), "119");
}

#[test]
fn unpacking_keeps_owners_modes_times_links_devices_and_xattrs() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use tar::EntryType;
    let test = TestStore::new();
    let layer = LayerTar::new()
        .entry(EntryType::Directory, "private", None, b"", |h| {
            h.set_mode(0o700);
            h.set_uid(1);
            h.set_gid(2);
            h.set_mtime(1_600_000_000);
        })
        .entry(
            EntryType::Regular,
            "private/setuid",
            None,
            b"#!/bin/sh\n",
            |h| {
                h.set_mode(0o4755);
                h.set_uid(1000);
                h.set_gid(1000);
                h.set_mtime(1_500_000_000);
            },
        )
        .entry(EntryType::Regular, "writable", None, b"w", |h| {
            h.set_mode(0o666)
        })
        .hardlink("private/again", "private/setuid")
        .entry(
            EntryType::Symlink,
            "link",
            Some("private/setuid"),
            b"",
            |h| {
                h.set_uid(3);
                h.set_gid(4);
            },
        )
        .entry(EntryType::Char, "null", None, b"", |h| {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
            h.set_mode(0o666);
        })
        .raw(EntryType::Fifo, "pipe", None, b"")
        .xattr("user.keel", b"kept")
        .file("tagged", b"t")
        .finish();
    test.load(&archive_of(&[&layer], &["keel-test/metadata"]));
    let diff = test.store.layers().diff_dir(&Digest::of(&layer));
    let meta = |name: &str| fs::symlink_metadata(diff.join(name)).unwrap();

    let private = meta("private");
    assert_eq!(
        (private.mode() & 0o7777, private.uid(), private.gid()),
        (0o700, 1, 2)
    );
    assert_eq!(
        private.mtime(),
        1_600_000_000,
        "a directory's mtime survives its children"
    );
    let setuid = meta("private/setuid");
    assert_eq!(
        (setuid.mode() & 0o7777, setuid.uid(), setuid.gid()),
        (0o4755, 1000, 1000)
    );
    assert_eq!(setuid.mtime(), 1_500_000_000);
    assert_eq!(
        meta("writable").mode() & 0o777,
        0o666,
        "the umask does not apply"
    );
    assert_eq!(
        meta("private/again").ino(),
        setuid.ino(),
        "a hard link, not a copy"
    );
    let link = meta("link");
    assert!(link.file_type().is_symlink());
    assert_eq!((link.uid(), link.gid()), (3, 4));
    let null = meta("null");
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert!(meta("pipe").file_type().is_fifo());
    let value = rustix::fs::getxattr(diff.join("tagged"), "user.keel", &mut [0u8; 16]).unwrap();
    assert_eq!(value, 4);
}
