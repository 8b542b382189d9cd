//! `/_ping`, `/version` and `/info`: what clients ask first.

use hyper::{Response, StatusCode, header};
use serde_json::json;

use keel_api_types::system::{ComponentVersion, Platform, SystemVersion};
use keel_api_types::{API_VERSION, MIN_API_VERSION};

use crate::Daemon;
use crate::http::{Body, Reply, json};

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
    let details = [
        ("ApiVersion", API_VERSION.to_owned()),
        ("MinAPIVersion", MIN_API_VERSION.to_owned()),
        ("Os", "linux".to_owned()),
        ("Arch", keel_image::go_arch().to_owned()),
        ("KernelVersion", kernel_version()),
    ];
    json(
        StatusCode::OK,
        &SystemVersion {
            platform: Platform {
                name: "Keel".to_owned(),
            },
            components: vec![ComponentVersion {
                name: "Engine".to_owned(),
                version: version.to_owned(),
                details: details
                    .into_iter()
                    .map(|(key, value)| (key.to_owned(), value))
                    .collect(),
            }],
            version: version.to_owned(),
            api_version: API_VERSION.to_owned(),
            min_api_version: MIN_API_VERSION.to_owned(),
            git_commit: String::new(),
            go_version: String::new(),
            os: "linux".to_owned(),
            arch: keel_image::go_arch().to_owned(),
            kernel_version: kernel_version(),
        },
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
