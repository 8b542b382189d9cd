//! Engine API conformance: what a dockerd outside any swarm and with no
//! plugin answers, `GET /info` in full, an early error answered while the
//! client still streams its body, and `GET /distribution/{name}/json`
//! against a real registry. Raw HTTP over the socket, the docker CLI and
//! docker-py.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;

use common::{BUSYBOX, TestDaemon};
use keel_testkit::registry::Registry;
use serde_json::{Value, json};

/// An answer read off the socket: its status and its body as JSON.
struct Answer {
    status: u16,
    body: Value,
}

/// Sends one request as the simplest clients do (python's http.client):
/// the head, then the whole body, and only then reads the answer.
fn request(socket: &Path, method: &str, path: &str, body: impl Read) -> Answer {
    let mut stream = UnixStream::connect(socket).unwrap();
    send(&mut stream, method, path, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    read_answer(stream)
}

fn get(socket: &Path, path: &str) -> Answer {
    request(socket, "GET", path, std::io::empty())
}

fn send(
    stream: &mut UnixStream,
    method: &str,
    path: &str,
    mut body: impl Read,
) -> std::io::Result<()> {
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: keel\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    )?;
    let mut chunk = vec![0; 256 * 1024];
    loop {
        let n = body.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        write!(stream, "{n:x}\r\n")?;
        stream.write_all(&chunk[..n])?;
        stream.write_all(b"\r\n")?;
    }
    stream.write_all(b"0\r\n\r\n")
}

fn read_answer(stream: UnixStream) -> Answer {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut chunked = false;
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        chunked |= line.eq_ignore_ascii_case("transfer-encoding: chunked\r\n");
    }
    let mut raw = Vec::new();
    reader.read_to_end(&mut raw).unwrap();
    let body = if chunked { dechunk(&raw) } else { raw };
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    Answer { status, body }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..end]).unwrap(), 16).unwrap();
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 4 + size..];
    }
}

fn python(daemon: &TestDaemon, body: &str) -> (i32, String, String) {
    let script = format!(
        "import docker\nclient = docker.DockerClient(base_url=\"unix://{}\", version=\"auto\")\n{body}",
        daemon.socket().display()
    );
    common::output(Command::new("python3").args(["-c", &script]))
}

const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

#[test]
fn swarm_endpoints_answer_as_a_node_outside_any_swarm() {
    let daemon = TestDaemon::start();
    let socket = daemon.socket();
    for (method, path) in [
        ("GET", "/v1.47/swarm"),
        ("GET", "/v1.47/swarm/unlockkey"),
        ("POST", "/v1.47/swarm/update?version=1"),
        ("POST", "/v1.47/swarm/unlock"),
        ("GET", "/v1.47/nodes"),
        ("GET", "/v1.47/nodes/n1"),
        ("GET", "/v1.47/services"),
        ("POST", "/v1.47/services/create"),
        ("GET", "/v1.47/services/web"),
        ("POST", "/v1.47/services/web/update?version=1"),
        ("GET", "/v1.47/services/web/logs?stdout=1"),
        ("DELETE", "/v1.47/services/web"),
        ("GET", "/v1.47/tasks"),
        ("GET", "/v1.47/secrets"),
        ("POST", "/v1.47/secrets/create"),
        ("GET", "/v1.47/configs"),
        ("POST", "/v1.47/configs/c1/update?version=1"),
    ] {
        let answer = request(&socket, method, path, std::io::empty());
        assert_eq!(answer.status, 503, "{method} {path}");
        assert_eq!(
            answer.body,
            json!({ "message": NOT_A_MANAGER }),
            "{method} {path}"
        );
    }
    let leave = request(&socket, "POST", "/v1.47/swarm/leave", std::io::empty());
    assert_eq!(
        (leave.status, leave.body),
        (
            503,
            json!({ "message": "This node is not part of a swarm" })
        )
    );
    let init = request(&socket, "POST", "/v1.47/swarm/init", std::io::empty());
    assert_eq!(init.status, 501);
    assert!(
        init.body["message"]
            .as_str()
            .unwrap()
            .contains("Keel does not run swarm mode"),
        "{}",
        init.body
    );

    for args in [
        &["node", "ls"][..],
        &["service", "ls"],
        &["secret", "ls"],
        &["config", "ls"],
    ] {
        let (code, out, err) = daemon.docker(args);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert_eq!(
            err,
            format!("Error response from daemon: {NOT_A_MANAGER}\n"),
            "{args:?}"
        );
    }
    let (code, _, err) = daemon.docker(&["swarm", "leave"]);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "Error response from daemon: This node is not part of a swarm\n"
        )
    );

    let (code, out, err) = python(
        &daemon,
        "try:\n    client.services.list()\nexcept docker.errors.APIError as e:\n    print(e.status_code, e.explanation)",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("503 {NOT_A_MANAGER}\n"));
}

