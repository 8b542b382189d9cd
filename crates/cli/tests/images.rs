//! The image commands through the daemon: Keel's own CLI, the real docker
//! CLI and docker-py against Keel's socket.

mod common;

use common::TestDaemon;

fn import_busybox(daemon: &TestDaemon, name: &str) -> String {
    let id = daemon.import_busybox(name);
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    id
}

#[test]
fn keel_image_commands_tag_list_save_remove_and_load_an_image() {
    let daemon = TestDaemon::start();
    let id = import_busybox(&daemon, "keel-test/busybox:1");
    let short = &id[7..19];
    daemon.keel_ok(&["tag", "keel-test/busybox:1", "localhost:5000/team/app"]);

    let table = daemon.keel_ok(&["images"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("keel-test/busybox ") && l.contains(" 1 ") && l.contains(short)),
        "{table}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("localhost:5000/team/app ") && l.contains(" latest ")),
        "{table}"
    );
    assert_eq!(
        daemon.keel_ok(&["images", "-q"]),
        format!("{short}\n{short}\n")
    );
    assert_eq!(
        daemon.keel_ok(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "keel-test/*"
        ]),
        "keel-test/busybox:1\n"
    );

    let history = daemon.keel_ok(&[
        "history",
        "--format",
        "{{.ID}}|{{.Comment}}",
        "keel-test/busybox:1",
    ]);
    assert_eq!(history, format!("{short}|busybox for tests\n"));
    let inspected = daemon.keel_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}} {{.Os}}",
        "localhost:5000/team/app",
    ]);
    assert_eq!(inspected, format!("{id} linux\n"));

    let archive = daemon.path("saved.tar");
    daemon.keel_ok(&[
        "save",
        "-o",
        archive.to_str().unwrap(),
        "keel-test/busybox:1",
    ]);
    let removed = daemon.keel_ok(&["rmi", "keel-test/busybox:1"]);
    assert_eq!(
        removed, "Untagged: keel-test/busybox:1\n",
        "another tag holds the image"
    );
    let removed = daemon.keel_ok(&["rmi", "localhost:5000/team/app"]);
    assert!(
        removed.starts_with(&format!(
            "Untagged: localhost:5000/team/app:latest\nDeleted: {id}\n"
        )),
        "{removed}"
    );
    assert_eq!(daemon.keel_ok(&["images", "-q"]), "");

    assert_eq!(
        daemon.keel_ok(&["load", "-i", archive.to_str().unwrap()]),
        "Loaded image: keel-test/busybox:1\n"
    );
    assert_eq!(daemon.keel_ok(&["images", "-q"]), format!("{short}\n"));
}

