//! GET /containers/{id}/top: the container's processes as `ps -ef` shows
//! them (Docker runs ps on the host and keeps the container's; Keel reads
//! the same from /proc for the pids of the container's cgroup).

use std::sync::Arc;

use hyper::StatusCode;
use serde_json::json;

use crate::Daemon;
use crate::http::{ApiError, Query, Reply, blocking, json};

const TITLES: [&str; 8] = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"];

/// GET /containers/{id}/top (only `ps -ef`'s columns: `ps_args` other
/// than those are refused, not ignored).
pub async fn top(daemon: Arc<Daemon>, name: String, query: Query) -> Result<Reply, ApiError> {
    let ps_args = query.get("ps_args").unwrap_or("").trim().to_owned();
    if !ps_args.is_empty() && ps_args != "-ef" {
        return Err(ApiError::bad_request(format!(
            "ps options {ps_args:?} are not supported by Keel: top shows ps -ef's columns"
        )));
    }
    blocking(move || {
        let pids = daemon.engine.top(&name)?;
        let users = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let rows: Vec<Vec<String>> = pids
            .iter()
            .filter_map(|pid| process_row(*pid, &users))
            .collect();
        Ok(json(
            StatusCode::OK,
            &json!({"Titles": TITLES, "Processes": rows}),
        ))
    })
    .await
}

/// One process's `ps -ef` row, from /proc (None if it is gone).
fn process_row(pid: i32, users: &str) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let (comm, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
    // After the command: state, ppid, pgrp, session, tty_nr, ... utime
    // (12th), stime (13th), ... starttime (20th).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let ticks = rustix::param::clock_ticks_per_second().max(1);
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let user = users
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&uid.as_str()))
        .map_or(uid.clone(), |f| f[0].to_owned());
    let tty = match number(4)? {
        0 => "?".to_owned(),
        device => format!("pts/{}", (device & 0xff) | ((device >> 12) & 0xfff00)),
    };
    let cpu_seconds = (number(11)? + number(12)?) / ticks;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse::<u64>()
        .ok()?;
    let started = boot + number(19)? / ticks;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let command = match cmdline.is_empty() {
        true => format!("[{comm}]"),
        false => String::from_utf8_lossy(&cmdline)
            .trim_end_matches('\0')
            .replace('\0', " "),
    };
    Some(vec![
        user,
        pid.to_string(),
        number(1)?.to_string(),
        "0".to_owned(),
        format!("{:02}:{:02}", (started / 3600) % 24, (started / 60) % 60),
        tty,
        format!(
            "{:02}:{:02}:{:02}",
            cpu_seconds / 3600,
            (cpu_seconds / 60) % 60,
            cpu_seconds % 60
        ),
        command,
    ])
}
