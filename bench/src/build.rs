//! `build`: the layered build of a Spring Boot application, made offline.
//! The "jar" is a zip (busybox unzip extracts it) whose four layers,
//! named by `BOOT-INF/layers.idx`, are dependencies (~60 MB), the loader,
//! snapshot dependencies and the application's classes; the Dockerfile's
//! builder stage extracts it and the final stage copies one layer per
//! COPY --from. Three phases, each builder in turn: cold (no image, no
//! cache), a rebuild with nothing changed, and a rebuild after one class
//! changed (which should re-run the builder stage and leave the three
//! lower layers cache hits).
//!
//! Keel against dockerd 20.10's BuildKit (`DOCKER_BUILDKIT=1`) and its
//! classic builder (`DOCKER_BUILDKIT=0`), and `podman build --layers`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use keel_testkit::docker::Docker;
use keel_testkit::podman::{Podman, ULIMITS, output};

use crate::engine::Keel;

const DOCKERFILE: &str = "FROM keel-busybox AS builder
WORKDIR /build
COPY app.jar .
RUN unzip -q app.jar -d extracted
FROM keel-busybox
WORKDIR /app
COPY --from=builder /build/extracted/dependencies/ ./
COPY --from=builder /build/extracted/spring-boot-loader/ ./
COPY --from=builder /build/extracted/snapshot-dependencies/ ./
COPY --from=builder /build/extracted/application/ ./
CMD [\"ls\", \"/app\"]
";

/// Writes the jar: `dependencies` of 30 incompressible 2 MB jars, and the
/// three small layers; `class` goes into the application's class.
fn write_jar(path: &Path, class: &str) -> Result<()> {
    let script = r#"
import os, random, sys, zipfile
path, cls = sys.argv[1], sys.argv[2]
rng = random.Random(42)
with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as jar:
    jar.writestr("BOOT-INF/layers.idx",
        '- "dependencies":\n  - "BOOT-INF/lib/"\n- "spring-boot-loader":\n  - "org/"\n'
        '- "snapshot-dependencies":\n- "application":\n  - "BOOT-INF/classes/"\n')
    for i in range(30):
        jar.writestr(f"dependencies/BOOT-INF/lib/dep-{i}.jar", rng.randbytes(2 * 1024 * 1024))
    for i in range(40):
        jar.writestr(f"spring-boot-loader/org/springframework/boot/loader/L{i}.class", rng.randbytes(8192))
    jar.writestr("snapshot-dependencies/BOOT-INF/lib/snapshot.jar", rng.randbytes(65536))
    jar.writestr("application/BOOT-INF/classes/App.class", cls.encode() * 64)
    jar.writestr("application/BOOT-INF/classes/application.properties", b"server.port=8080\n")
"#;
    let (code, _, err) = output(Command::new("python3").args([
        "-c",
        script,
        path.to_str().context("UTF-8 path")?,
        class,
    ]));
    ensure!(code == 0, "writing the jar: {err}");
    Ok(())
}

/// One builder under the bench.
struct Builder {
    name: &'static str,
    /// Its CLI, to which each command's arguments are added.
    cli: std::rc::Rc<dyn Fn() -> Command>,
    env: Vec<(&'static str, &'static str)>,
    /// The arguments that build the context (its path is added).
    build: Vec<&'static str>,
    /// Commands that take the image and every cache away.
    reset: Vec<Vec<&'static str>>,
    cold: Vec<Duration>,
    noop: Vec<Duration>,
    changed: Vec<Duration>,
}

impl Builder {
    fn new(
        name: &'static str,
        cli: std::rc::Rc<dyn Fn() -> Command>,
        env: Vec<(&'static str, &'static str)>,
        build: Vec<&'static str>,
        reset: Vec<Vec<&'static str>>,
    ) -> Builder {
        Builder {
            name,
            cli,
            env,
            build,
            reset,
            cold: Vec::new(),
            noop: Vec::new(),
            changed: Vec::new(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = (self.cli)();
        command.envs(self.env.iter().copied()).args(args);
        command
    }

    fn time_build(&self, context: &Path) -> Result<Duration> {
        let mut command = self.command(&self.build);
        command.arg(context);
        let start = Instant::now();
        let (code, out, err) = output(&mut command);
        let took = start.elapsed();
        ensure!(code == 0, "{}: build failed: {out}{err}", self.name);
        Ok(took)
    }

    fn reset(&self) {
        for args in &self.reset {
            let _ = output(&mut self.command(args));
        }
    }
}

pub fn build_bench(iterations: usize) -> Result<()> {
    let work = tempfile::Builder::new()
        .prefix("keel-bench-build-")
        .tempdir()?;
    let context: PathBuf = work.path().join("context");
    std::fs::create_dir_all(&context)?;
    std::fs::write(context.join("Dockerfile"), DOCKERFILE)?;
    let keel = std::rc::Rc::new(Keel::start(&[])?);
    let tagged = vec!["build", "-q", "-t", "bench-app"];
    let mut builders = vec![Builder::new(
        "keel",
        std::rc::Rc::new(move || keel.command()),
        Vec::new(),
        tagged.clone(),
        vec![
            vec!["rmi", "-f", "bench-app"],
            vec!["builder", "prune", "-af"],
        ],
    )];
    // BuildKit's RUN steps want Docker's default bridge; its rules go
    // with it, and the FORWARD policy dockerd sets is put back after.
    let policy = crate::network::forward_policy();
    let docker = (Path::new("/usr/sbin/dockerd").exists()
        || Path::new("/usr/bin/dockerd").exists())
    .then(|| std::rc::Rc::new(Docker::start_networked()));
    let _policy_back = docker
        .is_some()
        .then(|| crate::network::PolicyBack::new(policy));
    match &docker {
        Some(docker) => {
            for (name, buildkit) in [("docker BuildKit", "1"), ("docker classic", "0")] {
                let docker = docker.clone();
                builders.push(Builder::new(
                    name,
                    std::rc::Rc::new(move || docker.command()),
                    vec![("DOCKER_BUILDKIT", buildkit)],
                    tagged.clone(),
                    vec![
                        vec!["rmi", "-f", "bench-app"],
                        vec!["builder", "prune", "-af"],
                        vec!["image", "prune", "-f"],
                    ],
                ));
            }
        }
        None => println!("docker: dockerd not installed, skipped"),
    }
    let podman = Podman::with_busybox(None);
    let mut podman_build = vec![
        "build",
        "--layers",
        "-q",
        "--network",
        "none",
        "-t",
        "bench-app",
    ];
    podman_build.extend(ULIMITS);
    builders.push(Builder::new(
        "podman --layers",
        std::rc::Rc::new(move || podman.command()),
        Vec::new(),
        podman_build,
        vec![vec!["rmi", "-f", "bench-app"], vec!["image", "prune", "-f"]],
    ));
    let jar = context.join("app.jar");
    for round in 0..iterations {
        for builder in &mut builders {
            builder.reset();
            write_jar(&jar, &format!("class v{round}"))?;
            builder.cold.push(builder.time_build(&context)?);
            builder.noop.push(builder.time_build(&context)?);
            write_jar(&jar, &format!("class v{round} changed"))?;
            builder.changed.push(builder.time_build(&context)?);
        }
    }
    for builder in &builders {
        builder.reset();
    }
    println!(
        "Layered build (a ~60 MB dependencies layer and three small ones, by COPY --from a builder stage that unzips the jar), median of {iterations}"
    );
    println!(
        "{:<18} {:>12} {:>14} {:>16}",
        "builder", "cold", "no-op rebuild", "changed class"
    );
    for builder in &builders {
        println!(
            "{:<18} {:>9.0} ms {:>11.0} ms {:>13.0} ms",
            builder.name,
            crate::ms(crate::median(&builder.cold)),
            crate::ms(crate::median(&builder.noop)),
            crate::ms(crate::median(&builder.changed)),
        );
    }
    Ok(())
}
