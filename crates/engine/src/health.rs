//! Health checks (`--health-cmd`, an image's HEALTHCHECK), as Docker runs
//! them: a probe exec'd in the running container every interval; `healthy`
//! after a probe that exits 0, `unhealthy` after `retries` failures in a
//! row (failures within the start period do not count until one probe has
//! passed); the last five results kept; each change an event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::exec::ExecConfig;
use crate::{Engine, Status};

/// Docker's defaults for a zero setting.
const INTERVAL: Duration = Duration::from_secs(30);
const TIMEOUT: Duration = Duration::from_secs(30);
const START_INTERVAL: Duration = Duration::from_secs(5);
const RETRIES: i64 = 3;
/// Results kept, and bytes of output kept per result, as Docker's.
const KEPT_RESULTS: usize = 5;
const KEPT_OUTPUT: usize = 4096;

/// A container's health check, in the Engine API's shape (durations in
/// nanoseconds; zero for the default or the image's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Healthcheck {
    /// `["CMD", program, args...]`, `["CMD-SHELL", command]`, `["NONE"]`,
    /// or empty for the image's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

impl Healthcheck {
    /// Refuses what Docker's daemon refuses, in its words.
    pub(crate) fn check(&self) -> Result<()> {
        for (name, value) in [
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("StartInterval", self.start_interval),
        ] {
            if value != 0 && value < 1_000_000 {
                return Err(Error::InvalidParameter(format!(
                    "{name} in Healthcheck cannot be less than 1ms"
                )));
            }
        }
        if self.retries < 0 {
            return Err(Error::InvalidParameter(
                "Retries in Healthcheck cannot be negative".to_owned(),
            ));
        }
        match self.test.first().map(String::as_str) {
            None | Some("NONE" | "CMD" | "CMD-SHELL") => Ok(()),
            Some(other) => Err(Error::InvalidParameter(format!(
                "unknown health check type {other:?}: Healthcheck.Test starts with CMD, CMD-SHELL or NONE"
            ))),
        }
    }

    /// The container's check over the image's, as Docker merges them: the
    /// image's test when none is given, its settings where these are zero.
    pub(crate) fn merged(own: Option<Self>, image: Option<Self>) -> Option<Self> {
        let Some(mut own) = own else {
            return image;
        };
        if let Some(image) = image {
            if own.test.is_empty() {
                own.test = image.test;
            }
            for (mine, theirs) in [
                (&mut own.interval, image.interval),
                (&mut own.timeout, image.timeout),
                (&mut own.start_period, image.start_period),
                (&mut own.start_interval, image.start_interval),
                (&mut own.retries, image.retries),
            ] {
                if *mine == 0 {
                    *mine = theirs;
                }
            }
        }
        Some(own)
    }

    /// The probe's command line, or None when there is nothing to run.
    pub(crate) fn command(&self) -> Option<Vec<String>> {
        match self.test.split_first() {
            Some((kind, args)) if kind == "CMD" && !args.is_empty() => Some(args.to_vec()),
            Some((kind, args)) if kind == "CMD-SHELL" && !args.is_empty() => {
                Some(vec!["/bin/sh".into(), "-c".into(), args.join(" ")])
            }
            _ => None,
        }
    }

    fn duration(nanos: i64, default: Duration) -> Duration {
        match nanos {
            0 => default,
            n => Duration::from_nanos(n as u64),
        }
    }
}

/// Where a container's health checks stand, by Docker's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Started, and no probe passed yet (or the start period runs).
    Starting,
    Healthy,
    /// As many probes failed in a row as the check's retries.
    Unhealthy,
}

impl HealthStatus {
    /// Docker's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// A container's health, as inspect shows it under State.Health.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: u32,
    pub log: Vec<ProbeResult>,
}

impl Health {
    /// At each start: probing begins again (the log is kept).
    pub(crate) fn restart(health: &mut Option<Health>) {
        let health = health.get_or_insert_with(Health::starting);
        health.status = HealthStatus::Starting;
        health.failing_streak = 0;
    }

    fn starting() -> Self {
        Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: Vec::new(),
        }
    }
}

/// One probe's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProbeResult {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

