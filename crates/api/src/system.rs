//! `/_ping`, `/version` and `/info`: what clients ask first.

use hyper::{Response, StatusCode, header};
use serde_json::json;

use crate::Daemon;
use crate::http::{Body, Reply, json};

/// The newest Engine API version Keel speaks, and the oldest it accepts.
pub const API_VERSION: &str = "1.47";
pub const MIN_API_VERSION: &str = "1.24";

pub fn ping(head: bool) -> Reply {
    Response::builder()
        .status(StatusCode::OK)
        .header("API-Version", API_VERSION)
        .header("OSType", "linux")
        .header("Docker-Experimental", "false")
        .header("Builder-Version", "1")
        .header(header::CACHE_CONTROL, "no-cache, no-store, must-revalidate")
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::Full(
            (!head).then(|| bytes::Bytes::from_static(b"OK")),
        ))
        .expect("a valid response")
}

fn kernel_version() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

pub fn version() -> Reply {
    let version = env!("CARGO_PKG_VERSION");
    json(
        StatusCode::OK,
        &json!({
            "Platform": {"Name": "Keel"},
            "Components": [{"Name": "Engine", "Version": version, "Details": {
                "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux",
                "Arch": keel_image::go_arch(), "KernelVersion": kernel_version(),
            }}],
            "Version": version,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": "",
            "Os": "linux",
            "Arch": keel_image::go_arch(),
            "KernelVersion": kernel_version(),
        }),
    )
}

pub fn info(daemon: &Daemon) -> Reply {
    let images = daemon
        .store()
        .images()
        .map(|images| images.len())
        .unwrap_or(0);
    let uname = rustix::system::uname();
    let containers = daemon.engine.containers();
    let paused = containers.iter().filter(|c| c.state.paused).count();
    let running = containers
        .iter()
        .filter(|c| c.state.status == keel_engine::Status::Running)
        .count()
        - paused;
    // Docker's registry settings: Docker Hub, loopback always insecure,
    // and the registries `--insecure-registry` names.
    let mut index_configs = json!({
        "docker.io": { "Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true },
    });
    for name in daemon.engine.insecure_registries() {
        index_configs[name] =
            json!({ "Name": name, "Mirrors": [], "Secure": false, "Official": false });
    }
    json(
        StatusCode::OK,
        &json!({
            "ID": "",
            "Name": uname.nodename().to_string_lossy(),
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "Containers": containers.len(),
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": containers.len() - running - paused,
            "Images": images,
            "Driver": "overlay2",
            "DockerRootDir": daemon.store().root().parent(),
            "OperatingSystem": "linux",
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "KernelVersion": kernel_version(),
            "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "CgroupDriver": "cgroupfs",
            "SecurityOptions": ["name=seccomp,profile=builtin"],
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {
                "InsecureRegistryCIDRs": ["127.0.0.0/8", "::1/128"],
                "IndexConfigs": index_configs,
                "Mirrors": [],
            },
            "Warnings": [],
        }),
    )
}
