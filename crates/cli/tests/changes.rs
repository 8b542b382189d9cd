//! `docker diff`, docker-py's `Container.diff()` and `keel diff` against
//! `GET /containers/{id}/changes`: a container's own changes to its
//! image's files, whether it was created, runs or stopped.

mod common;

use std::process::Command;

use common::TestDaemon;

const IMAGE: &str = common::BUSYBOX;

/// What a container that adds, deletes and modifies a file shows.
const CHANGED: &str = "C /bin\nD /bin/ls\nC /etc\nC /etc/passwd\nC /tmp\nA /tmp/new\n";

fn python(daemon: &TestDaemon, body: &str) -> (i32, String, String) {
    let script = format!(
        "import docker\nclient = docker.DockerClient(base_url=\"unix://{}\", version=\"auto\")\n{body}",
        daemon.socket().display()
    );
    common::output(Command::new("python3").args(["-c", &script]))
}

#[test]
fn docker_diff_lists_added_deleted_and_modified_paths_with_their_parents() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&[
        "run",
        "--name",
        "changed",
        IMAGE,
        "sh",
        "-c",
        "touch /tmp/new; rm /bin/ls; echo x > /etc/passwd",
    ]);
    let (code, out, err) = daemon.docker(&["diff", "changed"]);
    assert_eq!((code, out.as_str()), (0, CHANGED), "{err}");
    assert_eq!(daemon.keel_ok(&["diff", "changed"]), CHANGED);
    let (code, out, err) = python(
        &daemon,
        "for change in client.containers.get('changed').diff():\n    print(change['Kind'], change['Path'])",
    );
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "0 /bin\n2 /bin/ls\n0 /etc\n0 /etc/passwd\n0 /tmp\n1 /tmp/new\n"
        ),
        "{err}"
    );
}

#[test]
fn a_created_container_has_no_changes_and_a_running_one_shows_them_as_they_happen() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&["create", "--name", "fresh", IMAGE, "sleep", "600"]);
    // As Docker: no changes are null, which the docker CLI prints as
    // nothing and docker-py returns as None.
    let (code, out, err) = daemon.docker(&["diff", "fresh"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let (code, out, err) = python(&daemon, "print(client.containers.get('fresh').diff())");
    assert_eq!((code, out.as_str()), (0, "None\n"), "{err}");
    daemon.keel_ok(&["start", "fresh"]);
    let (code, _, err) = daemon.docker(&[
        "exec",
        "fresh",
        "sh",
        "-c",
        "mkdir -p /srv/deep/er && echo hi > /srv/deep/er/file && rm -r /home/user",
    ]);
    assert_eq!(code, 0, "{err}");
    // A new directory's contents are added one by one; a deleted
    // directory is one deletion.
    let (code, out, err) = daemon.docker(&["diff", "fresh"]);
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "C /home\nD /home/user\nA /srv\nA /srv/deep\nA /srv/deep/er\nA /srv/deep/er/file\n"
        ),
        "{err}"
    );
}

#[test]
fn a_directory_made_again_shows_the_image_files_it_lost() {
    let daemon = TestDaemon::with_busybox();
    // /www made anew (an opaque directory in the overlay): the image's
    // page is gone, the new one added.
    daemon.keel_ok(&[
        "run",
        "--name",
        "remade",
        IMAGE,
        "sh",
        "-c",
        "rm -r /www && mkdir /www && echo new > /www/new.html",
    ]);
    let (code, out, err) = daemon.docker(&["diff", "remade"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "C /www\nD /www/index.html\nA /www/new.html\n"),
        "{err}"
    );
}

#[test]
fn diff_of_an_unknown_container_says_no_such_container() {
    let daemon = TestDaemon::with_busybox();
    let (code, _, err) = daemon.docker(&["diff", "nothing-here"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("No such container: nothing-here"),
        "docker: {err}"
    );
    let (code, _, err) = daemon.keel(&["diff", "nothing-here"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("No such container: nothing-here"),
        "keel: {err}"
    );
}
