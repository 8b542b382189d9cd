//! Image records and references: tag, rmi (untag versus delete, images in
//! use), prune and garbage collection, import, compressed layers.

mod common;

use std::io::Write;

use common::{
    ArchiveImage, LayerTar, TestStore, archive_of, busybox_layer, config, docker_archive, gzip,
    run_in,
};
use keel_image::{Digest, Error, ImportOptions, Reference, Removal};

fn reference(text: &str) -> Reference {
    Reference::parse(text).unwrap()
}

#[test]
fn images_are_found_by_name_full_id_and_unique_id_prefix() {
    let test = TestStore::new();
    let layer = LayerTar::new().file("f", b"1").finish();
    let loaded = test.load(&archive_of(&[&layer], &["keel-test/find:v1"]));
    let id = loaded[0].id.clone();
    assert_eq!(loaded[0].reference, Some(reference("keel-test/find:v1")));
    for name in [
        "keel-test/find:v1",
        "docker.io/keel-test/find:v1",
        id.as_str(),
        id.hex(),
        &id.hex()[..12],
    ] {
        assert_eq!(test.store.resolve(name).unwrap(), id, "{name}");
    }
    let error = test.store.resolve("keel-test/find").unwrap_err();
    assert_eq!(error.to_string(), "No such image: keel-test/find:latest");
}

#[test]
fn rmi_of_one_of_two_tags_only_untags() {
    let test = TestStore::new();
    let layer = LayerTar::new().file("f", b"1").finish();
    let id = test.load(&archive_of(&[&layer], &["keel-test/tags:a"]))[0]
        .id
        .clone();
    assert_eq!(
        test.store
            .tag("keel-test/tags:a", &reference("keel-test/tags:b"))
            .unwrap(),
        None
    );
    assert_eq!(test.store.image(&id).unwrap().tags.len(), 2);

    let error = test
        .store
        .remove_image(id.short(), false, |_| false)
        .unwrap_err();
    assert!(matches!(error, Error::ImageHasManyTags { .. }), "{error}");

    let removed = test
        .store
        .remove_image("keel-test/tags:a", false, |_| false)
        .unwrap();
    assert_eq!(removed, vec![Removal::Untagged("keel-test/tags:a".into())]);
    assert_eq!(
        test.store.image(&id).unwrap().tags,
        vec![reference("keel-test/tags:b")]
    );

    let removed = test
        .store
        .remove_image(id.short(), false, |_| false)
        .unwrap();
    assert_eq!(removed[0], Removal::Untagged("keel-test/tags:b".into()));
    assert_eq!(removed[1], Removal::Deleted(id));
    test.assert_empty();
}

#[test]
fn an_image_a_container_uses_is_removed_only_when_forced_and_never_while_running() {
    let test = TestStore::new();
    let base = busybox_layer();
    let id = test.load(&archive_of(&[&base], &["keel-test/used"]))[0]
        .id
        .clone();
    let snapshot = test
        .store
        .create_snapshot("user", "keel-test/used", true)
        .unwrap();

    let error = test
        .store
        .remove_image("keel-test/used", false, |_| false)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "conflict: unable to remove repository reference \"keel-test/used\" (must force) - container user is using its referenced image {}",
            id.short()
        )
    );
    let error = test
        .store
        .remove_image(id.short(), false, |_| false)
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("being used by stopped container user"),
        "{error}"
    );
    let error = test
        .store
        .remove_image(id.short(), true, |c| c == "user")
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("(cannot be forced) - image is being used by running container user"),
        "{error}"
    );
    assert!(test.store.image(&id).is_ok());

    let removed = test
        .store
        .remove_image(id.short(), true, |_| false)
        .unwrap();
    assert!(
        removed.contains(&Removal::Deleted(id.clone())),
        "{removed:?}"
    );
    // The container keeps its layers and still runs.
    let root = test.store.mount_snapshot(&snapshot).unwrap();
    assert_eq!(run_in(&root, "echo alive"), "alive\n");
    test.store.remove_snapshot("user").unwrap();
    test.store.collect_garbage().unwrap();
    test.assert_empty();
}

