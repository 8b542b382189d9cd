//! GET /events: what happened, as Docker streams it: one JSON object per
//! line, the kept ones first when `since` or `until` asks for the past,
//! until `until` or until the client goes away.

use std::sync::Arc;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use bytes::Bytes;
use hyper::{Response, StatusCode, header};
use keel_engine::Event;
use serde_json::{Value, json};
use tokio::sync::mpsc::Sender;

use crate::Daemon;
use crate::filters::Filters;
use crate::http::{ApiError, Body, Query, Reply};

/// The filters Docker's events accept.
const FILTERS: [&str; 14] = [
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// GET /events?since=&until=&filters=
pub async fn events(daemon: Arc<Daemon>, query: Query) -> Result<Reply, ApiError> {
    let since = query.time("since")?;
    let until = query.time("until")?;
    let filter = Filter(Filters::parse(&query, &FILTERS, &[])?);
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::task::spawn_blocking(move || stream(&daemon, since, until, &filter, &tx));
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::channel(rx))
        .expect("a valid response"))
}

fn stream(
    daemon: &Daemon,
    since: Option<i128>,
    until: Option<i128>,
    filter: &Filter,
    tx: &Sender<std::io::Result<Bytes>>,
) {
    let replay = (since.is_some() || until.is_some()).then(|| since.unwrap_or(0));
    let (past, receiver) = daemon.engine.events().subscribe(replay);
    let before_until = |event: &Event| until.is_none_or(|until| event.time <= until);
    let send = |event: &Event| {
        let mut line = serde_json::to_vec(&message(event)).expect("JSON");
        line.push(b'\n');
        tx.blocking_send(Ok(Bytes::from(line))).is_ok()
    };
    for event in past
        .iter()
        .filter(|e| before_until(e) && filter.includes(e))
    {
        if !send(event) {
            return;
        }
    }
    loop {
        let now = keel_time::now_unix_nanos();
        if until.is_some_and(|until| now > until) {
            return;
        }
        // Wakes now and then to notice a client that went away.
        let wait = until.map_or(Duration::from_secs(1), |until| {
            Duration::from_nanos((until - now).clamp(0, 1_000_000_000) as u64)
        });
        match receiver.recv_timeout(wait) {
            Ok(event) if !before_until(&event) => return,
            Ok(event) if filter.includes(&event) => {
                if !send(&event) {
                    return;
                }
            }
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) if tx.is_closed() => return,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// An event in Docker's JSON, with the older `status`/`id`/`from` fields
/// that containers' and images' events still carry.
fn message(event: &Event) -> Value {
    let mut message = json!({
        "Type": event.kind,
        "Action": event.action,
        "Actor": {"ID": event.id, "Attributes": event.attributes},
        "scope": "local",
        "time": event.time.div_euclid(1_000_000_000) as i64,
        "timeNano": event.time as i64,
    });
    if matches!(event.kind, "container" | "image") {
        message["status"] = json!(event.action);
        message["id"] = json!(event.id);
    }
    if let ("container", Some(image)) = (event.kind, event.attributes.get("image")) {
        message["from"] = json!(image);
    }
    message
}

/// Docker's event filters: values of one key widen, keys narrow.
#[derive(Debug)]
struct Filter(Filters);

impl Filter {
    fn includes(&self, event: &Event) -> bool {
        let name = event.attributes.get("name").map_or("", String::as_str);
        // "exec_start" alone names every "exec_start: COMMAND".
        let filters = &self.0;
        let action = match filters
            .get("event")
            .any(|v| matches!(v, "exec_create" | "exec_start" | "health_status"))
        {
            true => filters.fuzzy("event", &event.action),
            false => filters.exact("event", &event.action),
        };
        let by_name = [
            "config",
            "container",
            "daemon",
            "network",
            "node",
            "plugin",
            "secret",
            "service",
            "volume",
        ]
        .iter()
        .all(|key| filters.fuzzy(key, &event.id) || filters.fuzzy(key, name));
        action
            && by_name
            && filters.exact("type", event.kind)
            && filters.exact("scope", "local")
            && self.image(event)
            && filters.has_labels("label", &event.attributes)
    }

    /// The image acted on (an image's event) or run (a container's), by
    /// id or name, with or without its tag.
    fn image(&self, event: &Event) -> bool {
        let attribute = match event.kind {
            "image" => "name",
            _ => "image",
        };
        let name = event.attributes.get(attribute).map_or("", String::as_str);
        let untagged = |text: &str| {
            keel_image::Reference::parse(text)
                .map_or_else(|_| text.to_owned(), |r| r.familiar_name().to_owned())
        };
        [
            event.id.clone(),
            name.to_owned(),
            untagged(&event.id),
            untagged(name),
        ]
        .iter()
        .any(|candidate| self.0.exact("image", candidate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(pairs: &[(&str, &str)]) -> Filter {
        let pairs = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Filter(Filters::from_pairs(pairs, &FILTERS, &[]).unwrap())
    }

    fn started() -> Event {
        Event::new("container", "start", "4f2a9c")
            .with("image", "busybox:latest")
            .with("name", "web")
            .with("tier", "front")
    }

    #[test]
    fn filters_match_as_dockers_do() {
        let event = started();
        assert!(filter(&[]).includes(&event));
        assert!(filter(&[("container", "web")]).includes(&event));
        assert!(filter(&[("container", "4f2")]).includes(&event));
        assert!(!filter(&[("container", "db")]).includes(&event));
        assert!(filter(&[("event", "die"), ("event", "start")]).includes(&event));
        assert!(!filter(&[("event", "start"), ("type", "image")]).includes(&event));
        assert!(filter(&[("image", "busybox")]).includes(&event));
        assert!(filter(&[("image", "busybox:latest")]).includes(&event));
        assert!(!filter(&[("image", "busybox:1")]).includes(&event));
        assert!(filter(&[("label", "tier=front"), ("label", "tier")]).includes(&event));
        assert!(!filter(&[("label", "tier=back")]).includes(&event));
        let exec = Event::new("container", "exec_start: sh -c ls", "4f2a9c");
        assert!(filter(&[("event", "exec_start")]).includes(&exec));
        assert!(!filter(&[("event", "exec_die")]).includes(&exec));
    }

    #[test]
    fn container_events_carry_dockers_older_fields() {
        let message = message(&started());
        assert_eq!(message["status"], "start");
        assert_eq!(message["id"], "4f2a9c");
        assert_eq!(message["from"], "busybox:latest");
        assert_eq!(message["Actor"]["Attributes"]["name"], "web");
        assert_eq!(message["scope"], "local");
    }
}
