//! Builds from Dockerfiles through the daemon: the docker CLI's classic
//! builder against Keel's socket, and `keel build`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{BUSYBOX, TestDaemon};
use keel_testkit::registry::Registry;

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
            format!("FROM {BUSYBOX}\nRUN --chmod=755 true\n"),
            "unknown flag: --chmod for RUN",
        ),
        (
            format!("FROM {BUSYBOX}\nRUN --mount=type=ssh true\n"),
            "RUN --mount=type=ssh is not supported yet",
        ),
        (
            format!("FROM {BUSYBOX}\nRUN --mount=type=bind,target=/x,from=nowhere true\n"),
            "--from=nowhere: no stage or image of that name",
        ),
        (
            format!("FROM {BUSYBOX}\nRUN --mount=type=cache,id=x true\n"),
            "a target is required (target=PATH)",
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
    let files_of = |image: &str| {
        let listed = daemon.keel_ok(&["run", "--rm", image, "find", "/ctx", "-type", "f"]);
        let mut files: Vec<String> = listed.lines().map(str::to_owned).collect();
        files.sort();
        files
    };
    let files = files_of("keel-test/ignored");
    // An excluded Dockerfile builds but is not copied, as dockerd's.
    assert_eq!(
        files,
        [
            "/ctx/.dockerignore",
            "/ctx/app/main.c",
            "/ctx/logs/keep.log"
        ]
    );
    // The docker CLI sends its tar with the Dockerfile in it anyway: it is
    // taken out as dockerd does, so both paths copy the same files.
    let (code, out, err) = docker_build(&daemon, &["-t", "keel-test/ignored-sent"], &dir);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(files_of("keel-test/ignored-sent"), files);
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

/// Writes the "jar" of a layered Spring Boot app (a zip `busybox unzip`
/// extracts): dependencies, the loader, snapshot dependencies and the
/// application's classes, each under the directory its layer is named by;
/// `class` is the application class's text.
fn write_jar(path: &Path, class: &str) {
    let script = r#"
import random, sys, zipfile
path, cls = sys.argv[1], sys.argv[2]
rng = random.Random(7)
with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as jar:
    for i in range(4):
        jar.writestr(f"dependencies/BOOT-INF/lib/dep-{i}.jar", rng.randbytes(256 * 1024))
    jar.writestr("spring-boot-loader/org/springframework/boot/loader/Launcher.class", rng.randbytes(4096))
    jar.writestr("snapshot-dependencies/BOOT-INF/lib/snapshot.jar", rng.randbytes(8192))
    jar.writestr("application/BOOT-INF/classes/App.class", cls.encode())
"#;
    let (code, _, err) = common::output(std::process::Command::new("python3").args([
        "-c",
        script,
        path.to_str().unwrap(),
        class,
    ]));
    assert_eq!(code, 0, "{err}");
}

fn diff_ids(daemon: &TestDaemon, image: &str) -> Vec<String> {
    let (code, out, err) = daemon.docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        image,
    ]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn a_layered_app_rebuilt_after_one_class_changed_keeps_its_lower_layers_and_pushes_one_blob() {
    let registry = Registry::start();
    let daemon = TestDaemon::with_busybox();
    let dockerfile = format!(
        "FROM {BUSYBOX} AS builder\n\
         WORKDIR /build\n\
         COPY app.jar .\n\
         RUN unzip -q app.jar -d extracted\n\
         FROM {BUSYBOX}\n\
         WORKDIR /app\n\
         COPY --from=builder /build/extracted/dependencies/ ./\n\
         COPY --from=builder /build/extracted/spring-boot-loader/ ./\n\
         COPY --from=builder /build/extracted/snapshot-dependencies/ ./\n\
         COPY --from=builder /build/extracted/application/ ./\n\
         CMD [\"cat\", \"/app/BOOT-INF/classes/App.class\"]\n"
    );
    let dir = context(&daemon, "layered", &[("Dockerfile", &dockerfile)]);
    write_jar(&dir.join("app.jar"), "class v1");
    let image = format!("{}/layered/app", registry.address);
    let build = |tag: &str| {
        daemon.keel_ok(&[
            "build",
            "-t",
            &format!("{image}:{tag}"),
            dir.to_str().unwrap(),
        ])
    };
    build("1");
    let first = diff_ids(&daemon, &format!("{image}:1"));
    let id = |tag: &str| {
        daemon.keel_ok(&[
            "image",
            "inspect",
            "--format",
            "{{.Id}}",
            &format!("{image}:{tag}"),
        ])
    };

    // Nothing changed: every step is cached and the image is the same one.
    let again = build("1");
    assert_eq!(again.matches(" ---> Using cache").count(), 8, "{again}");
    assert!(!again.contains("Running in"), "{again}");
    let first_id = id("1");
    build("same");
    assert_eq!(
        id("same"),
        first_id,
        "a rebuild of nothing new is the same image"
    );
    daemon.keel_ok(&["push", &format!("{image}:1")]);

    // One class changed: the builder stage runs again, the final stage's
    // lower layers are the same bytes, so only the application's is new.
    write_jar(&dir.join("app.jar"), "class v2");
    let out = build("2");
    assert!(
        out.contains("Running in"),
        "the builder stage ran again: {out}"
    );
    let second = diff_ids(&daemon, &format!("{image}:2"));
    assert_eq!(second.len(), first.len(), "{first:?} {second:?}");
    assert_eq!(second[..second.len() - 1], first[..first.len() - 1]);
    assert_ne!(second.last(), first.last());
    let pushed = daemon.keel_ok(&["push", &format!("{image}:2")]);
    assert_eq!(pushed.matches(": Pushed").count(), 1, "{pushed}");
    let ran = daemon.keel_ok(&["run", "--rm", &format!("{image}:2")]);
    assert_eq!(ran, "class v2");

    // The pushed image, pulled by another daemon, is the one built.
    daemon.keel_ok(&["rmi", &format!("{image}:2")]);
    let other = TestDaemon::start();
    other.keel_ok(&["pull", &format!("{image}:2")]);
    assert_eq!(diff_ids(&other, &format!("{image}:2")), second);
    let ran = other.keel_ok(&["run", "--rm", &format!("{image}:2")]);
    assert_eq!(ran, "class v2");
}

#[test]
fn a_built_layer_changed_on_disk_is_refused_by_save_not_written_under_its_digest() {
    let daemon = TestDaemon::with_busybox();
    let dir = context(
        &daemon,
        "tampered",
        &[
            (
                "Dockerfile",
                &format!("FROM {BUSYBOX}\nCOPY payload.txt /\n"),
            ),
            ("payload.txt", "as built\n"),
        ],
    );
    daemon.keel_ok(&["build", "-t", "keel-test/tampered", dir.to_str().unwrap()]);
    let saved = daemon.path("saved.tar");
    daemon.keel_ok(&["save", "-o", saved.to_str().unwrap(), "keel-test/tampered"]);
    // The layer is kept as its directory only; its tar is made again.
    let layers = daemon.root().join("image/layers");
    let payload = fs::read_dir(&layers)
        .unwrap()
        .map(|entry| entry.unwrap().path().join("diff/payload.txt"))
        .find(|path| path.exists())
        .expect("the COPY's layer directory");
    fs::write(&payload, "changed behind the store's back\n").unwrap();
    let resaved = daemon.path("resaved.tar");
    let (code, _, err) = daemon.keel(&[
        "save",
        "-o",
        resaved.to_str().unwrap(),
        "keel-test/tampered",
    ]);
    assert_ne!(code, 0, "a changed layer was saved");
    assert!(err.contains("cut short"), "{err}");
    assert!(!resaved.exists(), "no partial archive is left");
    // The archive was streamed already: the daemon's log says why it ended.
    assert!(
        daemon.log().contains("no longer make its tar"),
        "{}",
        daemon.log()
    );
}

#[test]
fn keel_build_from_another_mount_namespace_sends_the_context_it_sees() {
    let daemon = TestDaemon::with_busybox();
    let dir = context(
        &daemon,
        "seen",
        &[
            ("Dockerfile", &format!("FROM {BUSYBOX}\nCOPY seen.txt /\n")),
            ("seen.txt", "the daemon's view\n"),
        ],
    );
    // The CLI runs where another directory is mounted at the same path:
    // the daemon must not build from what it sees there.
    let keel = daemon.keel_command(&[]);
    let env: Vec<String> = keel
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, v?.to_str()?)))
        .collect();
    let script = format!(
        "mount -t tmpfs tmpfs {dir} && printf 'FROM {BUSYBOX}\\nCOPY seen.txt /\\n' > {dir}/Dockerfile && \
         echo \"the client's view\" > {dir}/seen.txt && env {env} {keel} build -t keel-test/seen {dir}",
        dir = dir.display(),
        env = env.join(" "),
        keel = keel.get_program().to_str().unwrap(),
    );
    let (code, out, err) = common::output(std::process::Command::new("unshare").args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]));
    assert_eq!(code, 0, "{out}{err}");
    let copied = daemon.keel_ok(&["run", "--rm", "keel-test/seen", "cat", "/seen.txt"]);
    assert_eq!(copied, "the client's view\n");
}

