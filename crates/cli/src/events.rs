//! `keel events`: the daemon's events as they happen (and the kept ones
//! since a time), printed as docker prints them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};

use anyhow::Result;
use lexopt::prelude::*;
use serde_json::{Value, json};

use crate::client::{Client, Upload, encode};
use crate::format::Template;
use crate::usage;

/// `keel events [--since T] [--until T] [-f KEY=VALUE]... [--format F]`
pub fn events(client: &Client, parser: &mut lexopt::Parser) -> Result<()> {
    let (mut since, mut until) = (String::new(), String::new());
    let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut format = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("since") => since = crate::times::api_time("since", &parser.value()?.string()?)?,
            Long("until") => until = crate::times::api_time("until", &parser.value()?.string()?)?,
            Short('f') | Long("filter") => {
                crate::objects::add_filter(&mut filters, &parser.value()?.string()?)?
            }
            Long("format") => format = Some(Template::parse(&parser.value()?.string()?)?),
            other => return Err(usage(other.unexpected(), "events [OPTIONS]")),
        }
    }
    let mut response = client
        .request(
            "GET",
            &format!(
                "/events?since={since}&until={until}&filters={}",
                encode(&json!(filters).to_string())
            ),
            Upload::None,
        )?
        .success()?;
    let stdout = std::io::stdout();
    for line in BufReader::new(response.body()).lines() {
        let event: Value = serde_json::from_str(&line?)?;
        let text = match &format {
            Some(template) => template.render(&[event], &BTreeMap::new())?,
            None => line_of(&event) + "\n",
        };
        let mut out = stdout.lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
    }
    Ok(())
}

/// One event as docker's CLI prints it: its time, type, action and
/// object, then its attributes sorted by name.
fn line_of(event: &Value) -> String {
    let nanos = event["timeNano"].as_u64().unwrap_or(0);
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(nanos);
    let mut line = format!(
        "{} {} {} {}",
        keel_time::rfc3339(time),
        event["Type"].as_str().unwrap_or_default(),
        event["Action"].as_str().unwrap_or_default(),
        event["Actor"]["ID"].as_str().unwrap_or_default()
    );
    if let Some(attributes) = event["Actor"]["Attributes"].as_object()
        && !attributes.is_empty()
    {
        let mut pairs: Vec<String> = attributes
            .iter()
            .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
            .collect();
        pairs.sort();
        line.push_str(&format!(" ({})", pairs.join(", ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_prints_as_dockers_cli_prints_it() {
        let event = json!({
            "Type": "container",
            "Action": "die",
            "Actor": {"ID": "4f2a", "Attributes": {"name": "web", "exitCode": "0", "image": "busybox"}},
            "timeNano": 1_764_288_000_123_456_789u64,
        });
        assert_eq!(
            line_of(&event),
            "2025-11-28T00:00:00.123456789Z container die 4f2a (exitCode=0, image=busybox, name=web)"
        );
    }
}
