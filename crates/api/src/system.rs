//! `/_ping`, `/version` and `/info`: what clients ask first.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use hyper::{Response, StatusCode, header};
use keel_cgroups::{Hierarchies, Version};

use keel_api_types::system::{
    Commit, ComponentVersion, IndexInfo, Platform, PluginsInfo, RegistryConfig, Runtime, SwarmInfo,
    SystemInfo, SystemVersion,
};
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

/// GET /info: moby's `SystemInfo`, from what this host and Keel have.
pub fn info(daemon: &Daemon) -> Reply {
    let images = daemon
        .store()
        .images()
        .map(|images| images.len())
        .unwrap_or(0);
    let containers = daemon.engine.containers();
    let paused = containers.iter().filter(|c| c.state.paused).count();
    let running = containers
        .iter()
        .filter(|c| c.state.status == keel_engine::Status::Running)
        .count()
        - paused;
    let hierarchies = Hierarchies::detect().ok();
    let cgroup_version = hierarchies
        .as_ref()
        .map_or(Version::V2, Hierarchies::version);
    let limits = hierarchies.as_ref().map(Limits::probe).unwrap_or_default();
    let ipv4_forwarding = sysctl_on("net/ipv4/ip_forward");
    let mut warnings = limits.warnings(cgroup_version);
    if !ipv4_forwarding {
        warnings.push("WARNING: IPv4 forwarding is disabled".to_owned());
    }
    let (monitor, init_path) = daemon.engine.runtime_binaries();
    let os_release = fs::read_to_string("/etc/os-release").unwrap_or_default();
    let root = daemon.store().root().parent().unwrap_or(Path::new("/"));
    let info = SystemInfo {
        id: String::new(),
        containers: containers.len(),
        containers_running: running,
        containers_paused: paused,
        containers_stopped: containers.len() - running - paused,
        images,
        driver: "overlay2".to_owned(),
        driver_status: vec![["Backing Filesystem".to_owned(), backing_filesystem(root)]],
        plugins: PluginsInfo {
            volume: vec!["local".to_owned()],
            network: ["bridge", "host", "null"].map(str::to_owned).to_vec(),
            authorization: None,
            log: vec!["json-file".to_owned()],
        },
        memory_limit: limits.memory,
        swap_limit: limits.swap,
        kernel_memory_tcp: limits.kernel_memory_tcp,
        cpu_cfs_period: limits.cpu_cfs,
        cpu_cfs_quota: limits.cpu_cfs,
        cpu_shares: limits.cpu_shares,
        cpu_set: limits.cpuset,
        pids_limit: limits.pids,
        ipv4_forwarding,
        bridge_nf_iptables: sysctl_on("net/bridge/bridge-nf-call-iptables"),
        bridge_nf_ip6tables: sysctl_on("net/bridge/bridge-nf-call-ip6tables"),
        debug: false,
        nfd: entries("/proc/self/fd"),
        oom_kill_disable: limits.oom_kill_disable,
        // Keel has no goroutines: its threads are what does the work.
        ngoroutines: entries("/proc/self/task"),
        system_time: keel_time::now_rfc3339(),
        logging_driver: "json-file".to_owned(),
        cgroup_driver: "cgroupfs".to_owned(),
        cgroup_version: match cgroup_version {
            Version::V1 => "1",
            Version::V2 => "2",
        }
        .to_owned(),
        // The engine's event stream does not count its subscribers.
        nevents_listener: 0,
        kernel_version: kernel_version(),
        operating_system: os_release_field(&os_release, "PRETTY_NAME")
            .unwrap_or("Linux")
            .to_owned(),
        os_version: os_release_field(&os_release, "VERSION_ID")
            .unwrap_or_default()
            .to_owned(),
        os_type: "linux".to_owned(),
        architecture: std::env::consts::ARCH.to_owned(),
        index_server_address: "https://index.docker.io/v1/".to_owned(),
        registry_config: registry_config(daemon.engine.insecure_registries()),
        ncpu: std::thread::available_parallelism().map_or(1, |n| n.get()),
        mem_total: mem_total(),
        generic_resources: None,
        docker_root_dir: root.display().to_string(),
        http_proxy: proxy_env("HTTP_PROXY"),
        https_proxy: proxy_env("HTTPS_PROXY"),
        no_proxy: env_either("NO_PROXY"),
        name: rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
        labels: Vec::new(),
        experimental_build: false,
        server_version: env!("CARGO_PKG_VERSION").to_owned(),
        // Keel's own runtime, which each container's monitor runs, under
        // the name clients expect of the default one.
        runtimes: BTreeMap::from([(
            "runc".to_owned(),
            Runtime {
                path: monitor.display().to_string(),
            },
        )]),
        default_runtime: "runc".to_owned(),
        swarm: SwarmInfo {
            local_node_state: "inactive".to_owned(),
            ..SwarmInfo::default()
        },
        // Containers outlive the daemon: their monitors keep them.
        live_restore_enabled: true,
        isolation: String::new(),
        init_binary: init_path.map_or("docker-init".to_owned(), |p| p.display().to_string()),
        containerd_commit: unknown_commit(),
        runc_commit: unknown_commit(),
        init_commit: unknown_commit(),
        // Docker's default seccomp profile, and a cgroup namespace for each
        // container (the runtime's default).
        security_options: vec![
            "name=seccomp,profile=builtin".to_owned(),
            "name=cgroupns".to_owned(),
        ],
        cdi_spec_dirs: Vec::new(),
        warnings,
    };
    json(StatusCode::OK, &info)
}

