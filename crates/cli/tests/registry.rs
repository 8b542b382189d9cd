//! Pull, push, login and search against a real registry (Debian's
//! `docker-registry` on a loopback port of the test's own), through keel,
//! the docker CLI and docker-py.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{BUSYBOX, TestDaemon};
use keel_testkit::archive::{LayerTar, archive_of};
use keel_testkit::registry::Registry;

/// The digest a push printed: `TAG: digest: sha256:… size: N`.
fn pushed_digest(output: &str) -> (String, u64) {
    let line = output
        .lines()
        .find(|line| line.contains(": digest: "))
        .unwrap_or_else(|| panic!("no digest line in {output}"));
    let mut words = line.split_whitespace().skip(2);
    let digest = words.next().unwrap().to_owned();
    let size = words.nth(1).unwrap().parse().unwrap();
    (digest, size)
}

fn image_id(daemon: &TestDaemon, name: &str) -> String {
    daemon
        .keel_ok(&["inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_owned()
}

/// The blobs in the daemon's content store.
fn blobs(daemon: &TestDaemon) -> BTreeSet<String> {
    let dir = daemon.root().join("image/blobs/sha256");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Loads a two-layer image (busybox and a file of its own) as `tag`.
fn load_layered(daemon: &TestDaemon, tag: &str, file: &str) {
    let base = std::fs::read(daemon.busybox_tar()).unwrap();
    let top = LayerTar::new()
        .file(file, format!("{file}\n").as_bytes())
        .finish();
    let archive = daemon.path(&format!("{file}.tar"));
    std::fs::write(&archive, archive_of(&[&base, &top], &[tag])).unwrap();
    daemon.keel_ok(&["load", "-i", archive.to_str().unwrap()]);
}

/// The layer digests of a manifest in the registry.
fn remote_layers(registry: &Registry, path: &str, tag: &str) -> Vec<String> {
    let client = keel_registry::Registry::connect(&registry.address, None, &[]).unwrap();
    match client.manifest(path, tag).unwrap().0 {
        keel_registry::Manifest::Image(manifest) => manifest
            .layers
            .iter()
            .map(|l| l.digest.to_string())
            .collect(),
        other => panic!("not an image manifest: {other:?}"),
    }
}

#[test]
fn a_pushed_image_pulls_back_by_tag_and_by_digest_with_the_same_digests() {
    let registry = Registry::start();
    let daemon = TestDaemon::with_busybox();
    let name = format!("{}/team/app:1", registry.address);
    daemon.keel_ok(&["tag", BUSYBOX, &name]);
    let id = image_id(&daemon, &name);
    let out = daemon.keel_ok(&["push", &name]);
    assert!(
        out.starts_with(&format!(
            "The push refers to repository [{}/team/app]",
            registry.address
        )),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    let (digest, _) = pushed_digest(&out);
    // A second push finds everything there and keeps the digest.
    let again = daemon.keel_ok(&["push", &name]);
    assert!(again.contains(": Layer already exists"), "{again}");
    assert_eq!(pushed_digest(&again).0, digest);

    daemon.keel_ok(&["rmi", "-f", &id]);
    let out = daemon.keel_ok(&["pull", &name]);
    assert!(out.starts_with("1: Pulling from team/app\n"), "{out}");
    assert!(out.contains(": Pull complete\n"), "{out}");
    assert!(out.contains(&format!("Digest: {digest}\n")), "{out}");
    assert!(
        out.ends_with(&format!(
            "Status: Downloaded newer image for {name}\n{name}\n"
        )),
        "{out}"
    );
    assert_eq!(image_id(&daemon, &name), id, "the config came back intact");
    let inspected: serde_json::Value =
        serde_json::from_str(&daemon.keel_ok(&["inspect", &name])).unwrap();
    assert_eq!(
        inspected[0]["RepoDigests"],
        serde_json::json!([format!("{}/team/app@{digest}", registry.address)])
    );
    let again = daemon.keel_ok(&["pull", &name]);
    assert!(again.contains(": Already exists\n"), "{again}");
    assert!(
        again.contains(&format!("Status: Image is up to date for {name}")),
        "{again}"
    );
    assert_eq!(
        daemon.keel_ok(&["run", "--rm", &name, "echo", "hi"]),
        "hi\n"
    );

    // `run` pulls a missing image first, showing the pull on stderr.
    daemon.keel_ok(&["rmi", "-f", &id]);
    let (code, out, err) = daemon.keel(&["run", "--rm", &name, "echo", "pulled"]);
    assert_eq!((code, out.as_str()), (0, "pulled\n"), "{err}");
    assert!(
        err.starts_with(&format!(
            "Unable to find image '{name}' locally\n1: Pulling from team/app\n"
        )),
        "{err}"
    );
    let (code, _, err) = daemon.keel(&["run", "--rm", "--pull", "never", "keel-test/none", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("No such image: keel-test/none"), "{err}");

    daemon.keel_ok(&["rmi", "-f", &id]);
    let pinned = format!("{}/team/app@{digest}", registry.address);
    let out = daemon.keel_ok(&["pull", &pinned]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert_eq!(image_id(&daemon, &pinned), id);
    let tags = daemon.keel_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(
        tags.trim(),
        format!("{}/team/app:<none>", registry.address),
        "a pull by digest makes no tag"
    );
}

#[test]
fn the_docker_cli_and_docker_py_push_and_pull_through_keel() {
    let registry = Registry::start();
    let daemon = TestDaemon::with_busybox();
    let name = format!("{}/docker/cli:v1", registry.address);
    let (code, _, err) = daemon.docker(&["tag", BUSYBOX, &name]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = daemon.docker(&["push", &name]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("v1: digest: sha256:"), "{out}");
    let (digest, _) = pushed_digest(&out);
    let (code, _, err) = daemon.docker(&["rmi", &name]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = daemon.docker(&["pull", &name]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(out.ends_with(&format!("{name}\n")), "{out}");
    let (code, _, err) = daemon.docker(&["rmi", &name]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = daemon.docker(&["run", "--rm", &name, "echo", "pulled"]);
    assert_eq!((code, out.as_str()), (0, "pulled\n"), "{err}");
    assert!(err.contains("Unable to find image"), "{err}");

    let (code, out, err) = daemon.docker(&["pull", &format!("{}/docker/none:1", registry.address)]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains(&format!(
            "Error response from daemon: manifest for {}/docker/none:1 not found: manifest unknown",
            registry.address
        )),
        "{err}"
    );

    let script = format!(
        r#"
import docker
client = docker.DockerClient(base_url="unix://{socket}", version="auto")
client.images.remove("{name}")
image = client.images.pull("{repo}", tag="v1")
print(image.tags)
image.tag("{repo}", "v2")
lines = list(client.api.push("{repo}", tag="v2", stream=True, decode=True))
print(lines[-1]["status"].split(" size")[0])
"#,
        socket = daemon.socket().display(),
        repo = name.trim_end_matches(":v1"),
    );
    let (code, out, err) =
        common::output(std::process::Command::new("python3").args(["-c", &script]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("['{name}', '{BUSYBOX}:latest']\nv2: digest: {digest}\n")
    );
}

#[test]
fn a_registry_with_basic_auth_wants_a_login_and_takes_docker_logins_credentials() {
    let registry = Registry::with_basic_auth("keel", "s3cret");
    let daemon = TestDaemon::with_busybox();
    let name = format!("{}/private/app:1", registry.address);
    let config = daemon.path("docker-config/config.json");
    daemon.keel_ok(&["tag", BUSYBOX, &name]);

    let (code, _, err) = daemon.keel(&["push", &name]);
    assert_eq!(code, 1);
    assert!(err.contains("no basic auth credentials"), "{err}");

    let (code, out, err) = daemon.keel(&["login", "-u", "keel", "-p", "wrong", &registry.address]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains(&format!(
            "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
            registry.address
        )),
        "{err}"
    );
    assert!(!config.exists(), "a failed login stored something");

    let (code, out, err) = common::fed(
        &mut daemon.keel_command(&["login", "-u", "keel", "--password-stdin", &registry.address]),
        "s3cret\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Login Succeeded\n");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(
        saved["auths"][&registry.address]["auth"],
        "a2VlbDpzM2NyZXQ="
    );
    daemon.keel_ok(&["push", &name]);
    assert_eq!(
        daemon.keel_ok(&["logout", &registry.address]),
        format!("Removing login credentials for {}\n", registry.address)
    );

    daemon.keel_ok(&["rmi", &name]);
    let (code, _, err) = daemon.keel(&["pull", &name]);
    assert_eq!(code, 1);
    assert!(err.contains("no basic auth credentials"), "{err}");

    // The real docker CLI logs in (through Keel's /auth) and saves the
    // credentials in its config.json, which keel's pull then uses.
    let (code, _, err) = common::fed(
        &mut daemon.docker_command(&["login", "-u", "keel", "--password-stdin", &registry.address]),
        "s3cret\n",
    );
    assert_eq!(code, 0, "{err}");
    let out = daemon.keel_ok(&["pull", &name]);
    assert!(out.contains("Digest: sha256:"), "{out}");
}

#[test]
fn a_second_image_sharing_layers_downloads_only_the_missing_ones() {
    let registry = Registry::start();
    let daemon = TestDaemon::start();
    let first = format!("{}/shared/first:1", registry.address);
    let second = format!("{}/shared/second:1", registry.address);
    load_layered(&daemon, &first, "first.txt");
    load_layered(&daemon, &second, "second.txt");
    daemon.keel_ok(&["push", &first]);
    let out = daemon.keel_ok(&["push", &second]);
    assert!(
        out.contains(": Mounted from shared/first"),
        "the base layer is in the registry already: {out}"
    );
    assert_eq!(out.matches(": Pushed").count(), 1, "{out}");
    daemon.keel_ok(&["rmi", &first, &second]);
    assert!(blobs(&daemon).is_empty(), "{:?}", blobs(&daemon));

    let first_layers = remote_layers(&registry, "shared/first", "1");
    let second_layers = remote_layers(&registry, "shared/second", "1");
    assert_eq!(first_layers[0], second_layers[0], "one base layer blob");
    daemon.keel_ok(&["pull", &first]);
    let out = daemon.keel_ok(&["pull", &second]);
    assert!(
        out.contains(&format!("{}: Already exists", &first_layers[0][7..19])),
        "{out}"
    );
    assert_eq!(registry.blob_downloads(&first_layers[0]), 1);
    assert_eq!(registry.blob_downloads(&second_layers[1]), 1);
    let out = daemon.keel_ok(&["run", "--rm", &second, "cat", "/second.txt"]);
    assert_eq!(out, "second.txt\n");
}

#[test]
fn a_multi_platform_index_gives_the_platforms_image_or_a_clear_error() {
    let registry = Registry::start();
    let daemon = TestDaemon::start();
    let amd = format!("{}/multi/app:amd64", registry.address);
    let arm = format!("{}/multi/app:arm64", registry.address);
    load_layered(&daemon, &amd, "amd.txt");
    load_layered(&daemon, &arm, "arm.txt");
    let (amd_digest, amd_size) = pushed_digest(&daemon.keel_ok(&["push", &amd]));
    let (arm_digest, arm_size) = pushed_digest(&daemon.keel_ok(&["push", &arm]));
    let (amd_id, arm_id) = (image_id(&daemon, &amd), image_id(&daemon, &arm));
    let entry = |digest: &str, size: u64, arch: &str, variant: Option<&str>| {
        let mut platform = serde_json::json!({ "os": "linux", "architecture": arch });
        if let Some(variant) = variant {
            platform["variant"] = variant.into();
        }
        serde_json::json!({
            "mediaType": keel_registry::DOCKER_MANIFEST,
            "digest": digest,
            "size": size,
            "platform": platform,
        })
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": keel_registry::DOCKER_LIST,
        "manifests": [
            entry(&arm_digest, arm_size, "arm64", Some("v8")),
            entry(&amd_digest, amd_size, "amd64", None),
        ],
    });
    let client = keel_registry::Registry::connect(&registry.address, None, &[]).unwrap();
    client
        .put_manifest(
            "multi/app",
            "latest",
            keel_registry::DOCKER_LIST,
            &serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    daemon.keel_ok(&["rmi", &amd, &arm]);

    let name = format!("{}/multi/app", registry.address);
    let out = daemon.keel_ok(&["pull", &name]);
    assert_eq!(image_id(&daemon, &name), amd_id, "this machine is amd64");
    let index_digest = format!(
        "sha256:{}",
        keel_testkit::archive::hex(&serde_json::to_vec(&index).unwrap())
    );
    assert!(
        out.contains(&format!("Digest: {index_digest}\n")),
        "the index's digest: {out}"
    );
    daemon.keel_ok(&["pull", "--platform", "linux/arm64", &name]);
    assert_eq!(image_id(&daemon, &name), arm_id);

    let before = blobs(&daemon);
    let (code, _, err) = daemon.keel(&["pull", "--platform", "linux/s390x", &name]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error response from daemon: no matching manifest for linux/s390x in the manifest list entries\n"
    );
    assert_eq!(blobs(&daemon), before);
    let (code, _, err) = daemon.keel(&["pull", "--platform", "linux//", &name]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid platform \"linux//\""), "{err}");
}

/// What the relay in front of a registry does to its connections.
const PASS: usize = 0;
/// Cuts each connection after [`CUT_AFTER`] bytes of answers.
const CUT: usize = 1;
/// Cuts the first connection that gets that far, then takes no more: a
/// registry gone in the middle of a pull.
const VANISH: usize = 2;
const CUT_AFTER: usize = 64 * 1024;

/// A TCP relay to `upstream` behaving as `mode` says (read per connection).
fn flaky_relay(upstream: String, mode: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let mode = mode.load(Ordering::SeqCst);
            if mode == PASS {
                gone.store(false, Ordering::SeqCst);
            }
            if gone.load(Ordering::SeqCst) {
                continue;
            }
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut client_in, mut server_out) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_in, &mut server_out);
            });
            let gone = Arc::clone(&gone);
            std::thread::spawn(move || {
                let (mut server, mut client) = (server, client);
                let mut relayed = 0;
                let mut buffer = [0u8; 16 * 1024];
                while let Ok(n) = server.read(&mut buffer) {
                    if mode != PASS && relayed + n > CUT_AFTER {
                        gone.store(mode == VANISH, Ordering::SeqCst);
                        break;
                    }
                    if n == 0 || client.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                    relayed += n;
                }
                let _ = client.shutdown(std::net::Shutdown::Both);
                let _ = server.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    address
}

#[test]
fn bad_registry_answers_are_clear_errors_and_store_nothing() {
    let registry = Registry::start();
    let daemon = TestDaemon::start();
    let name = format!("{}/bad/app:1", registry.address);
    load_layered(&daemon, &name, "bad.txt");
    daemon.keel_ok(&["push", &name]);
    let layers = remote_layers(&registry, "bad/app", "1");
    daemon.keel_ok(&["rmi", &name]);
    assert!(blobs(&daemon).is_empty());

    // A missing image.
    let missing = format!("{}/bad/none:2", registry.address);
    let (code, _, err) = daemon.keel(&["pull", &missing]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "Error response from daemon: manifest for {missing} not found: manifest unknown: manifest unknown\n"
        )
    );

    // A network that cuts connections in the middle of the layers (the
    // busybox layer is about a megabyte): the download resumes where it
    // was cut, with Range requests, and the layer is whole.
    let mode = Arc::new(AtomicUsize::new(CUT));
    let relay = flaky_relay(registry.address.clone(), Arc::clone(&mode));
    let relayed = format!("{relay}/bad/app:1");
    daemon.keel_ok(&["pull", &relayed]);
    assert!(
        registry.blob_downloads(&layers[0]) > 1,
        "the busybox layer was fetched in one go"
    );
    daemon.keel_ok(&["rmi", &relayed]);
    assert!(blobs(&daemon).is_empty());

    // A registry that goes away in the middle: a clear error naming it,
    // nothing stored; the same pull once it is back restarts cleanly.
    mode.store(VANISH, Ordering::SeqCst);
    let (code, _, err) = daemon.keel(&["pull", &relayed]);
    assert_eq!(code, 1);
    assert!(err.contains("Error response from daemon: "), "{err}");
    assert!(err.contains(&relay), "the error names the registry: {err}");
    assert!(blobs(&daemon).is_empty(), "{:?}", blobs(&daemon));
    assert_eq!(
        std::fs::read_dir(daemon.root().join("image/ingest"))
            .unwrap()
            .count(),
        0
    );
    mode.store(PASS, Ordering::SeqCst);
    daemon.keel_ok(&["pull", &relayed]);
    daemon.keel_ok(&["rmi", &relayed]);
    assert!(blobs(&daemon).is_empty());

    // Layers whose bytes do not match their digests: damaged, and cut short.
    let damaged = registry.blob_file(&layers[1]);
    let original = std::fs::read(&damaged).unwrap();
    let mut flipped = original.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;
    for content in [flipped, original[..original.len() / 2].to_vec()] {
        std::fs::write(&damaged, &content).unwrap();
        let (code, _, err) = daemon.keel(&["pull", &name]);
        assert_eq!(code, 1);
        assert!(
            err.contains(&format!(
                "filesystem layer verification failed for digest {}",
                layers[1]
            )),
            "{err}"
        );
        assert!(blobs(&daemon).is_empty(), "{:?}", blobs(&daemon));
        let (_, images, _) = daemon.keel(&["images", "-q"]);
        assert_eq!(images, "");
    }

    // A registry that is not there.
    let mut registry = registry;
    registry.stop();
    let (code, _, err) = daemon.keel(&["pull", &name]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("Get \"http://{}/v2/\"", registry.address)),
        "{err}"
    );
    assert!(Path::new(&daemon.root().join("image/blobs/sha256")).exists());
}

/// A server answering Docker Hub's search API (`/v1/search`) on loopback,
/// and `/v2/` so it passes for a registry.
fn search_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 4096];
            let n = stream.read(&mut request).unwrap_or(0);
            let request = String::from_utf8_lossy(&request[..n]);
            let Some(target) = request
                .strip_prefix("GET ")
                .and_then(|r| r.split_whitespace().next())
            else {
                continue;
            };
            let body = match target.split_once('?') {
                Some(("/v1/search", query)) => {
                    let long = "A description that is much longer than forty-five characters";
                    let results = serde_json::json!([
                        { "name": "busybox", "description": "Busybox base image.", "star_count": 3300, "is_official": true, "is_automated": false },
                        { "name": "someone/busybox", "description": long, "star_count": 7, "is_official": false, "is_automated": true },
                    ]);
                    assert!(query.contains("q=busy"), "{query}");
                    serde_json::json!({ "num_results": 2, "query": "busy", "results": results })
                        .to_string()
                }
                _ => "{}".to_owned(),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    address
}

#[test]
fn search_lists_the_registrys_answer_as_docker_does() {
    let server = search_server();
    let daemon = TestDaemon::start();
    let info = daemon.keel_ok(&["info"]);
    assert!(
        info.contains(
            " Registry: https://index.docker.io/v1/\n Insecure Registries:\n  127.0.0.0/8\n"
        ),
        "{info}"
    );
    let (code, out, err) = daemon.docker(&["info", "--format", "{{.IndexServerAddress}}"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "https://index.docker.io/v1/\n"),
        "{err}"
    );
    let term = format!("{server}/busy");
    let out = daemon.keel_ok(&["search", &term]);
    assert_eq!(
        out,
        "NAME              DESCRIPTION                                     STARS     OFFICIAL\n\
         busybox           Busybox base image.                             3300      [OK]\n\
         someone/busybox   A description that is much longer than forty…   7\n"
    );
    let out = daemon.keel_ok(&[
        "search",
        "--filter",
        "stars=10",
        "--format",
        "{{.Name}}",
        &term,
    ]);
    assert_eq!(out, "busybox\n");
    let out = daemon.keel_ok(&[
        "search",
        "--filter",
        "is-official=false",
        "--no-trunc",
        "--format",
        "{{.Name}}: {{.Description}}",
        &term,
    ]);
    assert_eq!(
        out,
        "someone/busybox: A description that is much longer than forty-five characters\n"
    );
    let (code, _, err) = daemon.keel(&["search", "--limit", "0", &term]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Limit 0 is outside the range of [1, 100]"),
        "{err}"
    );
    let (code, out, err) =
        daemon.docker(&["search", "--format", "{{.Name}} {{.StarCount}}", &term]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "busybox 3300\nsomeone/busybox 7\n");
}

#[test]
fn all_tags_of_a_repository_are_pushed_and_pulled_with_all_tags() {
    let registry = Registry::start();
    let daemon = TestDaemon::with_busybox();
    let repository = format!("{}/all/app", registry.address);
    for tag in ["1", "2"] {
        daemon.keel_ok(&["tag", BUSYBOX, &format!("{repository}:{tag}")]);
    }
    let out = daemon.keel_ok(&["push", "--all-tags", &repository]);
    assert!(out.contains("\n1: digest: sha256:"), "{out}");
    assert!(out.contains("\n2: digest: sha256:"), "{out}");
    daemon.keel_ok(&[
        "rmi",
        &format!("{repository}:1"),
        &format!("{repository}:2"),
    ]);

    let out = daemon.keel_ok(&["pull", "-a", &repository]);
    assert!(out.ends_with(&format!("{repository}\n")), "{out}");
    let tags = daemon.keel_ok(&[
        "images",
        &repository,
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, [format!("{repository}:1"), format!("{repository}:2")]);

    let (code, _, err) = daemon.keel(&["pull", "-a", &format!("{repository}:1")]);
    assert_eq!(code, 1);
    assert!(
        err.contains("tag can't be used with --all-tags/-a"),
        "{err}"
    );
}