#[test]
fn loading_a_tag_that_exists_moves_it_and_leaves_the_old_image_dangling() {
    let test = TestStore::new();
    let one = LayerTar::new().file("v", b"1").finish();
    let two = LayerTar::new().file("v", b"2").finish();
    let first = test.load(&archive_of(&[&one], &["keel-test/moving"]))[0]
        .id
        .clone();
    let second = test.load(&archive_of(&[&two], &["keel-test/moving"]));
    assert_eq!(second[0].replaced, Some(first.clone()));
    assert!(test.store.image(&first).unwrap().tags.is_empty());

    let pruned = test.store.prune_images(false, |_| true).unwrap();
    assert!(
        pruned.removals.contains(&Removal::Deleted(first.clone())),
        "{:?}",
        pruned.removals
    );
    assert!(pruned.reclaimed > 0);
    assert!(test.store.image(&second[0].id).is_ok());
    assert!(matches!(
        test.store.image(&first),
        Err(Error::NoSuchImage(_))
    ));

    let pruned = test.store.prune_images(true, |_| true).unwrap();
    assert!(
        pruned
            .removals
            .contains(&Removal::Untagged("keel-test/moving:latest".into()))
    );
    test.assert_empty();
}

#[test]
fn gzip_and_zstd_layers_load_and_keep_their_media_types() {
    let test = TestStore::new();
    let base = busybox_layer();
    let top = LayerTar::new().file("etc/motd", b"compressed\n").finish();
    let zstd_top = zstd::encode_all(top.as_slice(), 3).unwrap();
    let archive = docker_archive(&[ArchiveImage {
        blobs: vec![gzip(&base), zstd_top],
        config: config(&[&base, &top], 0),
        tags: &["keel-test/compressed"],
    }]);
    let id = test.load(&archive)[0].id.clone();
    let image = test.store.image(&id).unwrap();
    assert!(
        image.layers[0].media_type.ends_with("tar.gzip"),
        "{:?}",
        image.layers[0]
    );
    assert!(
        image.layers[1].media_type.ends_with("tar+zstd"),
        "{:?}",
        image.layers[1]
    );
    assert_eq!(image.layers[1].diff_id, Digest::of(&top));
    let snapshot = test
        .store
        .create_snapshot("c", "keel-test/compressed", true)
        .unwrap();
    let root = test.store.mount_snapshot(&snapshot).unwrap();
    assert_eq!(run_in(&root, "cat /etc/motd"), "compressed\n");
}

#[test]
fn import_makes_a_one_layer_image_with_the_config_given() {
    let test = TestStore::new();
    let mut tarball = gzip(&busybox_layer());
    tarball.flush().unwrap();
    let config = serde_json::json!({"Cmd": ["echo", "imported"], "Env": ["GREETING=hi"]});
    let options = ImportOptions {
        config: config.as_object().unwrap().clone(),
        message: None,
        source: "-".into(),
        created: "2026-11-28T00:00:00Z".into(),
    };
    let id = test
        .store
        .import(
            tarball.as_slice(),
            &options,
            Some(&reference("keel-test/imported:1")),
            &keel_image::Cancel::default(),
        )
        .unwrap();
    let image = test.store.image(&id).unwrap();
    assert_eq!(image.layers.len(), 1);
    assert_eq!(image.tags, vec![reference("keel-test/imported:1")]);
    let config = image.config.config().clone().unwrap();
    assert_eq!(
        config.cmd().clone().unwrap(),
        vec!["echo".to_owned(), "imported".to_owned()]
    );
    assert_eq!(
        config.env().clone().unwrap(),
        vec!["GREETING=hi".to_owned()]
    );
    let history = image.config.history().clone().unwrap();
    assert_eq!(history[0].comment().as_deref(), Some("Imported from -"));
    let snapshot = test
        .store
        .create_snapshot("i", "keel-test/imported:1", true)
        .unwrap();
    let root = test.store.mount_snapshot(&snapshot).unwrap();
    assert_eq!(run_in(&root, "echo ok"), "ok\n");
}

