//! `docker cp` and docker-py's `get_archive`/`put_archive` against
//! `/containers/{id}/archive`, and the attacks a copy must not let out of
//! the container: `..`, symlinks to host paths, tars that climb out.

mod common;

use std::process::{Command, Stdio};

use common::TestDaemon;

const IMAGE: &str = common::BUSYBOX;

/// Runs the docker CLI against the daemon with `input` (bytes) as stdin.
fn docker_fed(daemon: &TestDaemon, args: &[&str], input: &[u8]) -> (i32, Vec<u8>, String) {
    let out = common::fed_bytes(&mut daemon.docker_command(args), input);
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The names and contents of a tar's entries, in order.
fn entries(tar: &[u8]) -> Vec<(String, String)> {
    use std::io::Read;
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            (name, text)
        })
        .collect()
}

fn python(daemon: &TestDaemon, body: &str) -> (i32, String, String) {
    let script = format!(
        "import docker, io, tarfile\nclient = docker.DockerClient(base_url=\"unix://{}\", version=\"auto\")\n{body}",
        daemon.socket().display()
    );
    common::output(Command::new("python3").args(["-c", &script]))
}

#[test]
fn docker_cp_copies_files_and_directories_both_ways_in_created_and_running_containers() {
    let daemon = TestDaemon::with_busybox();
    let host = daemon.path("host");
    std::fs::create_dir_all(host.join("dir/sub")).unwrap();
    std::fs::write(host.join("file"), "one file\n").unwrap();
    std::fs::write(host.join("dir/sub/deep"), "deep\n").unwrap();
    daemon.keel_ok(&["create", "--name", "made", IMAGE, "sleep", "600"]);
    daemon.keel_ok(&["run", "-d", "--name", "live", IMAGE, "sleep", "600"]);
    let file = host.join("file").display().to_string();
    let dir = host.join("dir").display().to_string();
    for name in ["made", "live"] {
        let (code, _, err) = daemon.docker(&["cp", &file, &format!("{name}:/tmp/")]);
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = daemon.docker(&["cp", &file, &format!("{name}:/tmp/renamed")]);
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = daemon.docker(&["cp", &dir, &format!("{name}:/srv")]);
        assert_eq!(code, 0, "{err}");
        let back = daemon.path(&format!("back-{name}"));
        std::fs::create_dir(&back).unwrap();
        for (source, into) in [
            ("/tmp/file", "file"),
            ("/tmp/renamed", "renamed"),
            ("/srv", "srv"),
        ] {
            let target = back.join(into).display().to_string();
            let (code, _, err) = daemon.docker(&["cp", &format!("{name}:{source}"), &target]);
            assert_eq!(code, 0, "{source}: {err}");
        }
        assert_eq!(
            std::fs::read_to_string(back.join("file")).unwrap(),
            "one file\n"
        );
        assert_eq!(
            std::fs::read_to_string(back.join("renamed")).unwrap(),
            "one file\n"
        );
        assert_eq!(
            std::fs::read_to_string(back.join("srv/sub/deep")).unwrap(),
            "deep\n"
        );
    }
    // What went into the created container is there when it runs.
    daemon.keel_ok(&["start", "made"]);
    let (code, out, err) = daemon.docker(&["exec", "made", "cat", "/tmp/file", "/srv/sub/deep"]);
    assert_eq!((code, out.as_str()), (0, "one file\ndeep\n"), "{err}");
    // A stopped container's files can be read too, and its root is not
    // left mounted.
    daemon.keel_ok(&["rm", "-f", "live"]);
    daemon.keel_ok(&["create", "--name", "stopped", IMAGE, "true"]);
    let (code, _, err) = daemon.docker(&["cp", &file, "stopped:/"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = daemon.docker(&["cp", "stopped:/file", "-"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(entries(out.as_bytes()).len(), 1, "{out}");
    let id = daemon.keel_ok(&["inspect", "-f", "{{.Id}}", "stopped"]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(id.trim()), "{mounts}");
}

#[test]
fn docker_cp_streams_tars_through_stdin_and_stdout() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&["run", "-d", "--name", "box", IMAGE, "sleep", "600"]);
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(6);
    header.set_mode(0o640);
    header.set_uid(1234);
    header.set_gid(5678);
    tar.append_data(&mut header, "in/tarred", &b"tarred"[..])
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let (code, _, err) = docker_fed(&daemon, &["cp", "-", "box:/tmp"], &tar);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) =
        daemon.docker(&["exec", "box", "stat", "-c", "%a %u %g", "/tmp/in/tarred"]);
    assert_eq!((code, out.as_str()), (0, "640 1234 5678\n"), "{err}");
    // A directory's entries are named after it; `/.` names them `./`.
    let (code, out, err) = daemon.docker(&["cp", "box:/tmp/in", "-"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        entries(out.as_bytes()),
        [
            ("in/".into(), String::new()),
            ("in/tarred".into(), "tarred".into())
        ]
    );
    let (code, out, err) = daemon.docker(&["cp", "box:/tmp/in/.", "-"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        entries(out.as_bytes()),
        [
            ("./".into(), String::new()),
            ("./tarred".into(), "tarred".into())
        ]
    );
    // A tar into a file, or out of nothing, is refused.
    let (code, _, err) = docker_fed(&daemon, &["cp", "-", "box:/tmp/in/tarred"], &tar);
    assert_ne!(code, 0);
    assert!(err.contains("must be a directory"), "{err}");
    let (code, _, err) = daemon.docker(&["cp", "box:/no/such", "-"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("Could not find the file /no/such in container box"),
        "{err}"
    );
}

#[test]
fn docker_py_put_and_get_archive_carry_the_path_stat() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&["create", "--name", "py", IMAGE, "true"]);
    let since = common::unix_now();
    let (code, out, err) = python(
        &daemon,
        r#"
c = client.containers.get("py")
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    info = tarfile.TarInfo("hello.txt"); data = b"hello from py"; info.size = len(data)
    t.addfile(info, io.BytesIO(data))
print(c.put_archive("/tmp", buf.getvalue()))
stream, stat = c.get_archive("/tmp/hello.txt")
got = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
print(stat["name"], stat["size"], oct(stat["mode"]), stat["linkTarget"] == "", stat["mtime"][:2])
print(got.getnames(), got.extractfile("hello.txt").read().decode())
_, stat = c.get_archive("/tmp")
print(stat["name"], stat["mode"] & (1 << 31) != 0)
try:
    c.get_archive("/nowhere")
except docker.errors.NotFound as e:
    print("404", e.explanation)
for into in ["/tmp/hello.txt", "/nowhere"]:
    try:
        c.put_archive(into, buf.getvalue())
    except docker.errors.APIError as e:
        print(e.status_code, e.explanation)
"#,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "True\nhello.txt 13 0o644 True 19\n['hello.txt'] hello from py\ntmp True\n\
         404 Could not find the file /nowhere in container py\n\
         400 extraction point is not a directory\n\
         404 Could not find the file /nowhere in container py\n"
    );
    // Each copy is an event, as in Docker; refused ones are not.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let until = common::unix_now();
    let actions = daemon.events_of(&since, &until, "container", "{{.Action}}");
    assert_eq!(
        actions.lines().collect::<Vec<_>>(),
        ["extract-to-dir", "archive-path", "archive-path"]
    );
}

#[test]
fn paths_and_symlinks_that_climb_out_stay_in_the_container() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "box",
        IMAGE,
        "sh",
        "-c",
        "echo container-passwd > /etc/passwd; ln -s /etc /x; ln -s ../../../../../../etc/passwd /up; sleep 600",
    ]);
    // Wait for the shell to have made its files.
    for _ in 0..100 {
        if daemon.docker(&["exec", "box", "test", "-L", "/up"]).0 == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let host_passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let got = daemon.path("got");
    std::fs::create_dir(&got).unwrap();
    for source in ["box:/../../etc/passwd", "box:/x/passwd", "box:/up"] {
        let target = got.join("passwd");
        let _ = std::fs::remove_file(&target);
        let (code, _, err) = daemon.docker(&["cp", "-L", source, &target.display().to_string()]);
        assert_eq!(code, 0, "{source}: {err}");
        let copied = std::fs::read_to_string(&target).unwrap();
        assert_eq!(copied, "container-passwd\n", "{source}");
        assert_ne!(copied, host_passwd);
    }
    // A write through the container's /x -> /etc lands in its /etc.
    let file = got.join("planted");
    std::fs::write(&file, "planted\n").unwrap();
    let (code, _, err) = daemon.docker(&["cp", &file.display().to_string(), "box:/x/"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = daemon.docker(&["exec", "box", "cat", "/etc/planted"]);
    assert_eq!((code, out.as_str()), (0, "planted\n"), "{err}");
    assert!(!std::path::Path::new("/etc/planted").exists());
}

#[test]
fn tars_that_climb_out_are_refused_and_write_nothing_outside() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&["create", "--name", "box", IMAGE, "true"]);
    let outside = daemon.path("outside");
    std::fs::create_dir(&outside).unwrap();
    let (code, out, err) = python(
        &daemon,
        &format!(
            r#"
c = client.containers.get("box")
def tar(*members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, link in members:
            info = tarfile.TarInfo(name)
            if link is None:
                info.size = 4; t.addfile(info, io.BytesIO(b"evil"))
            else:
                info.type = tarfile.SYMTYPE; info.linkname = link; t.addfile(info)
    return buf.getvalue()
for members in [[("../evil", None)], [("/../abs-evil", None)],
                [("link", "{outside}"), ("link/through-evil", None)]]:
    try:
        c.put_archive("/", tar(*members))
        print("accepted", members[-1][0])
    except docker.errors.APIError as e:
        print(e.status_code, e.explanation)
"#,
            outside = outside.display()
        ),
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("400 ") && lines[0].contains("../evil"),
        "{out}"
    );
    // An absolute name is taken from the container's root, as by Docker.
    assert_eq!(lines[1], "accepted /../abs-evil", "{out}");
    assert!(
        lines[2].starts_with("400 ") && lines[2].contains("link/through-evil"),
        "{out}"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    let (code, out, _) = common::output(Command::new("find").args([
        &daemon.dir.path().display().to_string(),
        "-name",
        "*evil",
    ]));
    assert_eq!(code, 0);
    let found: Vec<&str> = out.lines().collect();
    assert!(found.len() == 1 && found[0].ends_with("/abs-evil"), "{out}");
    let (code, tar, _) = daemon.docker(&["cp", "box:/abs-evil", "-"]);
    assert_eq!(code, 0);
    assert!(tar.contains("evil"), "{tar}");
    for host in ["/evil", "/abs-evil"] {
        assert!(!std::path::Path::new(host).exists(), "{host}");
    }
}

/// Every path under `dir` with a file's content, sorted.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                found.push(format!("{name}/"));
                stack.push(path);
            } else if meta.is_symlink() {
                found.push(format!(
                    "{name} -> {}",
                    std::fs::read_link(&path).unwrap().display()
                ));
            } else {
                found.push(format!(
                    "{name}: {}",
                    std::fs::read_to_string(&path).unwrap()
                ));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn keel_cp_copies_as_docker_cp_does() {
    let daemon = TestDaemon::with_busybox();
    let host = daemon.path("host");
    std::fs::create_dir_all(host.join("dir/sub")).unwrap();
    std::fs::write(host.join("file"), "one\n").unwrap();
    std::fs::write(host.join("dir/sub/deep"), "deep\n").unwrap();
    std::os::unix::fs::symlink("sub/deep", host.join("dir/link")).unwrap();
    let at = |p: &str| host.join(p).display().to_string();
    let mut trees = Vec::new();
    for tool in ["docker", "keel"] {
        let run = |args: &[&str]| match tool {
            "docker" => daemon.docker(args),
            _ => daemon.keel(args),
        };
        let name = format!("to-{tool}");
        let out = daemon.path(&format!("out-{tool}"));
        std::fs::create_dir(&out).unwrap();
        let local = |p: &str| out.join(p).display().to_string();
        daemon.keel_ok(&["create", "--name", &name, IMAGE, "sh", "-c", "true"]);
        let c = |p: &str| format!("{name}:{p}");
        for args in [
            vec!["cp", &at("file"), &c("/tmp/")],
            vec!["cp", &at("file"), &c("/tmp/renamed")],
            vec!["cp", &at("dir"), &c("/new")],
            vec!["cp", &at("dir"), &c("/tmp")],
            vec!["cp", &at("dir/."), &c("/dot")],
            vec!["cp", &at("dir/link"), &c("/tmp/link")],
            vec!["cp", "-L", &at("dir/link"), &c("/tmp/followed")],
        ] {
            let (code, _, err) = run(&args);
            assert_eq!(code, 0, "{tool} {args:?}: {err}");
        }
        for args in [
            vec!["cp".to_owned(), c("/tmp"), local("tmp")],
            vec!["cp".to_owned(), c("/new/."), local("fromdot")],
            vec!["cp".to_owned(), c("/dot"), local("")],
            vec!["cp".to_owned(), c("/tmp/renamed"), local("copy")],
            vec![
                "cp".to_owned(),
                "-L".to_owned(),
                c("/tmp/dir/link"),
                local("deref"),
            ],
        ] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (code, _, err) = run(&args);
            assert_eq!(code, 0, "{tool} {args:?}: {err}");
        }
        // Refusals, in docker's words.
        for (args, words) in [
            (
                vec!["cp", &at("file"), &c("/nowhere/")],
                "no such directory",
            ),
            (
                vec!["cp", &at("dir"), &c("/tmp/renamed")],
                "cannot copy directory",
            ),
            (
                vec!["cp", &c("/a"), &c("/b")],
                "copying between containers is not supported",
            ),
            (
                vec!["cp", &at("file"), &at("file")],
                "must specify at least one container source",
            ),
        ] {
            let (code, _, err) = run(&args);
            assert_ne!(code, 0, "{tool} {args:?}");
            assert!(err.contains(words), "{tool} {args:?}: {err}");
        }
        trees.push(tree(&out));
    }
    assert_eq!(trees[0], trees[1]);
    assert!(
        trees[1].contains(&"tmp/dir/sub/deep: deep\n".to_owned()),
        "{:?}",
        trees[1]
    );
    assert!(
        trees[1].contains(&"deref: deep\n".to_owned()),
        "{:?}",
        trees[1]
    );
    assert!(
        trees[1].contains(&"fromdot/link -> sub/deep".to_owned()),
        "{:?}",
        trees[1]
    );
    // Tars on stdin and stdout.
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o644);
    tar.append_data(&mut header, "piped", &b"abc"[..]).unwrap();
    let tar = tar.into_inner().unwrap();
    let mut keel = daemon.keel_command(&["cp", "-", "to-keel:/tmp"]);
    let mut child = keel
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&tar).unwrap();
    }
    let status = child.wait_with_output().unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let out = daemon
        .keel_command(&["cp", "to-keel:/tmp/piped", "-"])
        .output()
        .unwrap();
    assert_eq!(entries(&out.stdout), [("piped".into(), "abc".into())]);
}