impl Engine {
    /// Starts probing container `id` if it has a check to run: until the
    /// run it is in (counted by its exits) ends.
    pub(crate) fn watch_health(self: &Arc<Self>, id: &str) {
        let Ok(container) = self.container(id) else {
            return;
        };
        let Some(check) = container.config.healthcheck.clone() else {
            return;
        };
        let Some(command) = check.command() else {
            return;
        };
        let run = container.state.exits;
        let engine = Arc::clone(self);
        let id = id.to_owned();
        let _ = std::thread::Builder::new()
            .name(format!("health-{}", &id[..12]))
            .stack_size(crate::WORKER_STACK)
            .spawn(move || engine.probe_until_exit(&id, run, &check, &command));
    }

    fn probe_until_exit(
        self: &Arc<Self>,
        id: &str,
        run: u64,
        check: &Healthcheck,
        command: &[String],
    ) {
        let interval = Healthcheck::duration(check.interval, INTERVAL);
        let timeout = Healthcheck::duration(check.timeout, TIMEOUT);
        let start_period = Healthcheck::duration(check.start_period, Duration::ZERO);
        let start_interval = Healthcheck::duration(check.start_interval, START_INTERVAL);
        let retries = match check.retries {
            0 => RETRIES,
            n => n,
        };
        // From the start, which a daemon restart (probing again) keeps.
        let Ok(container) = self.container(id) else {
            return;
        };
        let started = keel_time::unix_nanos(&container.state.started_at).unwrap_or(0);
        let in_start_period = || {
            let since = keel_time::now_unix_nanos() - started;
            since < start_period.as_nanos() as i128
        };
        let mut status = container.state.health.map(|h| h.status);
        loop {
            let starting = status == Some(HealthStatus::Starting);
            let wait = match starting && in_start_period() {
                true => start_interval,
                false => interval,
            };
            if !self.still_in_run(id, run, wait) {
                return;
            }
            let result = self.probe(id, command, timeout);
            // Failures in the start period count only once a probe passed.
            let counts = !(starting && in_start_period());
            status = self.set_health(id, |health| {
                if result.exit_code == 0 {
                    health.failing_streak = 0;
                    health.status = HealthStatus::Healthy;
                } else if counts {
                    health.failing_streak += 1;
                    if i64::from(health.failing_streak) >= retries {
                        health.status = HealthStatus::Unhealthy;
                    }
                }
                health.log.push(result);
                let excess = health.log.len().saturating_sub(KEPT_RESULTS);
                health.log.drain(..excess);
            });
        }
    }

    /// Waits `wait`; whether the container is still in run `run` after.
    fn still_in_run(&self, id: &str, run: u64, wait: Duration) -> bool {
        let in_run = |table: &crate::Table| {
            table
                .containers
                .get(id)
                .is_some_and(|c| c.state.status == Status::Running && c.state.exits == run)
        };
        let table = self.lock();
        let (table, _) = self
            .changed
            .wait_timeout_while(table, wait, |table| in_run(table))
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        in_run(&table)
    }

    /// Changes the container's health; returns its status after. A new
    /// status is published with the change, before it is visible.
    fn set_health(&self, id: &str, change: impl FnOnce(&mut Health)) -> Option<HealthStatus> {
        let updated = self.update_state(id, |c| {
            let health = c.state.health.get_or_insert_with(Health::starting);
            let before = health.status;
            change(health);
            let now = health.status;
            if now != before {
                let action = format!("health_status: {}", now.as_str());
                self.container_event(c, &action, &[]);
            }
        });
        updated.ok()?.state.health.map(|h| h.status)
    }

    /// Runs the probe as an exec of its own, its output kept (4 KiB), killed
    /// at the timeout.
    fn probe(self: &Arc<Self>, id: &str, command: &[String], timeout: Duration) -> ProbeResult {
        let start = keel_time::now_rfc3339();
        let config = ExecConfig {
            cmd: command.to_vec(),
            attach_stdout: true,
            attach_stderr: true,
            ..ExecConfig::default()
        };
        let (exit_code, output) = match self.exec_create(id, config) {
            Ok(exec) => {
                let outcome = self.run_probe(&exec, timeout);
                self.lock().execs.remove(&exec);
                outcome
            }
            Err(error) => (-1, error.to_string()),
        };
        ProbeResult {
            start,
            end: keel_time::now_rfc3339(),
            exit_code,
            output,
        }
    }