#[test]
fn import_of_something_that_is_not_a_tarball_is_refused_and_leaves_nothing() {
    let test = TestStore::new();
    let options = ImportOptions {
        source: "notes.txt".into(),
        created: "2026-11-28T00:00:00Z".into(),
        ..ImportOptions::default()
    };
    let garbage = vec![b'x'; 2000];
    let error = test
        .store
        .import(
            garbage.as_slice(),
            &options,
            None,
            &keel_image::Cancel::default(),
        )
        .unwrap_err();
    assert!(
        matches!(error, Error::BadLayer { .. } | Error::Unpack { .. }),
        "{error:?}"
    );
    test.assert_empty();
}

#[test]
fn a_second_process_cannot_open_a_store_in_use() {
    let test = TestStore::new();
    let error = keel_image::Store::open(&test.root()).unwrap_err();
    assert!(
        error.to_string().contains("in use by another process"),
        "{error}"
    );
}

#[test]
fn an_image_unflushed_at_a_machine_restart_goes_at_open_and_one_of_this_boot_stays() {
    let test = TestStore::new();
    let root = test.scratch().join("restarted");
    let store = keel_image::Store::open(&root).unwrap();
    let load = |tag: &str| {
        let layer = LayerTar::new().file(tag, tag.as_bytes()).finish();
        let name = format!("keel-test/pending:{tag}");
        store
            .load(
                &archive_of(&[&layer], &[&name])[..],
                tag,
                &keel_image::Cancel::default(),
            )
            .unwrap()[0]
            .id
            .clone()
    };
    let (lost, kept) = (load("lost"), load("kept"));
    drop(store);
    let pending = wait_for_the_flush(&root);
    // As a restart of the machine would leave them: one marked in an
    // earlier boot, one in this boot.
    let this_boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    std::fs::write(pending.join(lost.hex()), "an earlier boot\n").unwrap();
    std::fs::write(pending.join(kept.hex()), this_boot).unwrap();

    let store = keel_image::Store::open(&root).unwrap();
    let images: Vec<Digest> = store.images().unwrap().into_iter().map(|i| i.id).collect();
    assert_eq!(images, std::slice::from_ref(&kept));
    let error = store.resolve("keel-test/pending:lost").unwrap_err();
    assert_eq!(
        error.to_string(),
        "No such image: keel-test/pending:lost",
        "the lost image's tag goes with it"
    );
    assert_eq!(store.resolve("keel-test/pending:kept").unwrap(), kept);
    let layers = std::fs::read_dir(root.join("layers")).unwrap().count();
    assert_eq!(layers, 1, "the lost image's layer is collected");
    assert_eq!(std::fs::read_dir(&pending).unwrap().count(), 0);
}

/// Waits until the images of the store at `root` are flushed (each is
/// unmarked once flushed, behind its record); returns the markers'
/// directory.
fn wait_for_the_flush(root: &std::path::Path) -> std::path::PathBuf {
    let pending = root.join("pending");
    let started = std::time::Instant::now();
    while std::fs::read_dir(&pending).unwrap().next().is_some() {
        assert!(started.elapsed().as_secs() < 30, "the markers stay");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    pending
}

#[test]
fn a_container_that_must_survive_a_crash_flushes_its_image_first() {
    let test = TestStore::new();
    let layer = LayerTar::new().file("f", b"1").finish();
    let id = test.load(&archive_of(&[&layer], &["keel-test/flush:1"]))[0]
        .id
        .clone();
    // As if its flush had not ended yet.
    let marker = wait_for_the_flush(&test.root()).join(id.hex());
    let this_boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    std::fs::write(&marker, this_boot).unwrap();
    // A `--rm` container's snapshot would not outlive a crash: no wait.
    test.store
        .create_snapshot("volatile", id.as_str(), false)
        .unwrap();
    assert!(marker.exists());
    test.store
        .create_snapshot("durable", id.as_str(), true)
        .unwrap();
    assert!(!marker.exists());
}