#[test]
fn run_cache_mounts_are_kept_between_builds_and_no_mount_lands_in_a_layer() {
    let daemon = TestDaemon::with_busybox();
    let dockerfile = format!(
        "FROM {BUSYBOX}\n\
         ARG ROUND\n\
         RUN --mount=type=cache,target=/cache,sharing=locked echo \"$ROUND\" >> /cache/rounds && cat /cache/rounds > /seen\n\
         RUN --mount=type=tmpfs,target=/scratch,size=1m touch /scratch/x && grep ' /scratch ' /proc/mounts > /tmpfs\n"
    );
    let dir = context(&daemon, "mounts", &[("Dockerfile", &dockerfile)]);
    let round = |n: &str| {
        daemon.keel_ok(&[
            "build",
            "--build-arg",
            &format!("ROUND={n}"),
            "-t",
            "keel-test/mounts",
            dir.to_str().unwrap(),
        ]);
        daemon.keel_ok(&["run", "--rm", "keel-test/mounts", "cat", "/seen"])
    };
    assert_eq!(round("1"), "1\n");
    assert_eq!(round("2"), "1\n2\n", "the cache outlived the first build");
    let tmpfs = daemon.keel_ok(&["run", "--rm", "keel-test/mounts", "cat", "/tmpfs"]);
    assert!(
        tmpfs.contains("tmpfs") && tmpfs.contains("size=1024k"),
        "{tmpfs}"
    );
    // What the mounts held is in no layer: their targets are empty.
    let left = daemon.keel_ok(&[
        "run",
        "--rm",
        "keel-test/mounts",
        "ls",
        "-A",
        "/cache",
        "/scratch",
    ]);
    assert_eq!(left, "/cache:\n\n/scratch:\n", "{left}");
    daemon.keel_ok(&["builder", "prune", "-f"]);
    assert_eq!(round("3"), "3\n", "prune took the cache away");
}

