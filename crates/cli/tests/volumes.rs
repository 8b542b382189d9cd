//! Binds, named and anonymous volumes, --mount and --tmpfs on the real
//! kernel, through keel, the docker CLI and docker-py.

mod common;

use common::TestDaemon;

const IMAGE: &str = common::BUSYBOX;

#[test]
fn bind_mounts_show_host_files_and_read_only_binds_refuse_writes() {
    let daemon = TestDaemon::with_busybox();
    let host = daemon.path("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("f"), "from the host\n").unwrap();
    let bind = format!("{}:/data", host.display());
    let read_only = format!("{bind}:ro");
    for run in [
        |d: &TestDaemon, a: &[&str]| d.keel(a),
        |d: &TestDaemon, a: &[&str]| d.docker(a),
    ] {
        let (code, out, err) = run(
            &daemon,
            &["run", "--rm", "-v", &bind, IMAGE, "cat", "/data/f"],
        );
        assert_eq!((code, out.as_str()), (0, "from the host\n"), "{err}");
        let (code, _, err) = run(
            &daemon,
            &["run", "--rm", "-v", &read_only, IMAGE, "touch", "/data/g"],
        );
        assert_eq!(code, 1);
        assert!(err.contains("Read-only file system"), "{err}");
    }
    daemon.keel_ok(&[
        "run",
        "--rm",
        "-v",
        &bind,
        IMAGE,
        "sh",
        "-c",
        "echo back > /data/g",
    ]);
    assert_eq!(std::fs::read_to_string(host.join("g")).unwrap(), "back\n");
    // -v makes a missing host directory, as docker does.
    let missing = daemon.path("made/by/run");
    daemon.keel_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/m", missing.display()),
        IMAGE,
        "true",
    ]);
    assert!(missing.is_dir());
}

#[test]
fn named_volumes_keep_data_between_containers_and_stay_while_used() {
    let daemon = TestDaemon::with_busybox();
    assert_eq!(daemon.docker(&["volume", "create", "v"]).1, "v\n");
    daemon.docker(&[
        "run",
        "--rm",
        "-v",
        "shared:/d",
        IMAGE,
        "sh",
        "-c",
        "echo kept > /d/file",
    ]);
    let (code, out, err) =
        daemon.docker(&["run", "--rm", "-v", "shared:/d", IMAGE, "cat", "/d/file"]);
    assert_eq!((code, out.as_str()), (0, "kept\n"), "{err}");
    let (_, out, _) = daemon.keel(&[
        "run",
        "--rm",
        "-v",
        "v:/d",
        IMAGE,
        "sh",
        "-c",
        "echo in-v > /d/x; cat /d/x",
    ]);
    assert_eq!(out, "in-v\n");
    assert_eq!(daemon.keel_ok(&["volume", "ls", "-q"]), "shared\nv\n");
    let table = daemon.keel_ok(&["volume", "ls"]);
    assert_eq!(
        table,
        daemon.docker(&["volume", "ls"]).1,
        "keel prints docker's table"
    );
    assert!(
        table.starts_with("DRIVER    VOLUME NAME\nlocal     shared\n"),
        "{table}"
    );
    let (_, inspected, _) = daemon.docker(&[
        "volume",
        "inspect",
        "--format",
        "{{.Driver}} {{.Name}} {{.Scope}}",
        "shared",
    ]);
    assert_eq!(inspected, "local shared local\n");

    daemon.keel_ok(&[
        "create",
        "--name",
        "holder",
        "-v",
        "shared:/d",
        IMAGE,
        "true",
    ]);
    let (code, _, err) = daemon.docker(&["volume", "rm", "shared"]);
    assert_eq!(code, 1);
    assert!(err.contains("volume is in use"), "{err}");
    daemon.keel_ok(&["rm", "holder"]);
    assert_eq!(daemon.keel_ok(&["volume", "rm", "shared"]), "shared\n");
    let (code, _, err) = daemon.keel(&["volume", "inspect", "shared"]);
    assert_eq!(code, 1);
    assert!(err.contains("no such volume"), "{err}");

    let script = format!(
        r#"
import docker
client = docker.DockerClient(base_url="unix://{socket}", version="auto")
client.volumes.create("pyvol")
client.containers.run("{IMAGE}", ["sh", "-c", "echo py > /p/f"], volumes={{"pyvol": {{"bind": "/p", "mode": "rw"}}}}, remove=True)
print(client.containers.run("{IMAGE}", ["cat", "/p/f"], volumes=["pyvol:/p:ro"], remove=True).decode(), end="")
print(sorted(v.name for v in client.volumes.list()))
"#,
        socket = daemon.socket().display(),
    );
    let (code, out, err) =
        common::output(std::process::Command::new("python3").args(["-c", &script]));
    assert_eq!((code, out.as_str()), (0, "py\n['pyvol', 'v']\n"), "{err}");
}

