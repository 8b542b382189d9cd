//! RFC 3339 timestamps, as Docker, runc and the OCI image spec write them
//! (`2026-11-28T01:02:03.123456789Z`), to and from Unix time; Go durations;
//! the times Docker's `since` and `until` take. Reading is jiff's; writing
//! is Howard Hinnant's civil-calendar algorithm, digit by digit, since
//! every line a container logs is stamped with it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::Timestamp;

/// Now, in UTC with nanoseconds.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// `time` in UTC with nanoseconds; times before 1970 are written as 1970.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let seconds = since.as_secs() as i64;
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    // Digit by digit rather than with format!: a container's monitor
    // stamps every log line with this, and the formatting machinery is
    // code spread over many pages it would keep resident.
    let mut text = String::with_capacity(30);
    let mut digits = |value: u64, width: u32, after: char| {
        for place in (0..width).rev() {
            text.push(char::from(b'0' + (value / 10u64.pow(place) % 10) as u8));
        }
        text.push(after);
    };
    let rest = rest as u64;
    digits(year.clamp(0, 9999) as u64, 4, '-');
    digits(month as u64, 2, '-');
    digits(day as u64, 2, 'T');
    digits(rest / 3600, 2, ':');
    digits(rest % 3600 / 60, 2, ':');
    digits(rest % 60, 2, '.');
    digits(u64::from(since.subsec_nanos()), 9, 'Z');
    text
}

/// The time of an HTTP date (`Tue, 15 Nov 1994 08:12:31 GMT`, a
/// `Last-Modified` header's).
pub fn http_date(text: &str) -> Option<SystemTime> {
    let time = jiff::fmt::rfc2822::parse(text.trim()).ok()?;
    let seconds = u64::try_from(time.timestamp().as_second()).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(seconds))
}

/// Seconds since the epoch of `2024-01-02T03:04:05.678Z`, or of the same
/// with an offset (`+02:00`); `None` when malformed.
pub fn unix_seconds(text: &str) -> Option<i64> {
    unix_nanos(text).map(|nanos| nanos.div_euclid(1_000_000_000) as i64)
}

/// Nanoseconds since the epoch of an RFC 3339 timestamp (as
/// [`unix_seconds`], keeping the fraction).
pub fn unix_nanos(text: &str) -> Option<i128> {
    text.parse::<Timestamp>().ok().map(Timestamp::as_nanosecond)
}