#[test]
fn system_df_counts_the_build_cache_as_docker_does_and_prune_empties_it() {
    let daemon = TestDaemon::with_busybox();
    let dir = context(
        &daemon,
        "df",
        &[(
            "Dockerfile",
            &format!("FROM {BUSYBOX}\nRUN dd if=/dev/zero of=/blob bs=1024 count=300\n"),
        )],
    );
    daemon.keel_ok(&["build", "-t", "keel-test/df", dir.to_str().unwrap()]);
    let format = "{{.Type}}|{{.TotalCount}}|{{.Size}}|{{.Reclaimable}}";
    let cache_row = || {
        let keel = daemon.keel_ok(&["system", "df", "--format", format]);
        let (code, docker, err) = daemon.docker(&["system", "df", "--format", format]);
        assert_eq!(code, 0, "{err}");
        let row = |text: &str| {
            text.lines()
                .find(|line| line.starts_with("Build Cache|"))
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(row(&keel), row(&docker), "keel and the docker CLI agree");
        row(&keel)
    };
    // The RUN's layer is the image's too: removing the cache frees nothing.
    assert_eq!(cache_row(), "Build Cache|1|0B|0B");
    daemon.keel_ok(&["rmi", "keel-test/df"]);
    assert_eq!(cache_row(), "Build Cache|1|307.2kB|307.2kB");
    daemon.keel_ok(&["builder", "prune", "-f"]);
    assert_eq!(cache_row(), "Build Cache|0|0B|0B");
}

#[test]
fn run_bind_mounts_show_the_contexts_kept_files_or_a_stages_read_only_and_key_the_step() {
    let daemon = TestDaemon::with_busybox();
    let dockerfile = format!(
        "FROM {BUSYBOX} AS tools\n\
         RUN mkdir /tools && echo 'echo tool ran' > /tools/tool.sh\n\
         FROM {BUSYBOX}\n\
         RUN --mount=type=bind,target=/src --mount=type=bind,from=tools,source=/tools,target=/t,rw \\\n\
             ls -A /src > /listed && cat /src/input.txt > /input && sh /t/tool.sh > /tool \\\n\
             && touch /t/written && if touch /src/x 2>/dev/null; then echo rw; else echo ro; fi > /src-mode\n"
    );
    let dir = context(
        &daemon,
        "binds",
        &[
            ("Dockerfile", &dockerfile),
            (".dockerignore", "secret.txt\n"),
            ("input.txt", "first\n"),
            ("secret.txt", "never in a RUN\n"),
        ],
    );
    let build = || daemon.keel_ok(&["build", "-t", "keel-test/binds", dir.to_str().unwrap()]);
    let cat = |path: &str| daemon.keel_ok(&["run", "--rm", "keel-test/binds", "cat", path]);
    build();
    assert_eq!(cat("/listed"), ".dockerignore\nDockerfile\ninput.txt\n");
    assert_eq!(cat("/input"), "first\n");
    assert_eq!(cat("/tool"), "tool ran\n");
    assert_eq!(cat("/src-mode"), "ro\n");
    // Neither mount's files, nor what was written into the rw one, stay.
    let left = daemon.keel_ok(&["run", "--rm", "keel-test/binds", "ls", "-A", "/src", "/t"]);
    assert_eq!(left, "/src:\n\n/t:\n", "{left}");
    daemon.keel_ok(&[
        "build",
        "--target",
        "tools",
        "-t",
        "keel-test/tools",
        dir.to_str().unwrap(),
    ]);
    let tools = daemon.keel_ok(&["run", "--rm", "keel-test/tools", "ls", "/tools"]);
    assert_eq!(tools, "tool.sh\n", "the rw bind wrote into a copy");

    // The bound files are the step's inputs: unchanged, it is cached;
    // changed, it runs again.
    let again = build();
    assert!(!again.contains("Running in"), "{again}");
    fs::write(dir.join("input.txt"), "second\n").unwrap();
    let changed = build();
    assert!(changed.contains("Running in"), "{changed}");
    assert_eq!(cat("/input"), "second\n");
}

#[test]
fn a_secret_mount_is_there_during_its_run_only_and_in_no_layer_or_history() {
    let daemon = TestDaemon::with_busybox();
    let secret = "s3cret-Keel-build-value";
    let secret_file = daemon.path("token.txt");
    fs::write(&secret_file, secret).unwrap();
    let dockerfile = format!(
        "FROM {BUSYBOX}\n\
         RUN --mount=type=secret,id=token sha256sum < /run/secrets/token > /file-sum && stat -c '%a %u:%g' /run/secrets/token > /file-mode\n\
         RUN --mount=type=secret,id=token,env=TOKEN,target=/etc/token,uid=1000,gid=100,mode=0440 \\\n\
             printf %s \"$TOKEN\" | sha256sum > /env-sum && stat -c '%a %u:%g' /etc/token > /target-mode\n\
         RUN --mount=type=secret,id=unknown if [ -e /run/secrets/unknown ]; then echo there; else echo absent; fi > /unknown\n"
    );
    let dir = context(&daemon, "secrets", &[("Dockerfile", &dockerfile)]);
    let src = format!("id=token,src={}", secret_file.display());
    daemon.keel_ok(&[
        "build",
        "--secret",
        &src,
        "-t",
        "keel-test/secrets",
        dir.to_str().unwrap(),
    ]);
    let cat = |path: &str| daemon.keel_ok(&["run", "--rm", "keel-test/secrets", "cat", path]);
    let sum = common::output(std::process::Command::new("sha256sum").arg(&secret_file)).1;
    let sum = sum.split_whitespace().next().unwrap().to_owned();
    assert_eq!(
        cat("/file-sum"),
        format!("{sum}  -\n"),
        "the file held the secret"
    );
    assert_eq!(
        cat("/env-sum"),
        format!("{sum}  -\n"),
        "the variable held the secret"
    );
    assert_eq!(
        cat("/file-mode"),
        "400 0:0\n",
        "BuildKit's default mode and owner"
    );
    assert_eq!(cat("/target-mode"), "440 1000:100\n");
    assert_eq!(
        cat("/unknown"),
        "absent\n",
        "a secret not given is left out"
    );
    // Its mount points are gone (the directory made for them stays, as
    // BuildKit's), and its bytes are in no layer, history or config.
    let left = daemon.keel_ok(&[
        "run",
        "--rm",
        "keel-test/secrets",
        "ls",
        "-A",
        "/run/secrets",
        "/etc",
    ]);
    assert!(
        !left.contains("token") && left.starts_with("/etc:\n"),
        "{left}"
    );
    let saved = daemon.path("secrets.tar");
    daemon.keel_ok(&["save", "-o", saved.to_str().unwrap(), "keel-test/secrets"]);
    let bytes = fs::read(&saved).unwrap();
    assert!(
        !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret is in the saved image"
    );
    let history = daemon.keel_ok(&["history", "--no-trunc", "keel-test/secrets"]);
    assert!(
        history.contains("sha256sum") && !history.contains(secret),
        "{history}"
    );
    // No tmpfs of a secret is left mounted.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = daemon.root().display().to_string();
    assert!(
        !mounts
            .lines()
            .any(|line| line.contains(&root) && line.contains("/mounts/new-")),
        "{mounts}"
    );

    // A required secret not given fails the step, naming it.
    let required = format!("FROM {BUSYBOX}\nRUN --mount=type=secret,id=npmrc,required true\n");
    let dir = context(&daemon, "required", &[("Dockerfile", &required)]);
    let (code, _, err) = daemon.keel(&["build", "-t", "keel-test/required", dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("line 2") && err.contains("secret npmrc: not found"),
        "{err}"
    );
    // So does a secret the CLI cannot read.
    let (code, _, err) = daemon.keel(&[
        "build",
        "--secret",
        "id=npmrc,src=/nonexistent/npmrc",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("secret npmrc: cannot read the file /nonexistent/npmrc"),
        "{err}"
    );
}

#[test]
fn independent_stages_run_at_the_same_time_and_tell_their_steps_in_order() {
    let daemon = TestDaemon::with_busybox();
    // Each stage notes the host's uptime (no time namespace) as it
    // starts and ends its RUN.
    let stage = |name: &str| {
        format!(
            "FROM {BUSYBOX} AS {name}\n\
             RUN read up _ < /proc/uptime && echo $up > /start && sleep 2 \\\n\
                 && read up _ < /proc/uptime && echo $up > /end && echo stage {name} done\n"
        )
    };
    let dockerfile = format!(
        "{}{}FROM {BUSYBOX}\nCOPY --from=a /start /a-start\nCOPY --from=a /end /a-end\n\
         COPY --from=b /start /b-start\nCOPY --from=b /end /b-end\n",
        stage("a"),
        stage("b")
    );
    let dir = context(&daemon, "parallel", &[("Dockerfile", &dockerfile)]);
    let out = daemon.keel_ok(&[
        "build",
        "--label",
        "tier=web",
        "-t",
        "keel-test/parallel",
        dir.to_str().unwrap(),
    ]);
    let time = |path: &str| -> f64 {
        let text = daemon.keel_ok(&["run", "--rm", "keel-test/parallel", "cat", path]);
        text.trim().parse().unwrap()
    };
    let (a_start, a_end, b_start, b_end) = (
        time("/a-start"),
        time("/a-end"),
        time("/b-start"),
        time("/b-end"),
    );
    assert!(
        a_start < b_end && b_start < a_end,
        "the stages' RUNs did not overlap: a {a_start}..{a_end}, b {b_start}..{b_end}"
    );
    // The progress reads as the classic builder's: each stage's steps in
    // order, stage after stage, and --label as a last LABEL step.
    let steps: Vec<&str> = out.lines().filter(|l| l.starts_with("Step ")).collect();
    let expected: Vec<String> = (1..=10).map(|n| format!("Step {n}/10 : ")).collect();
    assert_eq!(steps.len(), 10, "{out}");
    for (step, prefix) in steps.iter().zip(&expected) {
        assert!(step.starts_with(prefix.as_str()), "{out}");
    }
    assert_eq!(steps[9], "Step 10/10 : LABEL tier=web", "{out}");
    let a_done = out.find("stage a done").unwrap();
    let b_from = out.find("Step 3/10 : FROM").unwrap();
    let b_done = out.find("stage b done").unwrap();
    assert!(a_done < b_from && b_from < b_done, "{out}");
    let (code, labels, err) = daemon.docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        "keel-test/parallel",
    ]);
    assert_eq!((code, labels.trim()), (0, r#"{"tier":"web"}"#), "{err}");
}

#[test]
fn a_failing_stage_cancels_the_stage_running_beside_it_and_leaves_nothing() {
    let daemon = TestDaemon::with_busybox();
    let dockerfile = format!(
        "FROM {BUSYBOX} AS slow\nRUN sleep 60\n\
         FROM {BUSYBOX} AS failing\nRUN echo failing now; exit 3\n\
         FROM {BUSYBOX}\nCOPY --from=slow /etc /slow\nCOPY --from=failing /etc /failing\n"
    );
    let dir = context(&daemon, "cancel", &[("Dockerfile", &dockerfile)]);
    let began = std::time::Instant::now();
    let (code, out, err) = daemon.keel(&["build", "-t", "keel-test/cancel", dir.to_str().unwrap()]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        out.contains("failing now"),
        "the failing stage's steps are shown: {out}"
    );
    assert!(
        err.contains(
            "The command '/bin/sh -c echo failing now; exit 3' returned a non-zero code: 3"
        ),
        "{err}"
    );
    assert!(
        began.elapsed() < std::time::Duration::from_secs(45),
        "the slow stage was not cancelled"
    );
    assert_eq!(daemon.keel_ok(&["ps", "-aq"]), "");
    let snapshots = daemon.root().join("image/snapshots");
    assert_eq!(fs::read_dir(snapshots).unwrap().count(), 0);
}

/// A tar of `entries`: (path, content, mode, uid) files, and symlinks
/// where the content starts with `->`.
fn tar_of(entries: &[(&str, &str, u32, u64)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content, mode, uid) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(*mode);
        header.set_uid(*uid);
        header.set_gid(*uid);
        header.set_mtime(1_500_000_000);
        match content.strip_prefix("->") {
            Some(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                tar.append_link(&mut header, path, target).unwrap();
            }
            None => {
                header.set_size(content.len() as u64);
                // Set by hand: append_data refuses `..`, which the
                // attacker's archive needs.
                header.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
                header.set_cksum();
                tar.append(&header, content.as_bytes()).unwrap();
            }
        }
    }
    tar.into_inner().unwrap()
}

#[test]
fn add_unpacks_local_tars_plain_gzip_bzip2_and_xz_and_copies_anything_else_as_a_file() {
    use std::io::Write;
    let daemon = TestDaemon::with_busybox();
    let app = tar_of(&[
        ("app/bin/run", "echo running\n", 0o755, 1000),
        ("app/data/.wh.keep", "a file, not a whiteout\n", 0o644, 0),
        ("app/latest", "->bin/run", 0o777, 1000),
    ]);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&app).unwrap();
    let mut bzip2 = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bzip2
        .write_all(&tar_of(&[("index.html", "bz2 site\n", 0o644, 0)]))
        .unwrap();
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(&tar_of(&[("notes.txt", "xz notes\n", 0o600, 0)]))
        .unwrap();
    let mut not_a_tar = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    not_a_tar.write_all(b"just gzipped text\n").unwrap();
    let dir = context(
        &daemon,
        "add",
        &[(
            "Dockerfile",
            &format!(
                "FROM {BUSYBOX} AS stage\n\
                 RUN echo inner > /f && tar -cf /inner.tar /f\n\
                 FROM {BUSYBOX}\n\
                 ADD app.tar.gz /opt/\n\
                 ADD site.tar.bz2 /srv\n\
                 ADD notes.tar.xz plain.tar /docs/\n\
                 ADD text.gz /text.gz\n\
                 ADD --from=stage /inner.tar /from-stage/\n"
            ),
        )],
    );
    fs::write(dir.join("app.tar.gz"), gzip.finish().unwrap()).unwrap();
    fs::write(dir.join("site.tar.bz2"), bzip2.finish().unwrap()).unwrap();
    fs::write(dir.join("notes.tar.xz"), xz.finish().unwrap()).unwrap();
    fs::write(
        dir.join("plain.tar"),
        tar_of(&[("plain.txt", "plain\n", 0o644, 0)]),
    )
    .unwrap();
    fs::write(dir.join("text.gz"), not_a_tar.finish().unwrap()).unwrap();
    daemon.keel_ok(&["build", "-t", "keel-test/add", dir.to_str().unwrap()]);
    let sh = |script: &str| daemon.keel_ok(&["run", "--rm", "keel-test/add", "sh", "-c", script]);
    // The archive's owners, modes, times and links are kept.
    assert_eq!(
        sh(
            "stat -c '%u:%g %a %Y' /opt/app/bin/run && readlink /opt/app/latest && cat /opt/app/data/.wh.keep"
        ),
        "1000:1000 755 1500000000\nbin/run\na file, not a whiteout\n"
    );
    assert_eq!(
        sh("cat /srv/index.html /docs/notes.txt /docs/plain.txt"),
        "bz2 site\nxz notes\nplain\n"
    );
    assert_eq!(sh("stat -c %a /docs/notes.txt"), "600\n");
    // What is not a tar, and another stage's tar, are files.
    assert_eq!(sh("zcat /text.gz"), "just gzipped text\n");
    assert_eq!(sh("tar -tf /from-stage/inner.tar"), "f\n");

    // An archive climbing out of its destination, or writing through a
    // link it made, is refused naming the line and the entry.
    for (name, entries) in [
        ("climb.tar", vec![("../../evil", "out", 0o644, 0)]),
        (
            "through-link.tar",
            vec![("esc", "->/", 0o777, 0), ("esc/evil", "out", 0o644, 0)],
        ),
    ] {
        let dir = context(
            &daemon,
            name,
            &[("Dockerfile", &format!("FROM {BUSYBOX}\nADD {name} /in/\n"))],
        );
        fs::write(dir.join(name), tar_of(&entries)).unwrap();
        let (code, _, err) = daemon.keel(&["build", "-t", "keel-test/evil", dir.to_str().unwrap()]);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains(&format!("archive {name}: entry")) && err.contains("line 2"),
            "{err}"
        );
        assert!(!Path::new("/evil").exists() && !daemon.root().join("evil").exists());
    }
    let snapshots = daemon.root().join("image/snapshots");
    assert_eq!(fs::read_dir(snapshots).unwrap().count(), 0);
}