#[test]
fn anonymous_volumes_are_filled_from_the_image_and_go_with_rm_v_and_rm() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&["create", "--name", "anon", "-v", "/etc", IMAGE, "true"]);
    let volumes = daemon.keel_ok(&["volume", "ls", "-q"]);
    assert_eq!(volumes.trim().len(), 64, "one anonymous volume: {volumes}");
    let (code, out, _) = daemon.keel(&[
        "run",
        "--rm",
        "-v",
        "/etc",
        IMAGE,
        "grep",
        "-c",
        "^root:",
        "/etc/passwd",
    ]);
    assert_eq!(
        (code, out.as_str()),
        (0, "1\n"),
        "the image's /etc was copied in"
    );
    assert_eq!(
        daemon.keel_ok(&["volume", "ls", "-q"]),
        volumes,
        "--rm took its own volume"
    );
    daemon.keel_ok(&["rm", "-v", "anon"]);
    assert_eq!(daemon.keel_ok(&["volume", "ls", "-q"]), "");
    // nocopy leaves a new volume empty.
    let (_, out, _) = daemon.keel(&[
        "run",
        "--rm",
        "-v",
        "fresh:/etc:nocopy",
        IMAGE,
        "ls",
        "/etc",
    ]);
    assert_eq!(out, "");
}

#[test]
fn mount_and_tmpfs_flags_mount_what_they_say() {
    let daemon = TestDaemon::with_busybox();
    let host = daemon.path("host");
    std::fs::create_dir(&host).unwrap();
    let bind = format!("type=bind,source={},target=/b,readonly", host.display());
    for run in [
        |d: &TestDaemon, a: &[&str]| d.keel(a),
        |d: &TestDaemon, a: &[&str]| d.docker(a),
    ] {
        let (code, out, err) = run(
            &daemon,
            &[
                "run",
                "--rm",
                "--mount",
                &bind,
                "--mount",
                "type=volume,source=mv,target=/v",
                "--tmpfs",
                "/scratch:size=1m",
                IMAGE,
                "sh",
                "-c",
                "touch /b/x 2>/dev/null || echo ro; touch /v/y && echo rw; df -k /scratch | tail -1",
            ],
        );
        assert_eq!(code, 0, "{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[..2], ["ro", "rw"], "{out}");
        assert!(
            lines[2].starts_with("tmpfs") && lines[2].contains(" 1024 "),
            "{out}"
        );
    }
}

#[test]
fn bad_mount_specs_fail_with_125_in_dockers_words_and_make_nothing() {
    let daemon = TestDaemon::with_busybox();
    let cases: [(&[&str], &str); 7] = [
        (
            &["-v", "good:/a", "-v", "a:b:c:d"],
            "invalid volume specification: 'a:b:c:d'",
        ),
        (&["-v", "/tmp:relative"], "mount path must be absolute"),
        (&["-v", "/tmp:/x:shiny"], "invalid mode: shiny"),
        (
            &["--mount", "type=bind,source=/no/such/dir,target=/x"],
            "bind source path does not exist: /no/such/dir",
        ),
        (
            &["-v", "b@d:/x"],
            "includes invalid characters for a local volume name",
        ),
        // The masks and read-only paths stand on the container's procfs.
        (
            &["-v", "/tmp:/proc"],
            "mounts[/proc] is a bind mount of /tmp: only a proc filesystem can be mounted at /proc",
        ),
        (
            &["-v", "/tmp:/proc/sys"],
            "mounts[/proc/sys] is a bind mount of /tmp: nothing can be mounted inside /proc but /proc/cpuinfo",
        ),
    ];
    for (flags, wording) in cases {
        for client in ["keel", "docker"] {
            let mut args = vec!["run", "--rm"];
            args.extend(flags);
            args.extend([IMAGE, "true"]);
            let (code, _, err) = match client {
                "keel" => daemon.keel(&args),
                _ => daemon.docker(&args),
            };
            assert_eq!(code, 125, "{client} {flags:?}: {err}");
            assert!(err.contains(wording), "{client} {flags:?}: {err}");
        }
    }
    assert_eq!(daemon.keel_ok(&["ps", "-aq"]), "");
    assert_eq!(
        daemon.keel_ok(&["volume", "ls", "-q"]),
        "",
        "no volume was made"
    );
}
