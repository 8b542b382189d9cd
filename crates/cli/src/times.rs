//! Times as docker's CLI takes them for `--since` and `--until`.

use anyhow::{Result, bail};

/// `--since`/`--until` as the API takes them (`SECONDS.NANOSECONDS`), from
/// what docker's CLI takes (see [`keel_time::parse_time`]).
pub fn api_time(flag: &str, text: &str) -> Result<String> {
    let Some(nanos) = keel_time::parse_time(text) else {
        bail!(
            "invalid value for \"{flag}\": failed to parse value as time or duration: \"{text}\""
        );
    };
    Ok(format!(
        "{}.{:09}",
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000)
    ))
}