#[test]
fn a_context_tar_sent_compressed_with_gzip_bzip2_or_xz_builds() {
    use std::io::Write;
    let daemon = TestDaemon::with_busybox();
    let context = tar_of(&[
        (
            "Dockerfile",
            &format!("FROM {BUSYBOX}\nCOPY hello /hello\n"),
            0o644,
            0,
        ),
        ("hello", "from a compressed context\n", 0o644, 0),
    ]);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&context).unwrap();
    let mut bzip2 = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bzip2.write_all(&context).unwrap();
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(&context).unwrap();
    for (name, bytes) in [
        ("gz", gzip.finish().unwrap()),
        ("bz2", bzip2.finish().unwrap()),
        ("xz", xz.finish().unwrap()),
    ] {
        let path = daemon.path(&format!("context.tar.{name}"));
        fs::write(&path, bytes).unwrap();
        let tag = format!("keel-test/compressed-{name}");
        let mut build = daemon.keel_command(&["build", "-t", &tag, "-"]);
        build.stdin(fs::File::open(&path).unwrap());
        let out = build.output().unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hello = daemon.keel_ok(&["run", "--rm", &tag, "cat", "/hello"]);
        assert_eq!(hello, "from a compressed context\n", "{name}");
    }
}

#[test]
fn onbuild_triggers_run_in_the_child_build_right_after_from_and_are_not_inherited() {
    let daemon = TestDaemon::with_busybox();
    let base = context(
        &daemon,
        "onbuild-base",
        &[(
            "Dockerfile",
            &format!(
                "FROM {BUSYBOX}\n\
                 ONBUILD COPY greeting /greeting\n\
                 ONBUILD RUN echo \"triggered with $(cat /greeting)\" > /triggered\n"
            ),
        )],
    );
    daemon.keel_ok(&[
        "build",
        "-t",
        "keel-test/onbuild-base",
        base.to_str().unwrap(),
    ]);
    let on_build = |image: &str| {
        let (code, out, err) = daemon.docker(&[
            "image",
            "inspect",
            "--format",
            "{{json .Config.OnBuild}}",
            image,
        ]);
        assert_eq!(code, 0, "{err}");
        out.trim().to_owned()
    };
    assert_eq!(
        on_build("keel-test/onbuild-base"),
        r#"["COPY greeting /greeting","RUN echo \"triggered with $(cat /greeting)\" > /triggered"]"#
    );
    let child = context(
        &daemon,
        "onbuild-child",
        &[
            (
                "Dockerfile",
                "FROM keel-test/onbuild-base\nCMD [\"cat\", \"/triggered\"]\n",
            ),
            ("greeting", "the child's context"),
        ],
    );
    let out = daemon.keel_ok(&[
        "build",
        "-t",
        "keel-test/onbuild-child",
        child.to_str().unwrap(),
    ]);
    assert!(
        out.contains("Step 1/2 : FROM keel-test/onbuild-base\n# Executing 2 build triggers\n"),
        "{out}"
    );
    let run = daemon.keel_ok(&["run", "--rm", "keel-test/onbuild-child"]);
    assert_eq!(run, "triggered with the child's context\n");
    assert_eq!(
        on_build("keel-test/onbuild-child"),
        "null",
        "the triggers are consumed"
    );
}

