//! testcontainers, for Python and for Node.js, against Keel's socket: a
//! container started and waited for by its log, exec, logs, files copied
//! in and out, and a network on which another container finds it by alias.
//! Ryuk (the reaper container, an image this machine cannot pull) is off,
//! as the testcontainers docs advise where it cannot run.

mod common;

use std::process::Command;

use common::{BUSYBOX, TestDaemon};

/// Where scripts/install-deps puts testcontainers for Node.js.
const NODE_MODULES: &str = "/usr/local/lib/keel-tests/node/node_modules";

/// What both scripts print when every step worked.
const EXPECTED: &str = "exec 0 resolved
cat copied in
back copied in
logs ready
";

fn client_env(command: &mut Command, daemon: &TestDaemon) {
    command
        .env(
            "DOCKER_HOST",
            format!("unix://{}", daemon.socket().display()),
        )
        .env("DOCKER_CONFIG", daemon.path("docker-config"))
        .env("TESTCONTAINERS_RYUK_DISABLED", "true")
        // No host-override lookups (a testcontainers config in $HOME).
        .env("HOME", daemon.path(""));
}

#[test]
fn testcontainers_python_starts_waits_execs_copies_and_networks_containers() {
    let daemon = TestDaemon::with_busybox();
    let script = format!(
        r#"
import pathlib, tempfile
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network
from testcontainers.core.wait_strategies import LogMessageWaitStrategy

with Network() as network:
    server = (DockerContainer("{BUSYBOX}")
              .with_command(["sh", "-c", "echo ready; exec sleep 600"])
              .with_network(network).with_network_aliases("web")
              .waiting_for(LogMessageWaitStrategy("ready")))
    with server:
        client = DockerContainer("{BUSYBOX}").with_command(["sleep", "600"]).with_network(network)
        with client:
            r = client.exec(["sh", "-c", "nslookup web >/dev/null && echo resolved"])
            print("exec", r.exit_code, r.output.decode().strip())
            with tempfile.TemporaryDirectory() as d:
                p = pathlib.Path(d) / "in.txt"
                p.write_text("copied in\n")
                server.copy_into_container(p, "/tmp/in.txt")
                print("cat", server.exec(["cat", "/tmp/in.txt"]).output.decode().strip())
                server.copy_from_container("/tmp/in.txt", pathlib.Path(d) / "out.txt")
                print("back", (pathlib.Path(d) / "out.txt").read_text().strip())
            out, _ = server.get_logs()
            print("logs", out.decode().strip())
"#
    );
    let mut command = Command::new("python3");
    command.args(["-c", &script]);
    client_env(&mut command, &daemon);
    let (code, out, err) = common::output(&mut command);
    assert_eq!(
        (code, out.as_str()),
        (0, EXPECTED),
        "{err}\ndaemon log:\n{}",
        daemon.log()
    );
    // Each `with` removed what it made.
    let (_, left, _) = daemon.docker(&["ps", "-aq"]);
    assert_eq!(left, "");
    let (_, networks, _) = daemon.docker(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(networks, "bridge\nhost\nnone\n");
}

#[test]
fn testcontainers_node_starts_waits_execs_copies_and_networks_containers() {
    let daemon = TestDaemon::with_busybox();
    let script = format!(
        r#"
const {{ GenericContainer, Network, Wait }} = require("testcontainers");
// testcontainers unrefs its log stream's socket: this timer keeps Node.js
// waiting for the lines (and fails the script if they never come).
const guard = setTimeout(() => {{ console.error("timed out"); process.exit(2); }}, 30000);
(async () => {{
  const network = await new Network().start();
  const server = await new GenericContainer("{BUSYBOX}")
    .withCommand(["sh", "-c", "echo ready; exec sleep 600"])
    .withNetwork(network).withNetworkAliases("web")
    .withWaitStrategy(Wait.forLogMessage("ready"))
    .withCopyContentToContainer([{{ content: "copied in\n", target: "/tmp/in.txt" }}])
    .start();
  const client = await new GenericContainer("{BUSYBOX}")
    .withCommand(["sleep", "600"]).withNetwork(network).start();
  const r = await client.exec(["sh", "-c", "nslookup web >/dev/null && echo resolved"]);
  console.log("exec", r.exitCode, r.output.trim());
  const cat = await server.exec(["cat", "/tmp/in.txt"]);
  console.log("cat", cat.output.trim());
  const chunks = [];
  for await (const chunk of await server.copyArchiveFromContainer("/tmp/in.txt")) chunks.push(chunk);
  // One tar member: its content follows the 512-byte header.
  const tar = Buffer.concat(chunks);
  console.log("back", tar.subarray(512, 512 + 9).toString());
  let text = "";
  for await (const chunk of await server.logs()) {{
    text += chunk;
    if (text.includes("ready")) break;
  }}
  console.log("logs", text.trim());
  await client.stop();
  await server.stop();
  await network.stop();
  clearTimeout(guard);
}})().catch((e) => {{ console.error(e); process.exit(1); }});
"#
    );
    let mut command = Command::new("node");
    command.args(["-e", &script]).env("NODE_PATH", NODE_MODULES);
    client_env(&mut command, &daemon);
    let (code, out, err) = common::output(&mut command);
    assert_eq!(
        (code, out.as_str()),
        (0, EXPECTED),
        "{err}\nis testcontainers in {NODE_MODULES}? (scripts/install-deps)\ndaemon log:\n{}",
        daemon.log()
    );
    let (_, left, _) = daemon.docker(&["ps", "-aq"]);
    assert_eq!(left, "");
    let (_, networks, _) = daemon.docker(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(networks, "bridge\nhost\nnone\n");
}

#[test]
fn testcontainers_node_builds_an_image_from_a_dockerfile_and_runs_it() {
    let daemon = TestDaemon::with_busybox();
    let context = daemon.path("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        format!("FROM {BUSYBOX}\nCOPY greeting /greeting\nCMD [\"sh\", \"-c\", \"cat /greeting; exec sleep 600\"]\n"),
    )
    .unwrap();
    std::fs::write(context.join("greeting"), "built by keel\n").unwrap();
    let script = format!(
        r#"
const {{ GenericContainer, Wait }} = require("testcontainers");
(async () => {{
  const image = await GenericContainer.fromDockerfile("{context}").build("keel-test/tc-built:1", {{ deleteOnExit: false }});
  const container = await image.withWaitStrategy(Wait.forLogMessage("built by keel")).start();
  const r = await container.exec(["cat", "/greeting"]);
  console.log(r.output.trim());
  await container.stop();
}})().catch((e) => {{ console.error(e); process.exit(1); }});
"#,
        context = context.display()
    );
    let mut command = Command::new("node");
    command.args(["-e", &script]).env("NODE_PATH", NODE_MODULES);
    client_env(&mut command, &daemon);
    let (code, out, err) = common::output(&mut command);
    assert_eq!(
        (code, out.as_str()),
        (0, "built by keel\n"),
        "{err}\ndaemon log:\n{}",
        daemon.log()
    );
    let (code, history, err) = daemon.docker(&[
        "history",
        "--format",
        "{{.CreatedBy}}",
        "keel-test/tc-built:1",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(history.contains("COPY"), "{history}");
}