#[test]
fn no_plugin_is_installed_and_none_can_be() {
    let daemon = TestDaemon::start();
    let socket = daemon.socket();
    let list = get(&socket, "/v1.47/plugins");
    assert_eq!((list.status, list.body), (200, json!([])));
    let inspect = get(&socket, "/v1.47/plugins/vieux/sshfs:latest/json");
    assert_eq!(
        (inspect.status, inspect.body),
        (
            404,
            json!({ "message": "plugin \"vieux/sshfs:latest\" not found" })
        )
    );
    let enable = request(
        &socket,
        "POST",
        "/v1.47/plugins/sshfs/enable",
        std::io::empty(),
    );
    assert_eq!(
        (enable.status, enable.body),
        (404, json!({ "message": "plugin \"sshfs\" not found" }))
    );
    let pull = request(
        &socket,
        "POST",
        "/v1.47/plugins/pull?remote=vieux/sshfs",
        std::io::empty(),
    );
    assert_eq!(pull.status, 501);
    assert!(
        pull.body["message"]
            .as_str()
            .unwrap()
            .contains("Keel does not run plugins"),
        "{}",
        pull.body
    );

    let (code, out, err) = daemon.docker(&["plugin", "ls"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "only the header: {out}");
    let (code, _, err) = daemon.docker(&["plugin", "rm", "sshfs"]);
    assert_eq!(code, 1);
    assert!(err.contains("plugin \"sshfs\" not found"), "{err}");
    let (code, _, err) = daemon.docker(&[
        "plugin",
        "install",
        "--grant-all-permissions",
        "vieux/sshfs",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("Keel does not run plugins"), "{err}");

    let (code, out, err) = python(&daemon, "print(client.plugins.list())");
    assert_eq!((code, out.as_str()), (0, "[]\n"), "{err}");
}

/// What /proc/meminfo says the machine has, in bytes.
fn mem_total() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = text.lines().find(|l| l.starts_with("MemTotal:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

#[test]
fn info_has_dockers_fields_from_this_host_and_no_swarm() {
    let daemon = TestDaemon::with_busybox();
    daemon.keel_ok(&["create", "--name", "idle", BUSYBOX, "true"]);
    let info = get(&daemon.socket(), "/v1.47/info");
    assert_eq!(info.status, 200);
    let info = info.body;
    let ncpu = std::thread::available_parallelism().unwrap().get();
    assert_eq!(info["NCPU"], ncpu);
    assert_eq!(info["MemTotal"], mem_total());
    assert_eq!(
        (
            info["Containers"].clone(),
            info["ContainersStopped"].clone()
        ),
        (json!(1), json!(1))
    );
    assert_eq!(info["Images"], 1);
    assert_eq!(
        info["Swarm"],
        json!({
            "NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
            "ControlAvailable": false, "Error": "", "RemoteManagers": null,
        })
    );
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap();
    let pretty = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .unwrap()
        .trim_matches('"');
    assert_eq!(info["OperatingSystem"], pretty);
    for (key, value) in [
        ("OSType", json!("linux")),
        ("Architecture", json!("x86_64")),
        ("LoggingDriver", json!("json-file")),
        ("CgroupDriver", json!("cgroupfs")),
        // This machine's controllers are in v1 hierarchies.
        ("CgroupVersion", json!("1")),
        ("IndexServerAddress", json!("https://index.docker.io/v1/")),
        ("GenericResources", Value::Null),
        ("Labels", json!([])),
        ("ExperimentalBuild", json!(false)),
        ("DefaultRuntime", json!("runc")),
        ("Isolation", json!("")),
        ("MemoryLimit", json!(true)),
        ("SwapLimit", json!(true)),
        ("CpuCfsQuota", json!(true)),
        ("PidsLimit", json!(true)),
        ("IPv4Forwarding", json!(true)),
        ("Warnings", json!([])),
    ] {
        assert_eq!(info[key], value, "{key}");
    }
    assert_eq!(
        info["Name"],
        rustix::system::uname().nodename().to_str().unwrap()
    );
    assert_eq!(info["Plugins"]["Log"], json!(["json-file"]));
    let monitor = Path::new(common::KEEL).with_file_name("keel-monitor");
    assert_eq!(info["Runtimes"], json!({ "runc": { "path": monitor } }));
    assert_eq!(
        info["ContainerdCommit"],
        json!({ "ID": "N/A", "Expected": "" })
    );
    assert_eq!(
        info["SecurityOptions"],
        json!(["name=seccomp,profile=builtin", "name=cgroupns"])
    );
    let time = info["SystemTime"].as_str().unwrap();
    assert!(keel_time::unix_nanos(time).is_some(), "RFC 3339: {time}");
    assert!(
        info["NGoroutines"].as_u64().unwrap() > 1,
        "the daemon's threads"
    );
    assert!(info["NFd"].as_u64().unwrap() > 2);

    let (code, out, err) = daemon.docker(&["info"]);
    assert_eq!((code, err.as_str()), (0, ""), "no warning nor error: {out}");
    for line in [
        " Swarm: inactive\n",
        " Runtimes: runc\n",
        " Default Runtime: runc\n",
        " Cgroup Version: 1\n",
        &format!(" CPUs: {ncpu}\n"),
        " Security Options:\n  seccomp\n   Profile: builtin\n  cgroupns\n",
    ] {
        assert!(out.contains(line), "{line:?} in {out}");
    }

    let (code, out, err) = python(
        &daemon,
        "info = client.info()\nprint(info['Swarm']['LocalNodeState'], info['MemTotal'] > 0, info['NCPU'])",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("inactive True {ncpu}\n"));
}

/// A body of `size` zero bytes.
fn zeros(size: u64) -> impl Read {
    std::io::repeat(0).take(size)
}

#[test]
fn an_early_error_is_answered_after_reading_the_body_the_client_still_sends() {
    let daemon = TestDaemon::with_busybox();
    let socket = daemon.socket();
    let size = 50 << 20;
    let unknown = request(&socket, "POST", "/v1.47/nonexistent", zeros(size));
    assert_eq!(
        (unknown.status, unknown.body),
        (404, json!({ "message": "page not found" }))
    );
    let archive = request(
        &socket,
        "PUT",
        "/v1.47/containers/nosuch/archive?path=/",
        zeros(size),
    );
    assert_eq!(
        (archive.status, archive.body),
        (404, json!({ "message": "No such container: nosuch" }))
    );
    // A bad query, answered before the body of a known endpoint is read.
    let build = request(&socket, "POST", "/v1.47/build?buildargs=nope", zeros(size));
    assert_eq!(build.status, 400, "{}", build.body);
    let message = build.body["message"].as_str().unwrap();
    assert!(
        message.starts_with("invalid buildargs \"nope\""),
        "{message}"
    );

    // curl without its 100-continue wait streams the body at once.
    let big = daemon.path("big");
    std::fs::File::create(&big).unwrap().set_len(size).unwrap();
    let out = Command::new("curl")
        .args(["-sS", "-H", "Expect:", "--unix-socket"])
        .arg(&socket)
        .arg("-T")
        .arg(&big)
        .args(["-w", "\\n%{http_code}", "http://keel/v1.47/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"message\":\"page not found\"}\n\n404",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // docker-py sends the whole tar before it reads the answer.
    let (code, out, err) = python(
        &daemon,
        "try:\n    client.api.put_archive('nosuch', '/', b'\\0' * (50 << 20))\nexcept docker.errors.NotFound as e:\n    print(e.explanation)",
    );
    assert_eq!(
        (code, out.as_str()),
        (0, "No such container: nosuch\n"),
        "{err}"
    );
    // The daemon goes on answering.
    assert_eq!(get(&socket, "/v1.47/plugins").status, 200);
}

/// The digest a push printed: `TAG: digest: sha256:… size: N`.
fn pushed_digest(output: &str) -> String {
    let line = output
        .lines()
        .find(|line| line.contains(": digest: "))
        .unwrap_or_else(|| panic!("no digest line in {output}"));
    line.split_whitespace().nth(2).unwrap().to_owned()
}

#[test]
fn distribution_inspect_gives_the_registrys_digest_and_platform() {
    let registry = Registry::start();
    let daemon = TestDaemon::with_busybox();
    let name = format!("{}/conformance/app:v1", registry.address);
    daemon.keel_ok(&["tag", BUSYBOX, &name]);
    let digest = pushed_digest(&daemon.keel_ok(&["push", &name]));

    let answer = get(
        &daemon.socket(),
        &format!("/v1.47/distribution/{name}/json"),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let descriptor = &answer.body["Descriptor"];
    assert_eq!(descriptor["digest"], digest.as_str());
    assert_eq!(
        descriptor["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let client = keel_registry::Registry::connect(&registry.address, None, &[]).unwrap();
    let (_, bytes, _) = client.manifest("conformance/app", "v1").unwrap();
    assert_eq!(descriptor["size"], bytes.len());
    assert_eq!(
        answer.body["Platforms"],
        json!([{ "architecture": "amd64", "os": "linux" }])
    );

    let script = format!(
        r#"
data = client.images.get_registry_data("{name}")
print(data.id, data.has_platform("linux/amd64"), data.has_platform("linux/arm64"))
try:
    client.images.get_registry_data("{registry}/conformance/none:v1")
except docker.errors.NotFound as e:
    print(e.explanation)
"#,
        registry = registry.address,
    );
    let (code, out, err) = python(&daemon, &script);
    assert_eq!(code, 0, "{err}");
    // The registry's own words, as moby passes them on (this registry says
    // MANIFEST_UNKNOWN of a repository it never had too).
    assert_eq!(
        out,
        format!("{digest} True False\nmanifest unknown: manifest unknown\n")
    );
    let missing_tag = get(
        &daemon.socket(),
        &format!(
            "/v1.47/distribution/{}/conformance/app:v2/json",
            registry.address
        ),
    );
    assert_eq!(
        (missing_tag.status, missing_tag.body),
        (
            404,
            json!({ "message": "manifest unknown: manifest unknown" })
        )
    );
}