#[test]
fn source_date_epoch_makes_two_clean_builds_the_same_image() {
    let daemon = TestDaemon::with_busybox();
    let dir = context(
        &daemon,
        "epoch",
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {BUSYBOX}\nCOPY old.txt new.txt /files/\nRUN echo made > /made && mkdir -p /var/made\nCMD [\"cat\", \"/made\"]\n"
                ),
            ),
            ("old.txt", "from 2020\n"),
            ("new.txt", "from now\n"),
        ],
    );
    let old = fs::File::options()
        .write(true)
        .open(dir.join("old.txt"))
        .unwrap();
    old.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000))
        .unwrap();
    let build = |epoch: Option<&str>| {
        let mut args = vec!["build", "--no-cache", "-q"];
        if let Some(epoch) = epoch {
            args.extend(["--source-date-epoch", epoch]);
        }
        args.push(dir.to_str().unwrap());
        let id = daemon.keel_ok(&args).trim().to_owned();
        // The next build's RUN writes its files in another second.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        id
    };
    let first = build(Some("1700000000"));
    assert_eq!(
        build(Some("1700000000")),
        first,
        "two clean builds, one image"
    );
    assert_ne!(
        build(None),
        build(None),
        "without the epoch, the times differ"
    );
    let (code, out, err) = daemon.docker(&["image", "inspect", "--format", "{{.Created}}", &first]);
    assert_eq!((code, out.trim()), (0, "2023-11-14T22:13:20Z"), "{err}");
    let (_, history, err) =
        daemon.docker(&["history", "-H=false", "--format", "{{.CreatedAt}}", &first]);
    let mut history = history.lines();
    assert!(
        history
            .by_ref()
            .take(3)
            .all(|l| l == "2023-11-14T22:13:20Z"),
        "the new steps' times: {err}"
    );
    // Files newer than the epoch take its time; older ones keep theirs.
    let times = daemon.keel_ok(&[
        "run",
        "--rm",
        &first,
        "stat",
        "-c",
        "%Y %n",
        "/made",
        "/var/made",
        "/files/new.txt",
        "/files/old.txt",
    ]);
    assert_eq!(
        times,
        "1700000000 /made\n1700000000 /var/made\n1700000000 /files/new.txt\n1600000000 /files/old.txt\n"
    );
    let (code, _, err) = daemon.keel(&[
        "build",
        "--source-date-epoch",
        "yesterday",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("invalid SOURCE_DATE_EPOCH \"yesterday\": use the number of seconds"),
        "{err}"
    );
}

#[test]
fn explain_cache_names_the_first_input_that_differs_at_each_miss() {
    let daemon = TestDaemon::with_busybox();
    let base = context(
        &daemon,
        "explain-base",
        &[(
            "Dockerfile",
            &format!("FROM {BUSYBOX}\nARG MARK\nRUN echo $MARK > /mark\n"),
        )],
    );
    let make_base = |mark: &str| {
        let arg = format!("MARK={mark}");
        daemon.keel_ok(&[
            "build",
            "-q",
            "--build-arg",
            &arg,
            "-t",
            "keel-test/explain-base",
            base.to_str().unwrap(),
        ])
    };
    make_base("one");
    let dir = context(
        &daemon,
        "explain",
        &[
            (
                "Dockerfile",
                "FROM keel-test/explain-base\nARG VERSION=1\nCOPY src/ /app/src/\nRUN echo $VERSION > /version\n",
            ),
            ("src/App.class", "first"),
        ],
    );
    let build = |args: &[&str]| {
        let mut all = vec!["build", "--explain-cache"];
        all.extend_from_slice(args);
        all.push(dir.to_str().unwrap());
        let out = daemon.keel_ok(&all);
        out.lines()
            .filter_map(|l| l.strip_prefix(" ---> Cache miss: "))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        build(&[]),
        [
            "no earlier build of this instruction on these layers",
            "step 3 before it ran"
        ]
    );
    assert!(build(&[]).is_empty(), "an unchanged build misses nothing");

    let sum = |content: &str| {
        let path = daemon.path("sum-input");
        fs::write(&path, content).unwrap();
        let out = common::output(std::process::Command::new("sha256sum").arg(&path)).1;
        out[..12].to_owned()
    };
    fs::write(dir.join("src/App.class"), "second").unwrap();
    assert_eq!(
        build(&[]),
        [
            format!(
                "src/App.class changed (sha256:{}… → sha256:{}…)",
                sum("first"),
                sum("second")
            ),
            "step 3 before it ran".to_owned()
        ]
    );
    fs::write(dir.join("src/New.class"), "new").unwrap();
    assert_eq!(build(&[])[0], "src/New.class is new");
    assert_eq!(
        build(&["--build-arg", "VERSION=2"]),
        ["the variable VERSION changed: VERSION=1 → VERSION=2"]
    );
    let old_base = daemon.keel_ok(&["images", "-q", "keel-test/explain-base"]);
    make_base("two");
    let new_base = daemon.keel_ok(&["images", "-q", "keel-test/explain-base"]);
    assert_eq!(
        build(&["--build-arg", "VERSION=2"]),
        [
            format!(
                "the base image keel-test/explain-base changed ({} → {})",
                old_base.trim(),
                new_base.trim()
            ),
            "step 3 before it ran".to_owned()
        ]
    );
    assert_eq!(build(&["--no-cache"]), ["--no-cache", "--no-cache"]);
}

