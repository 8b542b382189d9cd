//! A root written by an earlier Keel opens with this one: its records
//! (unversioned before 2026-12-03) are read, used and written again in the
//! current version.

mod common;

use std::path::Path;

use common::TestDaemon;

/// A root made by Keel as of 2026-12-03, before records had versions: an
/// imported image `keel-fixture/tiny:1`, a network `fixnet`
/// (10.215.0.0/24), a volume `fixvol` and a container `fixed` created from
/// the image on both, each labelled `made=2026-12-03`.
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/root-2026-12-03.tar"
);
/// Where that root was: its records name their paths.
const FIXTURE_ROOT: &str = "/tmp/fx/root";

/// Unpacks the fixture at `root`, its paths moved there, as a root that
/// stays where it was across an upgrade.
fn unpack_fixture(root: &Path) {
    let file = std::fs::File::open(FIXTURE).unwrap();
    tar::Archive::new(file).unpack(root).unwrap();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).unwrap();
                let moved = text.replace(FIXTURE_ROOT, root.to_str().unwrap());
                std::fs::write(&path, moved).unwrap();
            }
        }
    }
}

#[test]
fn a_root_written_before_records_had_versions_opens_and_its_objects_are_whole() {
    let daemon = TestDaemon::start_on(unpack_fixture);
    let record = |path: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(daemon.root().join(path)).unwrap()).unwrap()
    };
    assert_eq!(
        daemon.keel_ok(&["ps", "-a", "--format", "{{.Names}} {{.Image}} {{.Status}}"]),
        "fixed keel-fixture/tiny:1 Created\n"
    );
    assert_eq!(
        daemon.keel_ok(&["inspect", "--format", "{{.Config.Labels.made}}", "fixed"]),
        "2026-12-03\n"
    );
    assert_eq!(
        daemon.keel_ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}"]),
        "keel-fixture/tiny:1 32B\n"
    );
    assert_eq!(
        daemon.keel_ok(&[
            "volume",
            "inspect",
            "--format",
            "{{.Labels.made}}",
            "fixvol"
        ]),
        "2026-12-03\n"
    );
    // The docker CLI reads them too.
    let (code, out, err) = daemon.docker(&[
        "network",
        "inspect",
        "--format",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}} {{.Labels.made}}",
        "fixnet",
    ]);
    assert_eq!(
        (code, out.as_str()),
        (0, "10.215.0.0/24 2026-12-03\n"),
        "{err}"
    );
    // A change writes the record again, in the current version.
    daemon.keel_ok(&["rename", "fixed", "renamed"]);
    let id = daemon.keel_ok(&["inspect", "--format", "{{.Id}}", "renamed"]);
    let container = record(&format!("containers/{}/container.json", id.trim()));
    assert_eq!(
        (container["version"].as_u64(), container["name"].as_str()),
        (Some(1), Some("renamed"))
    );
    daemon.keel_ok(&["tag", "keel-fixture/tiny:1", "keel-fixture/tiny:2"]);
    assert_eq!(record("image/refs.json")["version"], 1);
    // And everything of it can go, as anything this Keel made.
    daemon.keel_ok(&["rm", "renamed"]);
    daemon.keel_ok(&["rmi", "keel-fixture/tiny:1", "keel-fixture/tiny:2"]);
    daemon.keel_ok(&["volume", "rm", "fixvol"]);
    daemon.keel_ok(&["network", "rm", "fixnet"]);
    assert_eq!(daemon.keel_ok(&["ps", "-aq"]), "");
    assert_eq!(daemon.keel_ok(&["images", "-q"]), "");
}

#[test]
fn a_record_from_a_newer_keel_is_refused_by_name_not_misread() {
    let root = tempfile::tempdir().unwrap();
    unpack_fixture(root.path());
    let networks = root.path().join("networks");
    let network = std::fs::read_dir(&networks)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&network).unwrap()).unwrap();
    record["version"] = 99.into();
    std::fs::write(&network, record.to_string()).unwrap();
    let mut daemon =
        std::process::Command::new(Path::new(common::KEEL).with_file_name("keel-daemon"))
            .arg("--root")
            .arg(root.path())
            .arg("-H")
            .arg(format!(
                "unix://{}",
                root.path().join("keel.sock").display()
            ))
            .args(["--bridge", "ktup0", "--bip", "10.216.0.1/24"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while daemon.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = daemon.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let finished = daemon.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&finished.stderr);
    assert!(
        !finished.status.success(),
        "the daemon refuses the root: {err}"
    );
    assert!(
        err.contains(&format!("cannot read {}", network.display()))
            && err.contains("written by a newer Keel (record version 99; this one reads up to 1)"),
        "{err}"
    );
}