/// As dockerd reports a component whose commit it cannot tell.
fn unknown_commit() -> Commit {
    Commit {
        id: "N/A".to_owned(),
        expected: String::new(),
    }
}

/// Docker's registry settings: Docker Hub, loopback always insecure, and
/// the registries `--insecure-registry` names.
fn registry_config(insecure: &[String]) -> RegistryConfig {
    let index = |name: &str, secure: bool| IndexInfo {
        name: name.to_owned(),
        mirrors: Vec::new(),
        secure,
        official: secure,
    };
    let mut index_configs = BTreeMap::from([("docker.io".to_owned(), index("docker.io", true))]);
    for name in insecure {
        index_configs.insert(name.clone(), index(name, false));
    }
    RegistryConfig {
        insecure_registry_cidrs: vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()],
        index_configs,
        mirrors: Vec::new(),
    }
}

/// The limits this host's cgroups can set, probed as moby's sysinfo does.
#[derive(Debug, Default)]
struct Limits {
    memory: bool,
    swap: bool,
    kernel_memory_tcp: bool,
    oom_kill_disable: bool,
    cpu_cfs: bool,
    cpu_shares: bool,
    cpuset: bool,
    pids: bool,
    /// The four blkio throttles (v1 files) or io.max (v2), in
    /// [`THROTTLES`]' order.
    throttles: [bool; 4],
    /// io.weight (only v2's is warned of, as dockerd does).
    io_weight: bool,
}

/// The blkio throttles: v1's file, v2's io.max key.
const THROTTLES: [(&str, &str); 4] = [
    ("blkio.throttle.read_bps_device", "rbps"),
    ("blkio.throttle.write_bps_device", "wbps"),
    ("blkio.throttle.read_iops_device", "riops"),
    ("blkio.throttle.write_iops_device", "wiops"),
];

impl Limits {
    fn probe(hierarchies: &Hierarchies) -> Self {
        let has = |controller: &str| hierarchies.controller_root(controller).is_some();
        let file = |controller: &str, name: &str| {
            hierarchies
                .controller_root(controller)
                .is_some_and(|root| root.join(name).exists())
        };
        match hierarchies.version() {
            Version::V1 => Limits {
                memory: file("memory", "memory.limit_in_bytes"),
                swap: file("memory", "memory.memsw.limit_in_bytes"),
                kernel_memory_tcp: file("memory", "memory.kmem.tcp.limit_in_bytes"),
                oom_kill_disable: file("memory", "memory.oom_control"),
                cpu_cfs: file("cpu", "cpu.cfs_quota_us"),
                cpu_shares: file("cpu", "cpu.shares"),
                cpuset: has("cpuset"),
                pids: has("pids"),
                throttles: THROTTLES.map(|(name, _)| file("blkio", name)),
                io_weight: has("blkio"),
            },
            // The root group has no memory.swap.max: the daemon's own does
            // when the kernel accounts swap.
            Version::V2 => Limits {
                memory: has("memory"),
                swap: hierarchies.controller_root("memory").is_some_and(|root| {
                    own_unified_group()
                        .is_some_and(|group| root.join(group).join("memory.swap.max").exists())
                }),
                kernel_memory_tcp: false,
                oom_kill_disable: false,
                cpu_cfs: has("cpu"),
                cpu_shares: has("cpu"),
                cpuset: has("cpuset"),
                pids: has("pids"),
                throttles: [has("io"); 4],
                io_weight: has("io"),
            },
        }
    }