#[test]
fn copy_parents_exclude_and_wildcards_in_any_part_select_as_buildkit_documents() {
    let daemon = TestDaemon::with_busybox();
    let dir = context(
        &daemon,
        "parents",
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {BUSYBOX}\n\
                     COPY --parents ./x/a.txt ./y/a.txt /parents/\n\
                     COPY --parents ./x/./y/*.txt /pivot/\n\
                     COPY --parents ./src/**/*.txt /globbed/\n\
                     COPY --exclude=**/*.md --exclude=x/y/skip src/ /excluded/\n\
                     COPY --exclude=*.txt hom* /hom/\n\
                     COPY s*/x/*/*.txt /deep/\n"
                ),
            ),
            ("x/a.txt", "x"),
            ("y/a.txt", "y"),
            ("x/y/b.txt", "xy"),
            ("src/a.txt", ""),
            ("src/x/b.txt", ""),
            ("src/x/y/c.txt", ""),
            ("src/x/y/notes.md", ""),
            ("src/x/y/skip/d.txt", ""),
            ("home.txt", ""),
            ("homework", ""),
        ],
    );
    daemon.keel_ok(&["build", "-t", "keel-test/parents", dir.to_str().unwrap()]);
    let files = daemon.keel_ok(&[
        "run",
        "--rm",
        "keel-test/parents",
        "sh",
        "-c",
        "find /parents /pivot /globbed /excluded /hom /deep -type f | sort",
    ]);
    assert_eq!(
        files,
        "/deep/c.txt\n\
         /excluded/a.txt\n/excluded/x/b.txt\n/excluded/x/y/c.txt\n\
         /globbed/src/a.txt\n/globbed/src/x/b.txt\n/globbed/src/x/y/c.txt\n/globbed/src/x/y/skip/d.txt\n\
         /hom/homework\n\
         /parents/x/a.txt\n/parents/y/a.txt\n\
         /pivot/y/b.txt\n"
    );
    // Excluding a file is in the step's key: the cache does not serve a
    // copy made without the exclusion.
    fs::write(
        dir.join("Dockerfile"),
        format!("FROM {BUSYBOX}\nCOPY --exclude=**/*.md --exclude=x/y/skip src/ /excluded/\n"),
    )
    .unwrap();
    daemon.keel_ok(&["build", "-t", "keel-test/parents", dir.to_str().unwrap()]);
    fs::write(dir.join("src/x/y/notes.md"), "changed, yet excluded").unwrap();
    let out = daemon.keel_ok(&["build", "-t", "keel-test/parents", dir.to_str().unwrap()]);
    assert!(
        out.contains("Using cache"),
        "an excluded file's change misses nothing: {out}"
    );
    fs::write(
        dir.join("Dockerfile"),
        format!("FROM {BUSYBOX}\nCOPY --parents=maybe x /x\n"),
    )
    .unwrap();
    let (code, _, err) = daemon.keel(&["build", dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("invalid --parents=maybe") && err.contains("line 2"),
        "{err}"
    );
}

/// An HTTP server on loopback serving `files` (path, body), with a fixed
/// Last-Modified; returns its port and the count of requests it served.
fn http_server(
    files: Vec<(&'static str, Vec<u8>)>,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            // The rest of the head.
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let path = request.split_whitespace().nth(1).unwrap_or_default();
            let head = match files.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes()
                .into_iter()
                .chain(body.iter().copied())
                .collect::<Vec<u8>>(),
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
            };
            stream.write_all(&head).ok();
        }
    });
    (port, served)
}

#[test]
fn add_downloads_urls_as_docker_does_and_a_checksum_spares_the_download_when_cached() {
    let daemon = TestDaemon::with_busybox();
    let tool = b"echo tool\n".to_vec();
    let archive = tar_of(&[("inside.txt", "not unpacked", 0o644, 0)]);
    let (port, served) = http_server(vec![
        ("/files/tool.sh", tool.clone()),
        ("/files/archive.tar", archive),
    ]);
    let sum_path = daemon.path("tool.sh");
    fs::write(&sum_path, &tool).unwrap();
    let sum = common::output(std::process::Command::new("sha256sum").arg(&sum_path)).1;
    let sum = sum.split_whitespace().next().unwrap().to_owned();
    let base = format!("http://127.0.0.1:{port}/files");
    let dir = context(
        &daemon,
        "urls",
        &[(
            "Dockerfile",
            &format!(
                "FROM {BUSYBOX}\n\
                 ADD {base}/tool.sh /opt/\n\
                 ADD --checksum=sha256:{sum} {base}/tool.sh /checked.sh\n\
                 ADD {base}/archive.tar /downloads/\n"
            ),
        )],
    );
    daemon.keel_ok(&["build", "-t", "keel-test/urls", dir.to_str().unwrap()]);
    let sh = |script: &str| daemon.keel_ok(&["run", "--rm", "keel-test/urls", "sh", "-c", script]);
    assert_eq!(
        sh("stat -c '%a %Y' /opt/tool.sh && cat /opt/tool.sh /checked.sh && ls /downloads"),
        "600 1445412480\necho tool\necho tool\narchive.tar\n",
        "named by the URL, mode 0600, dated Last-Modified, not unpacked"
    );
    // Rebuilt: the URLs without a checksum are downloaded again to be
    // compared; the one with a checksum is not.
    let before = served.load(std::sync::atomic::Ordering::SeqCst);
    let out = daemon.keel_ok(&["build", "-t", "keel-test/urls", dir.to_str().unwrap()]);
    assert_eq!(out.matches(" ---> Using cache").count(), 3, "{out}");
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst) - before, 2);

    for (dockerfile, expected) in [
        (
            format!(
                "FROM {BUSYBOX}\nADD --checksum=sha256:{} {base}/tool.sh /t\n",
                "0".repeat(64)
            ),
            format!(
                "the content's checksum is sha256:{sum}, not sha256:{}",
                "0".repeat(64)
            ),
        ),
        (
            format!("FROM {BUSYBOX}\nADD {base}/missing /m\n"),
            format!("failed to download {base}/missing"),
        ),
        (
            format!("FROM {BUSYBOX}\nCOPY {base}/tool.sh /t\n"),
            "source can't be a URL for COPY".to_owned(),
        ),
        (
            format!("FROM {BUSYBOX}\nADD --checksum=md5:1 {base}/tool.sh /t\n"),
            "invalid checksum \"md5:1\"".to_owned(),
        ),
    ] {
        fs::write(dir.join("Dockerfile"), &dockerfile).unwrap();
        let (code, _, err) =
            daemon.keel(&["build", "-t", "keel-test/bad-url", dir.to_str().unwrap()]);
        assert_eq!(code, 1, "{dockerfile}: {err}");
        assert!(
            err.contains(&expected) && err.contains("line 2"),
            "{dockerfile}: {err}"
        );
    }
    let snapshots = daemon.root().join("image/snapshots");
    assert_eq!(fs::read_dir(snapshots).unwrap().count(), 0);
}

