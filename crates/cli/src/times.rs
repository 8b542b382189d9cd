//! Times as docker's CLI takes them for `--since` and `--until`.

use anyhow::{Result, bail};

/// `--since`/`--until` as the API takes them (`SECONDS.NANOSECONDS`), from
/// what docker's CLI takes: a Go duration before now (`10m`, `1h30m`), an
/// RFC 3339 time, or Unix seconds.
pub fn api_time(flag: &str, text: &str) -> Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as i128;
    let nanos = if let Some(ago) = go_duration(text) {
        now - ago
    } else if let Some(time) = keel_time::unix_nanos(text) {
        time
    } else if text
        .split_once('.')
        .map_or(text, |(s, _)| s)
        .parse::<i64>()
        .is_ok()
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return Ok(text.to_owned());
    } else {
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

/// A Go duration (`300ms`, `1.5h`, `2h45m`, `-1s`, `0`) in nanoseconds.
pub fn go_duration(text: &str) -> Option<i128> {
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, text.strip_prefix('+').unwrap_or(text)),
    };
    if unsigned == "0" {
        return Some(0);
    }
    let mut rest = unsigned;
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let number: f64 = rest[..digits].parse().ok()?;
        let unit_end = rest[digits..]
            .find(|c: char| c.is_ascii_digit())
            .map_or(rest.len(), |i| digits + i);
        let scale = match &rest[digits..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_end..];
    }
    (!unsigned.is_empty()).then_some((sign * total) as i128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_read_as_go_reads_them() {
        assert_eq!(go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(go_duration("2h45m"), Some(9_900_000_000_000));
        assert_eq!(go_duration("-1s"), Some(-1_000_000_000));
        assert_eq!(go_duration("0"), Some(0));
        assert_eq!(go_duration("10"), None);
        assert_eq!(go_duration(""), None);
    }
}
