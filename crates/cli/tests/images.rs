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

/// The entry names of the top layer of the one image in a docker-archive.
fn top_layer_entries(archive: &std::path::Path) -> Vec<String> {
    let read = |name: &str| -> Vec<u8> {
        let mut outer = tar::Archive::new(std::fs::File::open(archive).unwrap());
        for entry in outer.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.path().unwrap().to_str() == Some(name) {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
                return bytes;
            }
        }
        panic!("{name} is not in {}", archive.display());
    };
    let manifest: serde_json::Value = serde_json::from_slice(&read("manifest.json")).unwrap();
    let top = manifest[0]["Layers"].as_array().unwrap().last().unwrap();
    let layer = read(top.as_str().unwrap());
    tar::Archive::new(layer.as_slice())
        .entries()
        .unwrap()
        .map(|entry| entry.unwrap().path().unwrap().display().to_string())
        .collect()
}

/// Runs `script` in a new container of `image` and commits it as `name`
/// with `keel commit`; returns the new image's id.
fn commit_after(daemon: &TestDaemon, image: &str, script: &str, name: &str) -> String {
    let container = format!("{}-src", name.replace([':', '/'], "-"));
    daemon.keel_ok(&["run", "--name", &container, image, "sh", "-c", script]);
    let id = daemon.keel_ok(&["commit", "-m", "by a test", &container, name]);
    daemon.keel_ok(&["rm", &container]);
    id.trim().to_owned()
}

#[test]
fn commit_makes_an_image_of_exactly_what_a_container_wrote_deleted_and_replaced() {
    let daemon = TestDaemon::with_busybox();
    commit_after(
        &daemon,
        "keel-test/busybox",
        "mkdir -p /dir/sub && echo old > /dir/sub/old && echo bye > /gone && ln /gone /alias",
        "keel-test/base",
    );
    let id = commit_after(
        &daemon,
        "keel-test/base",
        "echo new > /new && rm /gone /alias && rm -r /dir && mkdir /dir && echo fresh > /dir/fresh",
        "keel-test/changed",
    );
    assert!(id.starts_with("sha256:"), "{id}");
    let seen = daemon.keel_ok(&[
        "run",
        "--rm",
        "keel-test/changed",
        "sh",
        "-c",
        "cat /new; ls -A /dir; for f in /gone /alias; do test -e $f || echo no $f; done",
    ]);
    assert_eq!(
        seen, "new\nfresh\nno /gone\nno /alias\n",
        "the old files show through"
    );
    // Each commit adds one layer and one history step, with its comment.
    let layers = |image: &str| {
        let (code, out, err) = daemon.docker(&[
            "image",
            "inspect",
            "--format",
            "{{len .RootFS.Layers}}",
            image,
        ]);
        assert_eq!(code, 0, "{err}");
        out
    };
    assert_eq!(layers("keel-test/busybox"), "1\n");
    assert_eq!(layers("keel-test/changed"), "3\n");
    let history = daemon.keel_ok(&["history", "--format", "{{.Comment}}", "keel-test/changed"]);
    assert_eq!(history, "by a test\nby a test\nbusybox for tests\n");
    // The layer is a real OCI layer: it survives a save and a load elsewhere.
    let archive = daemon.path("changed.tar");
    daemon.keel_ok(&["save", "-o", archive.to_str().unwrap(), "keel-test/changed"]);
    let mut entries = top_layer_entries(&archive);
    entries.sort();
    assert_eq!(
        entries,
        [
            ".wh.alias",
            ".wh.gone",
            "dir",
            "dir/.wh..wh..opq",
            "dir/fresh",
            "new"
        ],
        "overlay whiteouts and opaque directories become OCI ones"
    );
    let other = TestDaemon::start();
    other.keel_ok(&["load", "-i", archive.to_str().unwrap()]);
    let seen = other.keel_ok(&["run", "--rm", "keel-test/changed", "ls", "-A", "/dir"]);
    assert_eq!(seen, "fresh\n");
}

#[test]
fn docker_commit_through_keels_socket_applies_changes_and_refuses_a_bad_one_leaving_no_image() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run",
        "--name",
        "keel-test-commit",
        "-e",
        "MINE=1",
        "keel-test/busybox",
        "sh",
        "-c",
        "echo hello > /greeting",
    ]);
    let before = daemon.keel_ok(&["images", "-q", "-a"]);
    let (code, _, err) = daemon.docker(&[
        "commit",
        "-c",
        "RUN make",
        "keel-test-commit",
        "keel-test/bad",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("run is not a valid change command"), "{err}");
    assert_eq!(daemon.keel_ok(&["images", "-q", "-a"]), before);

    let (code, out, err) = daemon.docker(&[
        "commit",
        "-a",
        "Ada <ada@example.com>",
        "-c",
        "CMD [\"cat\", \"/greeting\"]",
        "-c",
        "LABEL stage=committed",
        "keel-test-commit",
        "keel-test/committed:v1",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.trim().starts_with("sha256:"), "{out}");
    let (code, out, err) = daemon.docker(&["run", "--rm", "keel-test/committed:v1"]);
    assert_eq!((code, out.as_str()), (0, "hello\n"), "{err}");
    let (_, inspected, _) = daemon.docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Author}}|{{.Config.Labels.stage}}|{{json .Config.Env}}",
        "keel-test/committed:v1",
    ]);
    assert_eq!(inspected, "Ada <ada@example.com>|committed|[\"MINE=1\"]\n");
    let events = daemon.events_of("0", &common::unix_now(), "container", "{{.Action}}");
    assert!(events.lines().any(|action| action == "commit"), "{events}");
    daemon.keel_ok(&["rm", "keel-test-commit"]);
}