#[test]
fn run_steps_are_on_the_default_bridge_with_add_host_and_none_isolates_them() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        BUSYBOX,
        "sh",
        "-c",
        "echo served > /index.html && httpd -f -p 80 -h /",
    ]);
    let ip = daemon.keel_ok(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.IPAddress}}",
        "web",
    ]);
    let ip = ip.trim();
    // The veths on this daemon's own bridge (other tests make theirs).
    let veths = || {
        let links = common::output(std::process::Command::new("ip").args([
            "-o",
            "link",
            "show",
            "master",
            &daemon.bridge,
        ]))
        .1;
        links.lines().count()
    };
    let before = veths();
    // busybox's `wget -T` crashes when it gives up: `timeout` instead.
    let dir = context(
        &daemon,
        "bridged",
        &[(
            "Dockerfile",
            &format!(
                "FROM {BUSYBOX}\n\
                 RUN timeout 5 wget -qO /got http://{ip}/index.html; cat /etc/hosts > /hosts\n\
                 RUN --network=none if timeout 3 wget -qO- http://{ip}/index.html; then echo reached; else echo isolated; fi > /none\n"
            ),
        )],
    );
    daemon.keel_ok(&[
        "build",
        "--add-host",
        "db.internal:10.1.2.3",
        "-t",
        "keel-test/bridged",
        dir.to_str().unwrap(),
    ]);
    let cat = |path: &str| daemon.keel_ok(&["run", "--rm", "keel-test/bridged", "cat", path]);
    assert_eq!(
        cat("/got"),
        "served\n",
        "a RUN reached a container on the default bridge"
    );
    assert!(cat("/hosts").contains("10.1.2.3\tdb.internal\n"));
    assert_eq!(cat("/none"), "isolated\n");
    // The steps' veths are deleted in the background, after the step;
    // their namespaces and name files are gone.
    let gone = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        veths() == before
    });
    assert!(gone, "a step's veth is still on the bridge");
    let leftover: Vec<_> = fs::read_dir(daemon.root().join("netns"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("build-"))
        .collect();
    assert!(leftover.is_empty(), "{leftover:?}");
    let layers = daemon.root().join("image/layers");
    for layer in fs::read_dir(layers).unwrap() {
        let etc = layer.unwrap().path().join("diff/etc");
        for name in ["hosts", "hostname", "resolv.conf"] {
            assert!(
                !etc.join(name).exists(),
                "{} is in a layer",
                etc.join(name).display()
            );
        }
    }
    let (code, _, err) = daemon.keel(&["build", "--add-host", "nonsense", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("invalid argument \"nonsense\" for \"--add-host\" flag"),
        "{err}"
    );
    daemon.keel_ok(&["rm", "-f", "web"]);
}

#[test]
fn run_steps_take_the_builds_memory_ulimit_and_shm_size() {
    let daemon = TestDaemon::with_busybox();
    let dir = context(
        &daemon,
        "limits",
        &[(
            "Dockerfile",
            &format!(
                "FROM {BUSYBOX}\n\
                 RUN ulimit -n > /limits && df -k /dev/shm | tail -1 | awk '{{print $2}}' >> /limits \\\n\
                     && cat /sys/fs/cgroup/memory/memory.limit_in_bytes >> /limits\n"
            ),
        )],
    );
    daemon.keel_ok(&[
        "build",
        "--memory",
        "64m",
        "--ulimit",
        "nofile=1024:2048",
        "--shm-size",
        "16m",
        "-t",
        "keel-test/limits",
        dir.to_str().unwrap(),
    ]);
    let limits = daemon.keel_ok(&["run", "--rm", "keel-test/limits", "cat", "/limits"]);
    assert_eq!(limits, "1024\n16384\n67108864\n");
    for (args, expected) in [
        (
            &["--memory", "1k"][..],
            "Minimum memory limit allowed is 6MB",
        ),
        (
            &["--ulimit", "nofile"][..],
            "invalid argument \"nofile\" for \"--ulimit\" flag",
        ),
        (
            &["--shm-size", "lots"][..],
            "invalid argument \"lots\" for \"--shm-size\" flag",
        ),
    ] {
        let mut all = vec!["build"];
        all.extend_from_slice(args);
        all.push(dir.to_str().unwrap());
        let (code, _, err) = daemon.keel(&all);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn each_metadata_instruction_lands_in_the_image_config_as_dockers_classic_builder_puts_it() {
    let daemon = TestDaemon::with_busybox();
    let dockerfile = format!(
        "# escape=`\n\
         FROM --platform=$BUILDPLATFORM {BUSYBOX}\n\
         MAINTAINER Keel Tests <tests@keel>\n\
         ARG TARGETARCH\n\
         SHELL [\"/bin/sh\", \"-ec\"]\n\
         ENV APP_HOME=/srv/app `\n    MODE=prod\n\
         RUN [\"sh\", \"-c\", \"mkdir -p /srv/app && echo exec form > /srv/app/exec\"]\n\
         USER 1000:1000\n\
         EXPOSE 8080/tcp 53/udp\n\
         VOLUME [\"/data\", \"/cache\"]\n\
         STOPSIGNAL SIGQUIT\n\
         HEALTHCHECK --interval=5s --timeout=2s --start-period=1s --retries=4 CMD [\"cat\", \"/etc/hostname\"]\n\
         LABEL org.opencontainers.image.description=\"made by a test\" arch=$TARGETARCH\n\
         WORKDIR $APP_HOME\n\
         ENTRYPOINT [\"/bin/sh\", \"-c\"]\n\
         CMD [\"echo $MODE from $(cat exec)\"]\n"
    );
    let dir = context(&daemon, "metadata", &[("Dockerfile", &dockerfile)]);
    let (code, out, err) = docker_build(&daemon, &["-t", "keel-test/metadata"], &dir);
    assert_eq!(code, 0, "{out}{err}");
    let (_, config, _) = daemon.docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config}}",
        "keel-test/metadata",
    ]);
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    let arch = std::env::consts::ARCH
        .replace("x86_64", "amd64")
        .replace("aarch64", "arm64");
    assert_eq!(config["User"], "1000:1000");
    assert_eq!(
        config["ExposedPorts"],
        serde_json::json!({"53/udp": {}, "8080/tcp": {}})
    );
    assert_eq!(
        config["Volumes"],
        serde_json::json!({"/cache": {}, "/data": {}})
    );
    assert_eq!(config["StopSignal"], "SIGQUIT");
    assert_eq!(
        config["Healthcheck"],
        serde_json::json!({
            "Test": ["CMD", "cat", "/etc/hostname"], "Interval": 5_000_000_000u64,
            "Timeout": 2_000_000_000u64, "StartPeriod": 1_000_000_000u64, "Retries": 4,
        })
    );
    assert_eq!(
        config["Labels"],
        serde_json::json!({"arch": arch, "org.opencontainers.image.description": "made by a test"})
    );
    let env: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        env.contains(&"APP_HOME=/srv/app") && env.contains(&"MODE=prod"),
        "{env:?}"
    );
    assert_eq!(config["WorkingDir"], "/srv/app");
    assert_eq!(config["Shell"], serde_json::json!(["/bin/sh", "-ec"]));
    assert_eq!(config["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["echo $MODE from $(cat exec)"])
    );
    let (_, author, _) = daemon.docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Author}}",
        "keel-test/metadata",
    ]);
    assert_eq!(author, "Keel Tests <tests@keel>\n");
    let (code, run, err) = daemon.docker(&["run", "--rm", "keel-test/metadata"]);
    assert_eq!((code, run.as_str()), (0, "prod from exec form\n"), "{err}");
    // Metadata steps are history entries without a layer.
    let (_, history, _) = daemon.docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.Size}} {{.CreatedBy}}",
        "keel-test/metadata",
    ]);
    let stopsignal = history.lines().find(|l| l.contains("STOPSIGNAL")).unwrap();
    assert!(
        stopsignal.starts_with("0B /bin/sh -c #(nop)  STOPSIGNAL SIGQUIT"),
        "{history}"
    );
}

