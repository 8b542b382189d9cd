//! A command run under a tmux session of its own, as a person at a
//! terminal would run it: for `-it` sessions that need a real terminal.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::podman::output;
use crate::unique_name;

/// What is typed into the session.
#[derive(Debug, Clone, Copy)]
pub enum Keys<'a> {
    /// A line, with Enter.
    Line(&'a str),
    /// tmux key names, such as "C-p".
    Raw(&'a str),
}

/// Runs `command` in a 120x30 window, waits for busybox's shell to take
/// input, types `keys`, and returns what the pane showed and what the command's exit
/// code was (written to `exit_file`; empty if it did not end in time).
pub fn under_tmux(command: &str, keys: &[Keys<'_>], exit_file: &Path) -> (String, String) {
    let session = unique_name("keel-tmux");
    let script = format!("{command}; echo $? > {}; sleep 30", exit_file.display());
    // A tmux server of its own (-L): sessions of tests running side by
    // side share nothing.
    let tmux = || {
        let mut command = Command::new("tmux");
        command.args(["-L", &session]);
        command
    };
    let started = tmux()
        .args([
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            "120",
            "-y",
            "30",
            &script,
        ])
        .status()
        .expect("tmux runs");
    assert!(started.success());
    let capture = || output(tmux().args(["capture-pane", "-p", "-t", &session])).1;
    let send = |args: &[&str]| {
        tmux().args(args).status().unwrap();
    };
    // busybox's shell asks the terminal where its cursor is and eats what
    // is typed before the answer: type until a line is seen to get through.
    let deadline = Instant::now() + Duration::from_secs(20);
    'settled: while Instant::now() < deadline {
        if capture().contains("/ #") {
            send(&[
                "send-keys",
                "-t",
                &session,
                "echo settled-$((40 + 2))",
                "Enter",
            ]);
            for _ in 0..10 {
                std::thread::sleep(Duration::from_millis(100));
                if capture().contains("settled-42") {
                    break 'settled;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for key in keys {
        let args: &[&str] = match key {
            Keys::Line(line) => &["send-keys", "-t", &session, line, "Enter"],
            Keys::Raw(keys) => &["send-keys", "-t", &session, keys],
        };
        send(args);
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !exit_file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let pane = capture();
    tmux().arg("kill-server").status().unwrap();
    (pane, std::fs::read_to_string(exit_file).unwrap_or_default())
}
