//! Builds from Dockerfiles through the daemon: the docker CLI's classic
//! builder against Keel's socket, and `keel build`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{BUSYBOX, TestDaemon};

/// A context directory `name` in the test's directory with these files.
fn context(daemon: &TestDaemon, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = daemon.path(name);
    for (path, content) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    dir
}

fn docker_build(daemon: &TestDaemon, args: &[&str], dir: &Path) -> (i32, String, String) {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    all.push(dir.to_str().unwrap());
    let mut command = daemon.docker_command(&all);
    command.env("DOCKER_BUILDKIT", "0");
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_docker_cli_builds_runs_and_caches_a_dockerfile_through_keels_socket() {
    let daemon = TestDaemon::with_busybox();
    let dockerfile = format!(
        "FROM {BUSYBOX}\n\
         ARG GREETING=hello\n\
         ENV TARGET=world\n\
         WORKDIR /app\n\
         COPY greeting.txt ./\n\
         RUN echo \"$GREETING $TARGET\" > said && cat greeting.txt said\n\
         LABEL stage=built\n\
         CMD [\"cat\", \"/app/said\"]\n"
    );
    let dir = context(
        &daemon,
        "hello",
        &[
            ("Dockerfile", &dockerfile),
            ("greeting.txt", "from the context\n"),
        ],
    );
    let (code, out, err) = docker_build(&daemon, &["-t", "keel-test/hello"], &dir);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Step 1/8 : FROM keel-test/busybox"), "{out}");
    assert!(out.contains(" ---> Running in "), "{out}");
    assert!(out.contains("from the context\nhello world\n"), "{out}");
    assert!(
        out.contains("Successfully tagged keel-test/hello:latest"),
        "{out}"
    );
    let (code, run, err) = daemon.docker(&["run", "--rm", "keel-test/hello"]);
    assert_eq!((code, run.as_str()), (0, "hello world\n"), "{err}");
    let (_, inspected, _) = daemon.docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.WorkingDir}}|{{.Config.Labels.stage}}|{{len .RootFS.Layers}}",
        "keel-test/hello",
    ]);
    // busybox's layer, then WORKDIR's new directory, COPY's file and RUN's.
    assert_eq!(inspected, "/app|built|4\n");

    // Again: every step that makes a layer comes from the cache.
    let (code, again, err) = docker_build(&daemon, &["-t", "keel-test/hello"], &dir);
    assert_eq!(code, 0, "{again}{err}");
    assert_eq!(again.matches(" ---> Using cache").count(), 3, "{again}");
    assert!(!again.contains("Running in"), "{again}");

    // A changed build arg runs the RUN again, but the COPY stays cached.
    let (code, changed, err) = docker_build(
        &daemon,
        &["-t", "keel-test/hello", "--build-arg", "GREETING=bye"],
        &dir,
    );
    assert_eq!(code, 0, "{changed}{err}");
    assert_eq!(changed.matches(" ---> Using cache").count(), 2, "{changed}");
    let (_, run, _) = daemon.docker(&["run", "--rm", "keel-test/hello"]);
    assert_eq!(run, "bye world\n");
}

#[test]
fn a_failing_run_is_docker_s_error_and_leaves_no_image_container_or_snapshot() {
    let daemon = TestDaemon::with_busybox();
    let dir = context(
        &daemon,
        "failing",
        &[(
            "Dockerfile",
            &format!("FROM {BUSYBOX}\nRUN echo before; exit 3\n"),
        )],
    );
    let images = daemon.keel_ok(&["images", "-q"]);
    let (code, out, err) = docker_build(&daemon, &["-t", "keel-test/failing"], &dir);
    // The docker CLI exits with the step's code, as against Docker.
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("before"), "{out}");
    assert!(
        err.contains("The command '/bin/sh -c echo before; exit 3' returned a non-zero code: 3"),
        "{err}"
    );
    assert_eq!(daemon.keel_ok(&["images", "-q"]), images);
    assert_eq!(daemon.keel_ok(&["ps", "-aq"]), "");
    let snapshots = daemon.root().join("image/snapshots");
    assert_eq!(fs::read_dir(snapshots).unwrap().count(), 0);
}

