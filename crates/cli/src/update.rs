//! `keel update`: new resource limits or restart policy for containers,
//! running or not, as `docker update` sets them.

use anyhow::{Context, Result, bail};
use keel_api_types::update::{UpdateConfig, UpdateResponse};
use lexopt::ValueExt;

use crate::client::{Client, Upload, encode};
use crate::containers::{
    cpus_flag, each, int_flag, memory_swap_flag, names, restart_policy, size_flag,
};

const SYNOPSIS: &str = "update [OPTIONS] CONTAINER [CONTAINER...]";

/// `keel update [OPTIONS] CONTAINER...`: prints each container updated,
/// then the daemon's warnings.
pub fn update(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let mut config = UpdateConfig::default();
    let mut given = 0;
    let names = names(parser, SYNOPSIS, &mut |flag, parser| {
        match flag {
            "-m" | "--memory" => config.memory = size_flag(parser, "-m, --memory")?,
            "--memory-swap" => config.memory_swap = memory_swap_flag(parser)?,
            "--memory-reservation" => {
                config.memory_reservation = size_flag(parser, "--memory-reservation")?
            }
            "--cpus" => config.nano_cpus = cpus_flag(parser)?,
            "-c" | "--cpu-shares" => config.cpu_shares = int_flag(parser, "-c, --cpu-shares")?,
            "--cpu-period" => config.cpu_period = int_flag(parser, "--cpu-period")?,
            "--cpu-quota" => config.cpu_quota = int_flag(parser, "--cpu-quota")?,
            "--cpuset-cpus" => config.cpuset_cpus = parser.value()?.string()?,
            "--cpuset-mems" => config.cpuset_mems = parser.value()?.string()?,
            // 0 is no change; -1 lifts the limit.
            "--pids-limit" => {
                let limit = int_flag(parser, "--pids-limit")?;
                config.pids_limit = (limit != 0).then_some(limit);
            }
            "--blkio-weight" => {
                let text: String = parser.value()?.string()?;
                config.blkio_weight = text.parse().with_context(|| {
                    format!("invalid argument \"{text}\" for \"--blkio-weight\" flag: strconv.ParseUint: parsing \"{text}\": invalid syntax")
                })?;
            }
            "--restart" => {
                let text: String = parser.value()?.string()?;
                config.restart_policy = serde_json::from_value(restart_policy(Some(&text))?)
                    .context("a restart policy")?;
            }
            _ => return Ok(false),
        }
        given += 1;
        Ok(true)
    })?;
    if given == 0 {
        bail!("you must provide one or more flags when using this command");
    }
    let body = serde_json::to_value(&config).expect("an update serializes");
    let mut warnings = Vec::new();
    let updated = each(&names, |name| {
        let answer = client.json(
            "POST",
            &format!("/containers/{}/update", encode(name)),
            Upload::Json(&body),
        )?;
        let answer: UpdateResponse =
            serde_json::from_value(answer).context("the daemon's answer to an update")?;
        warnings.extend(answer.warnings.unwrap_or_default());
        Ok(None)
    });
    if !warnings.is_empty() {
        println!("{}", warnings.join("\n"));
    }
    updated
}