    fn run_probe(self: &Arc<Self>, exec: &str, timeout: Duration) -> (i32, String) {
        let deadline = Instant::now() + timeout;
        let mut connection = match self.exec_start(exec, true, None) {
            Ok(Some(connection)) => connection,
            Ok(None) => return (-1, "the probe's output could not be read".to_owned()),
            Err(error) => {
                let code = self.exec(exec).ok().and_then(|e| e.exit_code).unwrap_or(-1);
                return (code, error.to_string());
            }
        };
        let mut output = Vec::new();
        let read = crate::read_output(
            &mut connection,
            || Some(deadline.saturating_duration_since(Instant::now())).filter(|l| !l.is_zero()),
            |_, payload| {
                let room = KEPT_OUTPUT - output.len();
                output.extend_from_slice(&payload[..payload.len().min(room)]);
            },
        );
        if read.is_err() {
            return self.time_out(exec, timeout);
        }
        let code = self.exec_wait(exec).unwrap_or(-1);
        (code, String::from_utf8_lossy(&output).into_owned())
    }

    /// Kills a probe past its timeout; Docker's result for it.
    fn time_out(&self, exec: &str, timeout: Duration) -> (i32, String) {
        if let Ok(exec) = self.exec(exec)
            && exec.pid > 0
        {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(exec.pid).expect("a positive pid"),
                rustix::process::Signal::KILL,
            );
        }
        (
            -1,
            format!(
                "Health check exceeded timeout ({})",
                keel_time::go_duration_text(timeout)
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_health_status_is_dockers_word_on_the_wire_and_in_records() {
        let health = Health {
            status: HealthStatus::Unhealthy,
            failing_streak: 3,
            log: Vec::new(),
        };
        let json = serde_json::to_value(&health).unwrap();
        assert_eq!(json["Status"], "unhealthy");
        let read: Health =
            serde_json::from_str(r#"{"Status":"healthy","FailingStreak":0,"Log":[]}"#).unwrap();
        assert_eq!(read.status, HealthStatus::Healthy);
        assert_eq!(HealthStatus::Starting.as_str(), "starting");
    }

    #[test]
    fn a_check_takes_the_images_test_and_settings_where_its_own_are_unset() {
        let image = Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            interval: 5_000_000_000,
            retries: 7,
            ..Healthcheck::default()
        };
        let own = Healthcheck {
            interval: 1_000_000_000,
            ..Healthcheck::default()
        };
        let merged = Healthcheck::merged(Some(own), Some(image.clone())).unwrap();
        assert_eq!(merged.test, ["CMD", "true"]);
        assert_eq!((merged.interval, merged.retries), (1_000_000_000, 7));
        assert_eq!(Healthcheck::merged(None, Some(image.clone())), Some(image));
        let none = Healthcheck {
            test: vec!["NONE".into()],
            ..Healthcheck::default()
        };
        assert_eq!(none.command(), None);
        let shell = Healthcheck {
            test: vec!["CMD-SHELL".into(), "test -f /ok".into()],
            ..Healthcheck::default()
        };
        assert_eq!(shell.command().unwrap(), ["/bin/sh", "-c", "test -f /ok"]);
    }

    #[test]
    fn bad_settings_are_refused_in_dockers_words() {
        let short = Healthcheck {
            interval: 1000,
            ..Healthcheck::default()
        };
        assert!(
            short
                .check()
                .unwrap_err()
                .to_string()
                .contains("Interval in Healthcheck cannot be less than 1ms")
        );
        let negative = Healthcheck {
            retries: -1,
            ..Healthcheck::default()
        };
        assert!(
            negative
                .check()
                .unwrap_err()
                .to_string()
                .contains("Retries in Healthcheck cannot be negative")
        );
        let unknown = Healthcheck {
            test: vec!["RUN".into()],
            ..Healthcheck::default()
        };
        assert!(unknown.check().unwrap_err().to_string().contains("\"RUN\""));
    }
}