#[test]
fn bad_dockerfiles_are_refused_naming_the_line() {
    let daemon = TestDaemon::with_busybox();
    for (dockerfile, expected) in [
        (
            format!("FROM {BUSYBOX}\nFROBNICATE x\n"),
            "dockerfile parse error on line 2: unknown instruction: FROBNICATE",
        ),
        (
            format!("FROM {BUSYBOX}\nCOPY ../outside /x\n"),
            "forbidden path outside the build context: ../outside",
        ),
        (
            format!("FROM {BUSYBOX}\nRUN --mount=type=cache,target=/c true\n"),
            "unknown flag: --mount for RUN",
        ),
        (
            "FROM keel-test/absent\n".to_owned(),
            "pull access denied for keel-test/absent",
        ),
    ] {
        let dir = context(&daemon, "bad", &[("Dockerfile", &dockerfile)]);
        let (code, out, err) = docker_build(&daemon, &["-t", "keel-test/bad"], &dir);
        assert_eq!(code, 1, "{dockerfile}: {out}{err}");
        assert!(err.contains(expected), "{dockerfile}: {err}");
        assert!(err.contains("line "), "the line is named: {err}");
    }
    // ADD would unpack an archive; until Keel does, it says so.
    let tar_like = format!("{}ustar", " ".repeat(257));
    let dir = context(
        &daemon,
        "bad-add",
        &[
            (
                "Dockerfile",
                &format!("FROM {BUSYBOX}\nADD layer.tar /x/\n"),
            ),
            ("layer.tar", &tar_like),
        ],
    );
    let (code, _, err) = docker_build(&daemon, &["-t", "keel-test/bad"], &dir);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("ADD of the archive layer.tar is not supported yet (Docker would unpack it)"),
        "{err}"
    );
    let (code, _, _) = daemon.docker(&["image", "inspect", "keel-test/bad"]);
    assert_ne!(code, 0, "a failed build tagged nothing");
}