/// go-units' HumanDuration, as Docker words ages ("3 hours", "About a
/// minute", "Less than a second").
pub fn human_duration(seconds: i64) -> String {
    let hours = (seconds as f64 / 3600.0 + 0.5) as i64;
    let minutes = seconds / 60;
    match seconds {
        s if s < 1 => "Less than a second".to_owned(),
        1 => "1 second".to_owned(),
        s if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".to_owned(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".to_owned(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

/// "3 hours ago" for a time `then` (seconds since the epoch) seen at
/// `now`; nothing for a time not known (0 or earlier, as images without a
/// created time have), rather than an age since 1970.
pub fn ago(then: i64, now: i64) -> String {
    match then > 0 {
        true => format!("{} ago", human_duration(now - then)),
        false => String::new(),
    }
}

/// Seconds since the epoch, now.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Nanoseconds since the epoch, now.
pub fn now_unix_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// A duration as Go prints one: `500ms`, `30s`, `1m30s`.
pub fn go_duration_text(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let seconds = duration.as_secs_f64() % 60.0;
    let minutes = duration.as_secs() / 60;
    let seconds = format!("{seconds}").trim_end_matches(".0").to_owned() + "s";
    match minutes {
        0 => seconds,
        m if m < 60 => format!("{m}m{seconds}"),
        m => format!("{}h{}m{seconds}", m / 60, m % 60),
    }
}

/// A time as Docker takes one for `since`, `until` and prune's `until`
/// (its `GetTimestamp`): a Go duration before now (`10m`, `1h30m`; but
/// `0` is Unix time 0), an RFC 3339 time, a date and time without a zone
/// in the local one (`2024-01-02`, `2024-01-02T15:04`), or Unix seconds
/// with an optional fraction. Unix nanoseconds.
pub fn parse_time(text: &str) -> Option<i128> {
    if text != "0"
        && let Some(ago) = parse_go_duration(text)
    {
        return Some(now_unix_nanos() - ago);
    }
    if let Some(time) = unix_nanos(text) {
        return Some(time);
    }
    if let Ok(local) = text.parse::<jiff::civil::DateTime>() {
        let time = jiff::tz::TimeZone::system().to_timestamp(local).ok()?;
        return Some(time.as_nanosecond());
    }
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: i128 = seconds.parse().ok()?;
    let nanos: i128 = format!("{fraction:0<9}").parse().ok()?;
    Some(seconds * 1_000_000_000 + nanos)
}

/// A Go duration (`300ms`, `1.5h`, `2h45m`, `-1s`, `0`) in nanoseconds.
pub fn parse_go_duration(text: &str) -> Option<i128> {
    if text.trim_start_matches(['-', '+']) == "0" {
        return Some(0);
    }
    // Go's units and no others: jiff reads more (`1 hour`, ISO 8601).
    let go_like = text
        .trim_start_matches(['+', '-'])
        .chars()
        .all(|c| c.is_ascii_digit() || ".nsuµmh".contains(c));
    if !go_like {
        return None;
    }
    text.parse::<jiff::SignedDuration>()
        .ok()
        .map(|duration| duration.as_nanos())
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_read_as_last_modified_headers_write_them() {
        let time = http_date("Tue, 15 Nov 1994 08:12:31 GMT").unwrap();
        assert_eq!(rfc3339(time), "1994-11-15T08:12:31.000000000Z");
        assert_eq!(http_date("yesterday"), None);
    }

    #[test]
    fn timestamps_are_written_in_utc_with_nanoseconds() {
        let time = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(rfc3339(time), "2023-11-14T22:13:20.000000005Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn timestamps_keep_their_fraction_as_nanoseconds() {
        assert_eq!(unix_nanos("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
        assert_eq!(
            unix_nanos("2023-11-14T22:13:20.000000005Z"),
            Some(1_700_000_000_000_000_005)
        );
        assert_eq!(unix_nanos("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("1969-12-31T23:59:59.5Z"), Some(-1));
    }

    #[test]
    fn ages_read_as_docker_prints_them() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(45), "45 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86_400), "3 days");
        assert_eq!(human_duration(21 * 86_400), "3 weeks");
        assert_eq!(human_duration(800 * 86_400), "2 years");
    }

    #[test]
    fn an_unknown_time_has_no_age_rather_than_one_since_1970() {
        let now = 1_700_000_000;
        assert_eq!(ago(now - 180, now), "3 minutes ago");
        assert_eq!(ago(0, now), "");
        assert_eq!(ago(-5, now), "");
    }

    #[test]
    fn timestamps_read_back_to_unix_seconds() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_seconds("2023-11-14T22:13:20.123456789Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            unix_seconds("2023-11-15T00:13:20+02:00"),
            Some(1_700_000_000)
        );
        assert_eq!(unix_seconds("yesterday"), None);
        let now = now_rfc3339();
        let expected = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((unix_seconds(&now).unwrap() - expected).abs() < 5, "{now}");
    }

    #[test]
    fn go_durations_read_as_go_reads_them() {
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("2h45m"), Some(9_900_000_000_000));
        assert_eq!(parse_go_duration("-1s"), Some(-1_000_000_000));
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_go_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("2us"), Some(2_000));
        assert_eq!(parse_go_duration("2µs"), Some(2_000));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("1 hour"), None);
    }

    #[test]
    fn times_are_durations_before_now_rfc_3339_or_unix_seconds() {
        assert_eq!(parse_time("1700000000.5"), Some(1_700_000_000_500_000_000));
        assert_eq!(
            parse_time("2026-01-01T00:00:00Z"),
            Some(1_767_225_600_000_000_000)
        );
        let then = parse_time("1h").unwrap();
        let ago = now_unix_nanos() - then;
        assert!(
            (3_600_000_000_000..3_601_000_000_000).contains(&ago),
            "{ago}"
        );
        assert_eq!(parse_time("soon"), None);
    }

    #[test]
    fn zero_is_unix_time_zero_not_a_duration_of_none() {
        // testcontainers asks for logs since=0: all of them.
        assert_eq!(parse_time("0"), Some(0));
        assert_eq!(parse_time("0.5"), Some(500_000_000));
    }

    #[test]
    fn a_time_without_a_zone_is_in_the_local_one() {
        let local = jiff::tz::TimeZone::system()
            .to_timestamp(jiff::civil::date(2026, 1, 1).at(0, 0, 0, 0))
            .unwrap()
            .as_nanosecond();
        assert_eq!(parse_time("2026-01-01"), Some(local));
        assert_eq!(parse_time("2026-01-01T00:00"), Some(local));
        assert_eq!(
            parse_time("2026-01-01T02:00:00+02:00"),
            Some(1_767_225_600_000_000_000)
        );
    }

    #[test]
    fn timeouts_read_as_go_prints_them() {
        assert_eq!(go_duration_text(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration_text(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration_text(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration_text(Duration::from_millis(1500)), "1.5s");
    }
}
