//! A load killed with SIGKILL at any moment leaves a store that opens,
//! lists, runs and prunes correctly: every image in it is whole.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{LayerTar, TestStore, archive_of, busybox_layer, run_in};
use keel_image::Store;

const CHILD_TEST: &str = "load_in_a_child_process";

/// Run by `a_load_killed_at_any_moment_leaves_a_consistent_store` in a
/// process of its own, to be killed.
#[test]
#[ignore = "a helper: the kill -9 test runs it in a child process"]
fn load_in_a_child_process() {
    let root = std::env::var("KEEL_CRASH_ROOT").expect("KEEL_CRASH_ROOT");
    let archive = std::env::var("KEEL_CRASH_ARCHIVE").expect("KEEL_CRASH_ARCHIVE");
    let store = Store::open(Path::new(&root)).unwrap();
    store
        .load(
            std::fs::File::open(archive).unwrap(),
            "crash.tar",
            &keel_image::Cancel::default(),
        )
        .unwrap();
}

fn load_in_child(root: &Path, archive: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CHILD_TEST, "--ignored", "--nocapture"])
        .env("KEEL_CRASH_ROOT", root)
        .env("KEEL_CRASH_ARCHIVE", archive)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_load_killed_at_any_moment_leaves_a_consistent_store() {
    let test = TestStore::new();
    let base = busybox_layer();
    let tops: Vec<Vec<u8>> = (0..4u8)
        .map(|i| {
            let mut tar = LayerTar::new();
            for file in 0..8u8 {
                let content: Vec<u8> = (0..1_000_000u32).map(|n| (n as u8) ^ file ^ i).collect();
                tar = tar.file(&format!("data-{i}-{file}"), &content);
            }
            tar.finish()
        })
        .collect();
    let mut layers: Vec<&[u8]> = vec![&base];
    layers.extend(tops.iter().map(Vec::as_slice));
    let archive = test.scratch().join("crash.tar");
    std::fs::write(&archive, archive_of(&layers, &["keel-test/crash"])).unwrap();
    let root = test.scratch().join("crash-root");

    // How long a whole load takes, to spread the kills over it.
    let started = Instant::now();
    assert!(load_in_child(&root, &archive).wait().unwrap().success());
    let whole = started.elapsed();
    std::fs::remove_dir_all(&root).unwrap();

    let mut outcomes = (0, 0);
    for step in 0..12u32 {
        let delay = whole * step / 10;
        let mut child = load_in_child(&root, &archive);
        std::thread::sleep(delay.max(Duration::from_millis(1)));
        child.kill().ok();
        child.wait().unwrap();

        let store = Store::open(&root).unwrap();
        let images = store.images().unwrap();
        assert!(images.len() <= 1, "{images:?}");
        if let Some(image) = images.first() {
            outcomes.1 += 1;
            assert_eq!(image.layers.len(), layers.len());
            // Killed between the image record and its tag, the image is
            // whole but untagged (dangling, as in Docker): run it by id.
            let snapshot = store
                .create_snapshot("after-crash", image.id.as_str(), true)
                .unwrap();
            let merged = store.mount_snapshot(&snapshot).unwrap();
            assert_eq!(run_in(&merged, "ls / | grep -c data-"), "32\n");
            store.remove_snapshot("after-crash").unwrap();
        } else {
            outcomes.0 += 1;
        }
        store.prune_images(true, |_| true).unwrap();
        for sub in ["layers", "blobs/sha256", "images", "ingest", "snapshots"] {
            let left: Vec<_> = std::fs::read_dir(root.join(sub))
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            assert!(
                left.is_empty(),
                "after a kill at {delay:?}, {sub} keeps {left:?}"
            );
        }
        drop(store);
    }
    // The first kill lands within a millisecond of the start: some loads
    // were cut short. A whole load into the same root then works.
    assert!(
        outcomes.0 > 0,
        "(killed mid-load, completed) = {outcomes:?}"
    );
    assert!(load_in_child(&root, &archive).wait().unwrap().success());
    let store = Store::open(&root).unwrap();
    let id = store.resolve("keel-test/crash").unwrap();
    assert_eq!(store.image(&id).unwrap().layers.len(), layers.len());
}