    /// The warnings dockerd gives for what is missing, worded as it does.
    fn warnings(&self, version: Version) -> Vec<String> {
        let v1 = version == Version::V1;
        let mut missing = vec![
            (self.memory, "No memory limit support".to_owned()),
            (self.swap, "No swap limit support".to_owned()),
            (
                self.kernel_memory_tcp || !v1,
                "No kernel memory TCP limit support".to_owned(),
            ),
            (
                self.oom_kill_disable || !v1,
                "No oom kill disable support".to_owned(),
            ),
            (self.cpu_cfs, "No cpu cfs quota support".to_owned()),
            (self.cpu_cfs, "No cpu cfs period support".to_owned()),
            (self.cpu_shares, "No cpu shares support".to_owned()),
            (self.cpuset, "No cpuset support".to_owned()),
            (self.io_weight || v1, "No io.weight support".to_owned()),
            (
                self.io_weight || v1,
                "No io.weight (per device) support".to_owned(),
            ),
        ];
        for (supported, (file, key)) in self.throttles.iter().zip(THROTTLES) {
            let what = match v1 {
                true => file.replacen("blkio.", "blkio ", 1),
                false => format!("io.max ({key})"),
            };
            missing.push((*supported, format!("No {what} support")));
        }
        missing
            .into_iter()
            .filter(|(supported, _)| !supported)
            .map(|(_, what)| format!("WARNING: {what}"))
            .collect()
    }
}

/// The daemon's cgroup in the unified hierarchy, relative to its root.
fn own_unified_group() -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    let group = text.lines().find_map(|line| line.strip_prefix("0::"))?;
    Some(group.trim_start_matches('/').to_owned())
}

/// Whether a boolean sysctl (a path under /proc/sys) is 1.
fn sysctl_on(name: &str) -> bool {
    fs::read_to_string(Path::new("/proc/sys").join(name)).is_ok_and(|v| v.trim() == "1")
}

fn entries(dir: &str) -> usize {
    fs::read_dir(dir).map_or(0, |entries| entries.count())
}

/// /proc/meminfo's MemTotal, in bytes.
fn mem_total() -> u64 {
    let text = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// A field of os-release(5), unquoted.
fn os_release_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .map(|value| value.trim().trim_matches('"'))
}

/// The filesystem under the store, named as dockerd's overlay2 driver
/// names it.
fn backing_filesystem(root: &Path) -> String {
    let Ok(stat) = rustix::fs::statfs(root) else {
        return "<unknown>".to_owned();
    };
    let name = match stat.f_type as u64 {
        0xEF53 => "extfs",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x2FC1_2FC1 => "zfs",
        0x794C_7630 => "overlayfs",
        0x6969 => "nfs",
        0xF2F5_2010 => "f2fs",
        _ => "<unknown>",
    };
    name.to_owned()
}

/// A proxy setting from the daemon's environment (upper case first, as
/// moby reads it), its credentials masked as moby masks them.
fn proxy_env(name: &str) -> String {
    let value = env_either(name);
    match value.split_once("://") {
        Some((scheme, rest)) if rest.contains('@') => {
            let (_, host) = rest.rsplit_once('@').expect("an @ is there");
            format!("{scheme}://xxxxx:xxxxx@{host}")
        }
        _ => value,
    }
}

fn env_either(name: &str) -> String {
    std::env::var(name)
        .or_else(|_| std::env::var(name.to_ascii_lowercase()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values_are_unquoted() {
        let text = "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(
            os_release_field(text, "PRETTY_NAME"),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(os_release_field(text, "VERSION_ID"), Some("12"));
        assert_eq!(os_release_field(text, "VERSION"), None);
    }

    #[test]
    fn missing_limits_warn_in_dockerds_words() {
        let none = Limits::default();
        let v1 = none.warnings(Version::V1);
        assert!(v1.contains(&"WARNING: No swap limit support".to_owned()));
        assert!(v1.contains(&"WARNING: No blkio throttle.read_bps_device support".to_owned()));
        assert!(!v1.iter().any(|w| w.contains("io.weight")), "v2 only");
        let v2 = none.warnings(Version::V2);
        assert!(v2.contains(&"WARNING: No io.max (wiops) support".to_owned()));
        assert!(!v2.iter().any(|w| w.contains("oom kill")), "v1 only");
        let all = Limits {
            memory: true,
            swap: true,
            kernel_memory_tcp: true,
            oom_kill_disable: true,
            cpu_cfs: true,
            cpu_shares: true,
            cpuset: true,
            pids: true,
            throttles: [true; 4],
            io_weight: true,
        };
        assert_eq!(all.warnings(Version::V1), Vec::<String>::new());
    }
}