#[test]
fn pull_fetches_the_base_images_first_even_those_already_here() {
    let registry = Registry::start();
    let daemon = TestDaemon::with_busybox();
    let base = format!("{}/pull/base:1", registry.address);
    // Two versions of the base, the second pushed after the first is here.
    let push = |mark: &str| {
        let dir = context(
            &daemon,
            &format!("pull-base-{mark}"),
            &[(
                "Dockerfile",
                &format!("FROM {BUSYBOX}\nRUN echo {mark} > /mark\n"),
            )],
        );
        daemon.keel_ok(&["build", "-q", "-t", &base, dir.to_str().unwrap()]);
        daemon.keel_ok(&["push", &base]);
    };
    push("first");
    let dir = context(
        &daemon,
        "pull-child",
        &[(
            "Dockerfile",
            &format!("FROM {base}\nCMD [\"cat\", \"/mark\"]\n"),
        )],
    );
    let other = TestDaemon::start();
    let (code, _, err) = other.keel(&["build", "-t", "keel-test/child", dir.to_str().unwrap()]);
    assert_eq!(
        code, 1,
        "without --pull a base not here is not fetched: {err}"
    );
    let out = other.keel_ok(&[
        "build",
        "--pull",
        "-t",
        "keel-test/child",
        dir.to_str().unwrap(),
    ]);
    assert!(out.contains("Pulling from pull/base"), "{out}");
    assert_eq!(
        other.keel_ok(&["run", "--rm", "keel-test/child"]),
        "first\n"
    );
    push("second");
    // Through the docker CLI too (it sends X-Registry-Config).
    let (code, out, err) = docker_build(&other, &["--pull", "-t", "keel-test/child"], &dir);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        other.keel_ok(&["run", "--rm", "keel-test/child"]),
        "second\n"
    );
}

#[test]
fn a_dockerfile_outside_the_context_or_on_stdin_builds_and_is_not_in_the_context() {
    let daemon = TestDaemon::with_busybox();
    let dir = context(
        &daemon,
        "outside-ctx",
        &[
            ("app.txt", "the app\n"),
            ("secret.txt", "ignored\n"),
            (".dockerignore", "secret.txt\n"),
            (
                "sub/Dockerfile.dev",
                &format!("FROM {BUSYBOX}\nCOPY . /ctx/\nCMD [\"ls\", \"-A\", \"/ctx\"]\n"),
            ),
        ],
    );
    let elsewhere = daemon.path("elsewhere.Dockerfile");
    fs::write(
        &elsewhere,
        format!("FROM {BUSYBOX}\nCOPY . /ctx/\nCMD [\"ls\", \"-A\", \"/ctx\"]\n"),
    )
    .unwrap();
    let listed = |tag: &str| daemon.keel_ok(&["run", "--rm", tag]);
    daemon.keel_ok(&[
        "build",
        "-f",
        elsewhere.to_str().unwrap(),
        "-t",
        "keel-test/outside",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(
        listed("keel-test/outside"),
        ".dockerignore\napp.txt\nsub\n",
        "the Dockerfile's own copy is not in the context"
    );
    let mut stdin = daemon.keel_command(&[
        "build",
        "-f",
        "-",
        "-t",
        "keel-test/stdin",
        dir.to_str().unwrap(),
    ]);
    stdin.stdin(fs::File::open(&elsewhere).unwrap());
    let out = stdin.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(listed("keel-test/stdin"), ".dockerignore\napp.txt\nsub\n");
    // -f is relative to the current directory, as the docker CLI takes it.
    let mut relative = daemon.keel_command(&[
        "build",
        "-f",
        "outside-ctx/sub/Dockerfile.dev",
        "-t",
        "keel-test/relative",
        "outside-ctx",
    ]);
    relative.current_dir(dir.parent().unwrap());
    let out = relative.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        listed("keel-test/relative"),
        ".dockerignore\napp.txt\nsub\n"
    );
    let (code, _, err) = daemon.keel(&[
        "build",
        "-f",
        "/nonexistent/Dockerfile",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot locate Dockerfile: \"/nonexistent/Dockerfile\""),
        "{err}"
    );
}

#[test]
fn no_cache_filter_runs_the_named_stages_steps_again_and_keeps_the_others_cached() {
    let daemon = TestDaemon::with_busybox();
    let dir = context(
        &daemon,
        "filter",
        &[(
            "Dockerfile",
            &format!(
                "FROM {BUSYBOX} AS builder\nRUN echo artifact > /out\n\
                 FROM {BUSYBOX}\nCOPY --from=builder /out /out\nRUN cat /out > /seen\n"
            ),
        )],
    );
    let build = |args: &[&str]| {
        let mut all = vec!["build", "--explain-cache"];
        all.extend_from_slice(args);
        all.push(dir.to_str().unwrap());
        daemon.keel_ok(&all)
    };
    build(&[]);
    let out = build(&["--no-cache-filter", "builder"]);
    assert_eq!(
        out.matches("Running in").count(),
        1,
        "only the builder's RUN ran: {out}"
    );
    assert!(out.contains(" ---> Cache miss: --no-cache-filter"), "{out}");
    // The builder made the same bytes: what copies them stays cached.
    assert_eq!(out.matches(" ---> Using cache").count(), 2, "{out}");
}

#[test]
fn pull_of_a_private_base_takes_the_saved_login_in_x_registry_config() {
    let registry = Registry::with_basic_auth("keel", "s3cret");
    let daemon = TestDaemon::with_busybox();
    let base = format!("{}/private/base:1", registry.address);
    daemon.keel_ok(&["login", "-u", "keel", "-p", "s3cret", &registry.address]);
    daemon.keel_ok(&["tag", BUSYBOX, &base]);
    daemon.keel_ok(&["push", &base]);
    let dir = context(
        &daemon,
        "private-base",
        &[("Dockerfile", &format!("FROM {base}\nCMD [\"true\"]\n"))],
    );
    let out = daemon.keel_ok(&[
        "build",
        "--pull",
        "-t",
        "keel-test/private-child",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.contains("Status: Image is up to date") || out.contains("Digest: sha256:"),
        "{out}"
    );
    daemon.keel_ok(&["logout", &registry.address]);
    let (code, _, err) = daemon.keel(&[
        "build",
        "--pull",
        "-t",
        "keel-test/private-child",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "without the login the pull is refused: {err}");
    assert!(
        err.contains("no basic auth credentials")
            || err.contains("401")
            || err.contains("unauthorized"),
        "{err}"
    );
}