#[test]
fn the_docker_cli_loads_lists_tags_saves_and_removes_keels_images() {
    let daemon = TestDaemon::start();
    let id = import_busybox(&daemon, "keel-test/source");
    let archive = daemon.path("from-keel.tar");
    daemon.keel_ok(&["save", "-o", archive.to_str().unwrap(), "keel-test/source"]);
    daemon.keel_ok(&["rmi", "keel-test/source"]);

    let (code, out, err) = daemon.docker(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Loaded image: keel-test/source:latest\n");
    let (code, _, err) = daemon.docker(&["tag", "keel-test/source", "keel-test/copy:2"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = daemon.docker(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let mut listed: Vec<&str> = out.lines().collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            format!("keel-test/copy:2 {}", &id[7..19]),
            format!("keel-test/source:latest {}", &id[7..19])
        ]
    );
    let (_, out, _) = daemon.docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}} {{.Config.Cmd}}",
        "keel-test/copy:2",
    ]);
    assert_eq!(out, format!("{id} [sh]\n"));

    let resaved = daemon.path("from-docker.tar");
    let (code, _, err) =
        daemon.docker(&["save", "-o", resaved.to_str().unwrap(), "keel-test/copy:2"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = daemon.docker(&["rmi", "keel-test/copy:2", "keel-test/source"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Untagged: keel-test/copy:2") && out.contains(&format!("Deleted: {id}")),
        "{out}"
    );
    assert_eq!(
        daemon.keel_ok(&["load", "-i", resaved.to_str().unwrap()]),
        "Loaded image: keel-test/copy:2\n"
    );

    let (code, _, err) = daemon.docker(&["rmi", "keel-test/nothing-here"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "Error response from daemon: No such image: keel-test/nothing-here:latest"
    );
}

#[test]
fn docker_py_lists_loads_and_tags_keels_images() {
    let daemon = TestDaemon::start();
    import_busybox(&daemon, "keel-test/py");
    let archive = daemon.path("py.tar");
    daemon.keel_ok(&["save", "-o", archive.to_str().unwrap(), "keel-test/py"]);
    let script = format!(
        r#"
import docker
client = docker.DockerClient(base_url="unix://{socket}", version="auto")
assert client.ping()
image = client.images.get("keel-test/py")
assert image.tags == ["keel-test/py:latest"], image.tags
assert image.tag("keel-test/py-tagged", "v1")
client.images.remove("keel-test/py")
with open("{archive}", "rb") as f:
    loaded = client.images.load(f.read())
print(sorted(loaded[0].tags))
print(len(client.images.list()))
"#,
        socket = daemon.socket().display(),
        archive = archive.display()
    );
    let (code, out, err) =
        common::output(std::process::Command::new("python3").args(["-c", &script]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "['keel-test/py-tagged:v1', 'keel-test/py:latest']\n1\n"
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_leaves_nothing() {
    let daemon = TestDaemon::start();
    let garbage = daemon.path("garbage.tar");
    std::fs::write(&garbage, vec![b'x'; 5000]).unwrap();
    let (code, _, err) = daemon.keel(&["load", "-i", garbage.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.starts_with("Error response from daemon: "), "{err}");
    let store = daemon.root().join("image");
    for sub in ["blobs/sha256", "layers", "images", "ingest"] {
        let left: Vec<_> = std::fs::read_dir(store.join(sub))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{sub} keeps {left:?}");
    }

    let (code, _, err) = daemon.keel(&["tag", "keel-test/none", "keel-test/other"]);
    assert_eq!(
        (code, err.trim()),
        (
            1,
            "Error response from daemon: No such image: keel-test/none:latest"
        )
    );
    let (code, _, err) = daemon.keel(&["tag", "keel-test/none", "Bad/Name"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("must be lowercase") || err.contains("No such image"),
        "{err}"
    );
    let (code, _, err) = daemon.keel(&["images", "--format", "{{.Nope}}"]);
    assert_eq!(code, 0, "an empty list has no row to fail on: {err}");
    import_busybox(&daemon, "keel-test/format");
    let (code, _, err) = daemon.keel(&["images", "--format", "{{.Nope}}"]);
    assert_eq!(
        (code, err.trim()),
        (1, "template: can't evaluate field Nope")
    );
    let (code, _, err) = daemon.keel(&["frobnicate"]);
    assert_eq!(code, 1);
    assert!(err.contains("'frobnicate' is not a keel command"), "{err}");
}

#[test]
fn the_cli_starts_a_daemon_when_none_answers() {
    let dir = tempfile::Builder::new()
        .prefix("keel-autostart-")
        .tempdir()
        .unwrap();
    let socket = dir.path().join("keel.sock");
    let (code, out, err) = common::output(
        std::process::Command::new(common::KEEL)
            .arg("images")
            .env("KEEL_HOST", format!("unix://{}", socket.display()))
            .env("KEEL_ROOT", dir.path().join("root"))
            .env_remove("KEEL_AUTOSTART"),
    );
    let started = std::os::unix::net::UnixStream::connect(&socket).ok();
    let pid = started
        .as_ref()
        .and_then(|s| rustix::net::sockopt::socket_peercred(s).ok())
        .map(|cred| cred.pid.as_raw_nonzero().get());
    if let Some(pid) = pid {
        common::stop(pid);
    }
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("REPOSITORY"), "{out}");
    assert_eq!(
        err.lines().count(),
        1,
        "one line says the daemon was started: {err}"
    );
    assert!(err.contains("started one"), "{err}");
    assert!(pid.is_some(), "a daemon answers on the socket");
}

#[test]
fn keel_prints_tables_as_the_docker_cli_does() {
    let daemon = TestDaemon::start();
    import_busybox(&daemon, "keel-test/one");
    import_busybox(&daemon, "keel-test/two:b");
    daemon.keel_ok(&["tag", "keel-test/one", "localhost:5000/keel-test/three:3"]);
    for args in [
        &["system", "df"][..],
        &[
            "images",
            "--format",
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}",
        ][..],
        &[
            "images",
            "--digests",
            "--format",
            "table {{.Repository}}\t{{.Digest}}\t{{.ID}}",
        ][..],
        &["images", "-q"][..],
    ] {
        let keel = daemon.keel_ok(args);
        let (code, docker, err) = daemon.docker(args);
        assert_eq!(code, 0, "docker {args:?}: {err}");
        // docker walks an image's repositories in Go map order, which
        // varies from run to run: rows are compared as a set.
        let sorted = |text: &str| {
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            lines[1..].sort();
            lines
        };
        assert_eq!(sorted(&keel), sorted(&docker), "keel {args:?}");
    }
    let df = daemon.keel_ok(&["system", "df"]);
    assert!(
        df.lines().nth(1).unwrap().starts_with("Images          2 "),
        "{df}"
    );
}

#[test]
fn image_prune_publishes_the_untag_and_delete_events_of_what_it_removes() {
    let daemon = TestDaemon::start();
    let id = import_busybox(&daemon, "keel-test/pruned:1");
    let since = common::unix_now();
    daemon.keel_ok(&["image", "prune", "-a", "-f"]);
    let until = common::unix_now();
    let actions = daemon.events_of(&since, &until, "image", "{{.Action}} {{.ID}}");
    assert_eq!(
        actions.lines().collect::<Vec<_>>(),
        [
            "untag keel-test/pruned:1".to_owned(),
            format!("delete {id}")
        ],
        "{actions}"
    );
}