/// Waits until `test args` succeeds in running container `name`.
fn exec_until(daemon: &TestDaemon, name: &str, args: &[&str]) {
    let mut command = vec!["exec", name, "test"];
    command.extend_from_slice(args);
    for _ in 0..100 {
        if daemon.docker(&command).0 == 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{command:?} never held");
}

/// Whether any mount of the host's namespace comes from under `dir`.
fn host_mounts_under(dir: &std::path::Path) -> Vec<String> {
    let dir = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|line| line.contains(&dir))
        .map(str::to_owned)
        .collect()
}

#[test]
fn docker_cp_copies_into_and_out_of_a_named_volume_of_created_and_running_containers() {
    let daemon = TestDaemon::with_busybox();
    let file = daemon.path("file");
    std::fs::write(&file, "in the volume\n").unwrap();
    let file = file.display().to_string();
    let back = daemon.path("back");
    std::fs::create_dir(&back).unwrap();
    let at = |name: &str| back.join(name).display().to_string();
    // /data is not in the image: its mount point is made, as at start.
    daemon.keel_ok(&[
        "create",
        "--name",
        "made",
        "-v",
        "shared:/data",
        IMAGE,
        "true",
    ]);
    let (code, _, err) = daemon.docker(&["cp", &file, "made:/data/"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = daemon.docker(&["cp", "made:/data/file", &at("from-made")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(back.join("from-made")).unwrap(),
        "in the volume\n"
    );
    // It went into the volume, not the container's layer: another
    // container mounting it elsewhere reads it.
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "-v",
        "shared:/srv",
        IMAGE,
        "sleep",
        "600",
    ]);
    let (code, out, err) = daemon.docker(&["exec", "live", "cat", "/srv/file"]);
    assert_eq!((code, out.as_str()), (0, "in the volume\n"), "{err}");
    let (code, _, err) = daemon.docker(&["cp", &file, "live:/srv/second"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = daemon.docker(&["exec", "live", "cat", "/srv/second"]);
    assert_eq!((code, out.as_str()), (0, "in the volume\n"), "{err}");
    let (code, out, err) = daemon.docker(&["cp", "live:/srv", "-"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        entries(out.as_bytes()),
        [
            ("srv/".into(), String::new()),
            ("srv/file".into(), "in the volume\n".into()),
            ("srv/second".into(), "in the volume\n".into()),
        ]
    );
    // The root's archive goes into the volume too, as the container sees it.
    let root = daemon
        .docker_command(&["cp", "made:/", "-"])
        .output()
        .unwrap();
    assert!(root.status.success());
    let mut archive = tar::Archive::new(&root.stdout[..]);
    let second = archive
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|entry| entry.path().unwrap() == std::path::Path::new("./data/second"));
    let text = std::io::read_to_string(second.expect("./data/second in the root's tar")).unwrap();
    assert_eq!(text, "in the volume\n");
    // What the copy mounted is gone with it; the host never saw it.
    assert_eq!(
        host_mounts_under(&daemon.root().join("volumes")),
        Vec::<String>::new()
    );
    daemon.keel_ok(&["rm", "-f", "live"]);
    daemon.keel_ok(&["rm", "-f", "made"]);
}

#[test]
fn docker_cp_into_a_bind_writes_the_host_directory_through_the_mount() {
    let daemon = TestDaemon::with_busybox();
    let bound = daemon.path("bound");
    std::fs::create_dir(&bound).unwrap();
    std::fs::write(bound.join("from-host"), "host side\n").unwrap();
    let file = daemon.path("file");
    std::fs::write(&file, "copied in\n").unwrap();
    let file = file.display().to_string();
    let bind = |target: &str| format!("{}:{target}", bound.display());
    daemon.keel_ok(&[
        "create",
        "--name",
        "made",
        "-v",
        &bind("/srv/bound"),
        IMAGE,
        "true",
    ]);
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "-v",
        &bind("/mnt/b"),
        IMAGE,
        "sleep",
        "600",
    ]);
    for (target, name) in [("made:/srv/bound/", "file"), ("live:/mnt/b/live", "live")] {
        let (code, _, err) = daemon.docker(&["cp", &file, target]);
        assert_eq!(code, 0, "{target}: {err}");
        assert_eq!(
            std::fs::read_to_string(bound.join(name)).unwrap(),
            "copied in\n",
            "{target}"
        );
    }
    let (code, out, err) = daemon.docker(&["exec", "live", "cat", "/mnt/b/file"]);
    assert_eq!((code, out.as_str()), (0, "copied in\n"), "{err}");
    for source in ["made:/srv/bound/from-host", "live:/mnt/b/from-host"] {
        let (code, out, err) = daemon.docker(&["cp", source, "-"]);
        assert_eq!(code, 0, "{source}: {err}");
        assert_eq!(
            entries(out.as_bytes()),
            [("from-host".into(), "host side\n".into())],
            "{source}"
        );
    }
    // Its name files are the ones it runs with, as in Docker.
    let id = daemon.keel_ok(&["inspect", "-f", "{{.Id}}", "live"]);
    let (code, out, err) = daemon.docker(&["cp", "live:/etc/hostname", "-"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        entries(out.as_bytes()),
        [("hostname".into(), format!("{}\n", &id[..12]))]
    );
    assert_eq!(host_mounts_under(&bound), Vec::<String>::new());
    daemon.keel_ok(&["rm", "-f", "live"]);
    daemon.keel_ok(&["rm", "-f", "made"]);
}

#[test]
fn docker_cp_reaches_the_tmpfs_of_a_running_container_and_beneath_it_once_stopped() {
    let daemon = TestDaemon::with_busybox();
    let file = daemon.path("file");
    std::fs::write(&file, "into the tmpfs\n").unwrap();
    let file = file.display().to_string();
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "--tmpfs",
        "/scratch",
        IMAGE,
        "sh",
        "-c",
        "echo made-inside > /scratch/inside; sleep 600",
    ]);
    exec_until(&daemon, "live", &["-f", "/scratch/inside"]);
    let (code, _, err) = daemon.docker(&["cp", &file, "live:/scratch/"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = daemon.docker(&["exec", "live", "cat", "/scratch/file"]);
    assert_eq!((code, out.as_str()), (0, "into the tmpfs\n"), "{err}");
    let (code, out, err) = daemon.docker(&["cp", "live:/scratch", "-"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        entries(out.as_bytes()),
        [
            ("scratch/".into(), String::new()),
            ("scratch/file".into(), "into the tmpfs\n".into()),
            ("scratch/inside".into(), "made-inside\n".into()),
        ]
    );
    // Stopped, its tmpfs is gone, and a copy sees the directory beneath,
    // as Docker's does.
    daemon.keel_ok(&["kill", "live"]);
    let (code, out, err) = daemon.docker(&["cp", "live:/scratch", "-"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        entries(out.as_bytes()),
        [("scratch/".into(), String::new())]
    );
    daemon.keel_ok(&["rm", "-f", "live"]);
}

#[test]
fn writes_into_read_only_volumes_binds_and_roots_are_refused_in_dockers_words() {
    let daemon = TestDaemon::with_busybox();
    let bound = daemon.path("bound");
    std::fs::create_dir(&bound).unwrap();
    std::fs::write(bound.join("kept"), "kept\n").unwrap();
    let file = daemon.path("file");
    std::fs::write(&file, "x\n").unwrap();
    let file = file.display().to_string();
    let ro_bind = format!("{}:/bound:ro", bound.display());
    let mounts = ["-v", "data:/ro:ro", "-v", ro_bind.as_str()];
    daemon.keel_ok(&[&["create", "--name", "made"], &mounts[..], &[IMAGE, "true"]].concat());
    daemon.keel_ok(
        &[
            &["run", "-d", "--name", "live"],
            &mounts[..],
            &[IMAGE, "sleep", "600"],
        ]
        .concat(),
    );
    daemon.keel_ok(&[
        "create",
        "--name",
        "rofs",
        "--read-only",
        "-v",
        "rw:/rw",
        IMAGE,
        "true",
    ]);
    for (target, words) in [
        ("made:/ro/", "mounted volume is marked read-only"),
        ("made:/bound", "mounted volume is marked read-only"),
        ("live:/ro/", "mounted volume is marked read-only"),
        ("live:/bound/", "mounted volume is marked read-only"),
        ("rofs:/tmp/", "container rootfs is marked read-only"),
    ] {
        let (code, _, err) = daemon.docker(&["cp", &file, target]);
        assert_ne!(code, 0, "{target}");
        assert!(
            err.contains(&format!("Error response from daemon: {words}")),
            "{target}: {err}"
        );
    }
    // A read-write volume of a read-only container takes writes; the
    // read-only ones can still be read.
    let (code, _, err) = daemon.docker(&["cp", &file, "rofs:/rw/"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = daemon.docker(&["cp", "live:/bound/kept", "-"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(entries(out.as_bytes()), [("kept".into(), "kept\n".into())]);
    // A tar unpacked above a read-only mount cannot write into it either.
    let (code, out, err) = python(
        &daemon,
        r#"
try:
    client.containers.get("live").put_archive("/ro", b"")
except docker.errors.APIError as e:
    print(e.status_code, e.explanation)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    info = tarfile.TarInfo("bound/evil"); info.size = 4
    t.addfile(info, io.BytesIO(b"evil"))
for name in ["made", "live"]:
    try:
        client.containers.get(name).put_archive("/", buf.getvalue())
        print("accepted")
    except docker.errors.APIError as e:
        print(e.status_code, "Read-only file system" in e.explanation)
"#,
    );
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "400 mounted volume is marked read-only\n500 True\n500 True\n"
        ),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(&bound)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["kept"]);
    for name in ["live", "made", "rofs"] {
        daemon.keel_ok(&["rm", "-f", name]);
    }
}

#[test]
fn symlinks_in_volumes_and_binds_to_etc_lead_to_the_containers_etc_not_the_hosts() {
    let daemon = TestDaemon::with_busybox();
    // On the host, the bind's links lead to the host's /etc and to a
    // host directory the container does not have.
    let bound = daemon.path("bound");
    std::fs::create_dir(&bound).unwrap();
    std::os::unix::fs::symlink("/etc", bound.join("escape")).unwrap();
    let host_only = daemon.path("host-only");
    std::fs::create_dir(&host_only).unwrap();
    std::fs::write(host_only.join("secret"), "host secret\n").unwrap();
    std::os::unix::fs::symlink(&host_only, bound.join("away")).unwrap();
    let bind = format!("{}:/bound", bound.display());
    let make_links = "echo container-marker > /etc/keel-marker; ln -s /etc /data/link; sleep 600";
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "-v",
        "data:/data",
        "-v",
        &bind,
        IMAGE,
        "sh",
        "-c",
        make_links,
    ]);
    exec_until(&daemon, "box", &["-L", "/data/link"]);
    // The same links, in a container that never ran: its root, seen with
    // its mounts.
    daemon.keel_ok(&[
        "create",
        "--name",
        "made",
        "-v",
        "data:/data",
        "-v",
        &bind,
        IMAGE,
        "true",
    ]);
    let host_passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let busybox_passwd = "root:x:0:0:root:/root:/bin/sh\n";
    let got = daemon.path("got");
    for (source, starts) in [
        ("box:/data/link/keel-marker", "container-marker\n"),
        ("box:/bound/escape/keel-marker", "container-marker\n"),
        ("box:/data/link/passwd", busybox_passwd),
        ("made:/data/link/passwd", busybox_passwd),
        ("made:/bound/escape/passwd", busybox_passwd),
    ] {
        let _ = std::fs::remove_file(&got);
        let (code, _, err) = daemon.docker(&["cp", "-L", source, &got.display().to_string()]);
        assert_eq!(code, 0, "{source}: {err}");
        let copied = std::fs::read_to_string(&got).unwrap();
        assert!(copied.starts_with(starts), "{source}: {copied}");
        assert_ne!(copied, host_passwd, "{source}");
    }
    // Writes through them land in the container's /etc.
    let planted = daemon.path("planted-by-keel-cp-test");
    std::fs::write(&planted, "planted\n").unwrap();
    let planted = planted.display().to_string();
    for target in ["box:/bound/escape/", "box:/data/link/"] {
        let (code, _, err) = daemon.docker(&["cp", &planted, target]);
        assert_eq!(code, 0, "{target}: {err}");
    }
    let (code, out, err) = daemon.docker(&["exec", "box", "cat", "/etc/planted-by-keel-cp-test"]);
    assert_eq!((code, out.as_str()), (0, "planted\n"), "{err}");
    assert!(!std::path::Path::new("/etc/planted-by-keel-cp-test").exists());
    assert!(!std::path::Path::new("/etc/keel-marker").exists());
    // A link to a host directory leads nowhere in the container.
    for name in ["box", "made"] {
        let (code, _, err) = daemon.docker(&["cp", &format!("{name}:/bound/away/secret"), "-"]);
        assert_ne!(code, 0);
        assert!(
            err.contains(&format!(
                "Could not find the file /bound/away/secret in container {name}"
            )),
            "{err}"
        );
        let (code, _, _) = daemon.docker(&["cp", &planted, &format!("{name}:/bound/away/")]);
        assert_ne!(code, 0);
    }
    let left: Vec<_> = std::fs::read_dir(&host_only)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["secret"]);
    // Where a link leads is told as the container sees it.
    let (code, out, err) = python(
        &daemon,
        r#"
_, stat = client.containers.get("box").get_archive("/data/link")
print(stat["linkTarget"])
"#,
    );
    assert_eq!((code, out.as_str()), (0, "/etc\n"), "{err}");
    daemon.keel_ok(&["rm", "-f", "box"]);
    daemon.keel_ok(&["rm", "-f", "made"]);
}

/// The owners of a tar's entries: (name, uid, gid).
fn owners(tar: &[u8]) -> Vec<(String, u64, u64)> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let header = entry.header();
            (
                entry.path().unwrap().display().to_string(),
                header.uid().unwrap(),
                header.gid().unwrap(),
            )
        })
        .collect()
}