#[test]
fn keel_build_builds_only_the_stages_the_target_needs_with_heredocs_and_owners() {
    let daemon = TestDaemon::with_busybox();
    let dockerfile = format!(
        "ARG BASE={BUSYBOX}\n\
         FROM $BASE AS builder\n\
         RUN mkdir -p /out /etc && echo built > /out/artifact \\\n\
           && echo app:x:1234:1234::/:/bin/sh >> /etc/passwd && echo app:x:1234: >> /etc/group\n\
         \n\
         FROM {BUSYBOX} AS unused\n\
         RUN echo this stage must not run; exit 9\n\
         \n\
         FROM builder AS final\n\
         COPY --from=builder --chown=app:app --chmod=0640 /out/artifact /srv/\n\
         COPY <<EOF /srv/note\n\
         written by a heredoc\n\
         EOF\n\
         RUN <<EOF\n\
         set -e\n\
         stat -c '%u:%g %a' /srv/artifact > /srv/owner\n\
         EOF\n\
         ENTRYPOINT [\"cat\"]\n\
         CMD [\"/srv/owner\"]\n"
    );
    let dir = context(&daemon, "stages", &[("Dockerfile", &dockerfile)]);
    let iid = daemon.path("iid");
    let out = daemon.keel_ok(&[
        "build",
        "-t",
        "keel-test/stages:1",
        "--iidfile",
        iid.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    assert!(!out.contains("this stage must not run"), "{out}");
    let id = fs::read_to_string(&iid).unwrap();
    assert!(
        out.contains(&format!("Successfully built {}", &id[7..19])),
        "{out}"
    );
    let owner = daemon.keel_ok(&["run", "--rm", "keel-test/stages:1"]);
    assert_eq!(owner, "1234:1234 640\n");
    let note = daemon.keel_ok(&["run", "--rm", "keel-test/stages:1", "/srv/note"]);
    assert_eq!(note, "written by a heredoc\n");

    // --target builds the stage named and what it needs, and no more.
    let out = daemon.keel_ok(&[
        "build",
        "-q",
        "--target",
        "builder",
        "-t",
        "keel-test/stages:builder",
        dir.to_str().unwrap(),
    ]);
    assert!(out.trim().starts_with("sha256:"), "{out}");
    let built = daemon.keel_ok(&[
        "run",
        "--rm",
        "keel-test/stages:builder",
        "cat",
        "/out/artifact",
    ]);
    assert_eq!(built, "built\n");
    let (code, _, err) = daemon.keel(&["build", "--target", "nowhere", dir.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("target stage \"nowhere\" could not be found"),
        "{err}"
    );
}

#[test]
fn docker_py_builds_with_its_streamed_log_and_raises_build_error_with_dockers_message() {
    let daemon = TestDaemon::with_busybox();
    let good = context(
        &daemon,
        "py-good",
        &[(
            "Dockerfile",
            &format!("FROM {BUSYBOX}\nRUN echo from-run\n"),
        )],
    );
    let bad = context(
        &daemon,
        "py-bad",
        &[("Dockerfile", &format!("FROM {BUSYBOX}\nRUN exit 7\n"))],
    );
    let script = format!(
        r#"
import docker
client = docker.DockerClient(base_url="unix://{socket}", version="auto")
image, log = client.images.build(path="{good}", tag="keel-test/py-built")
print(image.tags)
print(any("from-run" in entry.get("stream", "") for entry in log))
try:
    client.images.build(path="{bad}")
except docker.errors.BuildError as error:
    print(error.msg)
"#,
        socket = daemon.socket().display(),
        good = good.display(),
        bad = bad.display(),
    );
    let (code, out, err) =
        common::output(std::process::Command::new("python3").args(["-c", &script]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "['keel-test/py-built:latest']\nTrue\nThe command '/bin/sh -c exit 7' returned a non-zero code: 7\n"
    );
}

#[test]
fn a_context_symlink_to_a_host_path_copies_nothing_of_the_host() {
    let daemon = TestDaemon::with_busybox();
    let secret = daemon.path("host-secret");
    fs::write(&secret, "host only\n").unwrap();
    let dir = context(
        &daemon,
        "links",
        &[(
            "Dockerfile",
            &format!("FROM {BUSYBOX}\nCOPY escape /copied\n"),
        )],
    );
    std::os::unix::fs::symlink(&secret, dir.join("escape")).unwrap();
    // The link resolves inside the context, where that path is not.
    let (code, _, err) = daemon.keel(&["build", "-t", "keel-test/links", dir.to_str().unwrap()]);
    assert_ne!(code, 0, "the host's file was copied");
    assert!(err.contains("not found"), "{err}");

    // An absolute link target means the context's own root.
    fs::create_dir(dir.join("real")).unwrap();
    fs::write(dir.join("real/inside"), "context\n").unwrap();
    std::os::unix::fs::symlink("/real", dir.join("hostdir")).unwrap();
    fs::write(
        dir.join("Dockerfile"),
        format!("FROM {BUSYBOX}\nCOPY hostdir/inside /copied\n"),
    )
    .unwrap();
    daemon.keel_ok(&["build", "-t", "keel-test/links", dir.to_str().unwrap()]);
    let copied = daemon.keel_ok(&["run", "--rm", "keel-test/links", "cat", "/copied"]);
    assert_eq!(copied, "context\n");
}

#[test]
fn keel_build_leaves_out_what_dockerignore_excludes_and_keeps_its_exceptions() {
    let daemon = TestDaemon::with_busybox();
    let dir = context(
        &daemon,
        "ignored",
        &[
            ("Dockerfile", &format!("FROM {BUSYBOX}\nCOPY . /ctx/\n")),
            (
                ".dockerignore",
                "# not the logs\nlogs\n!logs/keep.log\n**/*.tmp\nDockerfile\n",
            ),
            ("app/main.c", "int main;\n"),
            ("app/scratch.tmp", "temporary\n"),
            ("logs/keep.log", "kept\n"),
            ("logs/other.log", "left out\n"),
        ],
    );
    daemon.keel_ok(&["build", "-t", "keel-test/ignored", dir.to_str().unwrap()]);
    let listed = daemon.keel_ok(&[
        "run",
        "--rm",
        "keel-test/ignored",
        "find",
        "/ctx",
        "-type",
        "f",
    ]);
    let mut files: Vec<&str> = listed.lines().collect();
    files.sort();
    // The Dockerfile is sent even when excluded, as the docker CLI does.
    assert_eq!(
        files,
        [
            "/ctx/.dockerignore",
            "/ctx/Dockerfile",
            "/ctx/app/main.c",
            "/ctx/logs/keep.log"
        ]
    );
}

#[test]
fn the_docker_cli_builds_with_a_dockerfile_from_stdin() {
    let daemon = TestDaemon::with_busybox();
    let dir = context(&daemon, "stdin", &[("data.txt", "from the context\n")]);
    let dockerfile = format!("FROM {BUSYBOX}\nCOPY data.txt /\nCMD [\"cat\", \"/data.txt\"]\n");
    let mut command = daemon.docker_command(&[
        "build",
        "-q",
        "-f",
        "-",
        "-t",
        "keel-test/stdin",
        dir.to_str().unwrap(),
    ]);
    command.env("DOCKER_BUILDKIT", "0");
    let (code, out, err) = common::fed(&mut command, &dockerfile);
    assert_eq!(code, 0, "{out}{err}");
    let (code, run, err) = daemon.docker(&["run", "--rm", "keel-test/stdin"]);
    assert_eq!((code, run.as_str()), (0, "from the context\n"), "{err}");
}
