//! A container as the engine records it: what it was created with, and
//! what became of it. Saved as JSON in its directory, written atomically.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::health::{Health, Healthcheck};
use crate::log::LogConfig;
use crate::mounts::Mount;
use crate::network::{Endpoint, NetworkConfig, Published};
use crate::resources::Resources;
use crate::restart::RestartPolicy;
use crate::security::Security;

/// What a container runs, as `docker create` takes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    /// The image as the user named it.
    pub image: String,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Remove the container once it exits (`--rm`).
    pub auto_remove: bool,
    #[serde(default)]
    pub security: Security,
    #[serde(default)]
    pub restart: RestartPolicy,
    #[serde(default)]
    pub resources: Resources,
    /// The signal `stop` sends first (`--stop-signal`; SIGTERM).
    #[serde(default)]
    pub stop_signal: Option<crate::Signal>,
    /// Seconds `stop` waits before SIGKILL (`--stop-timeout`; 10).
    #[serde(default)]
    pub stop_timeout: Option<u64>,
    /// Binds, volumes and tmpfs mounts; a volume's source is filled in
    /// when the container is made.
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// A terminal for the process (`-t`).
    #[serde(default)]
    pub tty: bool,
    /// Keep stdin open for attach clients (`-i`).
    #[serde(default)]
    pub open_stdin: bool,
    /// Close stdin when the first attached client ends its input (`run -i`).
    #[serde(default)]
    pub stdin_once: bool,
    #[serde(default)]
    pub network: NetworkConfig,
    /// `--log-driver`, `--log-opt`.
    #[serde(default)]
    pub log: LogConfig,
    /// `--init`: an init (tini) as pid 1 runs the process, reaping
    /// orphans and passing signals on.
    #[serde(default)]
    pub init: bool,
    /// `--health-cmd` and friends, merged with the image's HEALTHCHECK.
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
}

/// Docker's container states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    /// The container's init, while it runs.
    pub pid: i32,
    pub exit_code: i32,
    /// Why the last start failed, if it did.
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    /// Counts exits, so a `wait` for the next exit can tell one happened.
    pub exits: u64,
    /// The monitor watching the running container, found again after a
    /// daemon restart.
    #[serde(default)]
    pub monitor_pid: i32,
    /// Restarts by the restart policy since the last start by a user.
    #[serde(default)]
    pub restart_count: u32,
    /// Stopped by a user: no restart policy brings it back.
    #[serde(default)]
    pub manually_stopped: bool,
    /// Its addresses, by network name: from its first start (or a
    /// connect) until it is removed (or disconnected).
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
    /// Disconnected by a user from the network its NetworkMode names: its
    /// starts no longer join it (until a connect), as in Docker, where a
    /// container is on the networks in its settings, not in its mode.
    #[serde(default)]
    pub left_primary: bool,
    /// Its published ports, while it runs.
    #[serde(default)]
    pub published: Vec<Published>,
    /// Frozen by `pause` (it still runs).
    #[serde(default)]
    pub paused: bool,
    /// What its health check found, when it has one.
    #[serde(default)]
    pub health: Option<Health>,
}

impl State {
    /// A container's state before its first start.
    pub(crate) fn created() -> Self {
        State {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
            exits: 0,
            monitor_pid: 0,
            restart_count: 0,
            manually_stopped: false,
            endpoints: BTreeMap::new(),
            left_primary: false,
            published: Vec::new(),
            paused: false,
            health: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub created: String,
    /// The image's id (its config digest).
    pub image_id: String,
    /// What runs: entrypoint and command, resolved against the image.
    pub path: String,
    pub args: Vec<String>,
    pub config: Config,
    pub state: State,
}

/// Container names as Docker allows them: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 2
        && bytes[0].is_ascii_alphanumeric()
        && bytes[1..]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

const ADJECTIVES: [&str; 32] = [
    "admiring",
    "agitated",
    "amazing",
    "awesome",
    "blissful",
    "bold",
    "brave",
    "charming",
    "clever",
    "compassionate",
    "confident",
    "cool",
    "dazzling",
    "determined",
    "eager",
    "elegant",
    "epic",
    "festive",
    "focused",
    "friendly",
    "gallant",
    "gracious",
    "happy",
    "hopeful",
    "jolly",
    "keen",
    "laughing",
    "lucid",
    "magical",
    "nifty",
    "quirky",
    "vibrant",
];

const SURNAMES: [&str; 32] = [
    "albattani",
    "archimedes",
    "babbage",
    "bell",
    "bohr",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euclid",
    "faraday",
    "fermat",
    "franklin",
    "galileo",
    "goldberg",
    "hamilton",
    "hopper",
    "hypatia",
    "johnson",
    "kepler",
    "knuth",
    "lamport",
    "lovelace",
    "mccarthy",
    "meitner",
    "newton",
    "noether",
    "pascal",
    "ritchie",
    "shannon",
    "thompson",
    "turing",
];

/// A name in Docker's style (`focused_turing`) from random bits; with
/// `retry` above 0, a number is added, as Docker does on collisions.
pub fn generated_name(random: u64, retry: u32) -> String {
    let adjective = ADJECTIVES[(random % 32) as usize];
    let surname = SURNAMES[((random >> 8) % 32) as usize];
    if retry == 0 {
        format!("{adjective}_{surname}")
    } else {
        format!(
            "{adjective}_{surname}{}",
            (random >> 16) % 10 + u64::from(retry)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_follow_dockers_rule() {
        for good in ["web", "my_app.1", "a-b", "Web2"] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", "a", "-web", "we b", "x/y", "_a"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert!(is_valid_name(&generated_name(12345, 0)));
        assert!(is_valid_name(&generated_name(12345, 3)));
    }
}