#[test]
fn cp_a_owns_the_files_as_the_containers_user_from_its_passwd() {
    let daemon = TestDaemon::with_busybox();
    let dir = daemon.path("dir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("file"), "owned\n").unwrap();
    std::os::unix::fs::chown(&dir, Some(42), Some(43)).unwrap();
    std::os::unix::fs::chown(dir.join("file"), Some(42), Some(43)).unwrap();
    let dir = dir.display().to_string();
    for (name, user) in [
        ("number", "1234"),
        ("name", "user"),
        ("pair", "1234:nogroup"),
        ("ghost", "ghost"),
        ("nobody-set", ""),
    ] {
        let mut args = vec!["create", "--name", name];
        if !user.is_empty() {
            args.extend(["--user", user]);
        }
        args.extend([IMAGE, "true"]);
        daemon.keel_ok(&args);
    }
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "--user",
        "1234",
        "-v",
        "data:/data",
        IMAGE,
        "sleep",
        "600",
    ]);
    for (tool, target, owner) in [
        ("docker", "number:/tmp", (1234, 0)),
        ("keel", "number:/root", (1234, 0)),
        ("docker", "name:/tmp", (1000, 1000)),
        ("docker", "pair:/tmp", (1234, 65534)),
        // Without a user, the archive's owners stay.
        ("docker", "nobody-set:/tmp", (42, 43)),
        // Into a volume of a running container, too.
        ("docker", "live:/data", (1234, 0)),
    ] {
        let args = ["cp", "-a", dir.as_str(), target];
        let (code, _, err) = match tool {
            "docker" => daemon.docker(&args),
            _ => daemon.keel(&args),
        };
        assert_eq!(code, 0, "{tool} {target}: {err}");
        let (code, out, err) = daemon.docker(&["cp", &format!("{target}/dir"), "-"]);
        assert_eq!(code, 0, "{target}: {err}");
        let (uid, gid) = owner;
        assert_eq!(
            owners(out.as_bytes()),
            [("dir/".into(), uid, gid), ("dir/file".into(), uid, gid)],
            "{tool} {target}"
        );
    }
    // Without -a, the archive's owners, whoever the container runs as.
    let (code, _, err) = daemon.docker(&["cp", &dir, "number:/home"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = daemon.docker(&["cp", "number:/home/dir/file", "-"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(owners(out.as_bytes()), [("file".into(), 42, 43)]);
    // A user its /etc/passwd lacks is refused, and nothing is written.
    let (code, _, err) = daemon.docker(&["cp", "-a", &dir, "ghost:/tmp"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("failed to look up user \"ghost\" in container"),
        "{err}"
    );
    let (code, _, _) = daemon.docker(&["cp", "ghost:/tmp/dir", "-"]);
    assert_ne!(code, 0);
    for name in ["live", "number", "name", "pair", "ghost", "nobody-set"] {
        daemon.keel_ok(&["rm", "-f", name]);
    }
}

#[test]
fn docker_py_put_and_get_archive_reach_volumes_binds_and_tmpfs() {
    let daemon = TestDaemon::with_busybox();
    let bound = daemon.path("bound");
    std::fs::create_dir(&bound).unwrap();
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "-v",
        "data:/data",
        "-v",
        &format!("{}:/bound", bound.display()),
        "--tmpfs",
        "/scratch",
        IMAGE,
        "sleep",
        "600",
    ]);
    let (code, out, err) = python(
        &daemon,
        r#"
c = client.containers.get("box")
for into in ["/data", "/bound", "/scratch"]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = ("into " + into).encode()
        info = tarfile.TarInfo("hello.txt"); info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    c.put_archive(into, buf.getvalue())
    stream, stat = c.get_archive(into + "/hello.txt")
    got = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
    print(stat["name"], stat["size"], got.extractfile("hello.txt").read().decode())
"#,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "hello.txt 10 into /data\nhello.txt 11 into /bound\nhello.txt 13 into /scratch\n"
    );
    assert_eq!(
        std::fs::read_to_string(bound.join("hello.txt")).unwrap(),
        "into /bound"
    );
    let (code, out, err) = daemon.docker(&[
        "exec",
        "box",
        "cat",
        "/data/hello.txt",
        "/scratch/hello.txt",
    ]);
    assert_eq!(
        (code, out.as_str()),
        (0, "into /datainto /scratch"),
        "{err}"
    );
    daemon.keel_ok(&["rm", "-f", "box"]);
}
