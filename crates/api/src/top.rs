//! GET /containers/{id}/top?ps_args=: the container's processes as the
//! host's `ps` shows them, as Docker does it: `ps ARGS -q PIDS` (or, for
//! options that cannot take `-q`, `ps ARGS` alone), keeping the rows whose
//! PID column is one of the container's cgroup.

use std::sync::Arc;

use hyper::StatusCode;
use serde_json::json;

use crate::Daemon;
use crate::http::{ApiError, Query, Reply, blocking, json};

/// GET /containers/{id}/top (`ps_args` as docker's CLI passes them; `-ef`
/// by default).
pub async fn top(daemon: Arc<Daemon>, name: String, query: Query) -> Result<Reply, ApiError> {
    let ps_args = match query.get("ps_args").map(str::trim) {
        None | Some("") => "-ef".to_owned(),
        Some(args) => args.to_owned(),
    };
    blocking(move || {
        let pids = daemon.engine.top(&name)?;
        let output = run_ps(&ps_args, &pids)?;
        let (titles, rows) = processes(&output, &pids)?;
        Ok(json(
            StatusCode::OK,
            &json!({"Titles": titles, "Processes": rows}),
        ))
    })
    .await
}

fn run_ps(ps_args: &str, pids: &[i32]) -> Result<String, ApiError> {
    let args: Vec<&str> = ps_args.split_whitespace().collect();
    let listed = pids
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let run = |extra: &[&str]| {
        std::process::Command::new("ps")
            .args(&args)
            .args(extra)
            .output()
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("ps: {e} (top runs the host's ps: install procps)"),
                )
            })
    };
    let mut output = run(&["-q", &listed])?;
    if !output.status.success() {
        // Some options (such as f) cannot go with -q: all of ps, filtered.
        output = run(&[])?;
    }
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let why = stderr.lines().next().unwrap_or("ps failed");
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            why.to_owned(),
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The titles and the container's rows of `ps` output: columns split on
/// blanks, the last one (the command) keeping its own.
fn processes(output: &str, pids: &[i32]) -> Result<(Vec<String>, Vec<Vec<String>>), ApiError> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let pid_column = titles.iter().position(|t| t == "PID").ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Couldn't find PID field in ps output",
        )
    })?;
    let mut rows = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut fields: Vec<String> = Vec::new();
        let mut rest = line.trim_start();
        while fields.len() + 1 < titles.len() && !rest.is_empty() {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            fields.push(rest[..end].to_owned());
            rest = rest[end..].trim_start();
        }
        fields.push(rest.to_owned());
        let ours = fields
            .get(pid_column)
            .and_then(|pid| pid.parse::<i32>().ok())
            .is_some_and(|pid| pids.contains(&pid));
        if ours {
            rows.push(fields);
        }
    }
    Ok((titles, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_kept_by_pid_and_the_command_keeps_its_blanks() {
        let output = "UID  PID  PPID  C STIME TTY  TIME     CMD\n\
                      root 42   1     0 10:00 ?    00:00:00 sleep 321\n\
                      root 43   1     0 10:00 ?    00:00:00 other thing\n";
        let (titles, rows) = processes(output, &[42]).unwrap();
        assert_eq!(titles.len(), 8);
        assert_eq!(
            rows,
            [[
                "root",
                "42",
                "1",
                "0",
                "10:00",
                "?",
                "00:00:00",
                "sleep 321"
            ]]
        );
        let error = processes("USER COMMAND\nroot sh\n", &[42]).unwrap_err();
        assert_eq!(error.message, "Couldn't find PID field in ps output");
    }
}
