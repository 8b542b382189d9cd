//! What happened to containers, images, volumes and networks, as Docker's
//! `events` tells it: the last events kept in memory for `--since`, and
//! every new one handed to each subscriber.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};

/// As many as Docker keeps for `docker events --since`.
const KEPT: usize = 256;

/// One event, with Docker's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `container`, `image`, `volume` or `network`.
    pub kind: &'static str,
    /// `create`, `start`, `die`, `pull`, `tag`, …
    pub action: String,
    /// The object's id (a container's id, a volume's name, …).
    pub id: String,
    pub attributes: BTreeMap<String, String>,
    /// Unix nanoseconds.
    pub time: i128,
}

impl Event {
    pub fn new(kind: &'static str, action: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            kind,
            action: action.into(),
            id: id.into(),
            attributes: BTreeMap::new(),
            time: keel_time::now_unix_nanos(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.attributes.insert(key.to_owned(), value.into());
        self
    }
}

#[derive(Debug, Default)]
pub struct Events {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    kept: VecDeque<Event>,
    subscribers: Vec<Sender<Event>>,
}

impl Events {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps `event` and hands it to every subscriber still listening.
    pub fn publish(&self, event: Event) {
        let mut inner = self.lock();
        inner
            .subscribers
            .retain(|subscriber| subscriber.send(event.clone()).is_ok());
        if inner.kept.len() == KEPT {
            inner.kept.pop_front();
        }
        inner.kept.push_back(event);
    }

    /// The kept events at or after `since` (none without it), and a
    /// receiver of every later one: taken together, so none is missed or
    /// seen twice.
    pub fn subscribe(&self, since: Option<i128>) -> (Vec<Event>, Receiver<Event>) {
        let (sender, receiver) = channel();
        let mut inner = self.lock();
        let past = match since {
            Some(since) => inner
                .kept
                .iter()
                .filter(|event| event.time >= since)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        inner.subscribers.push(sender);
        (past, receiver)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscriber_gets_the_kept_events_since_its_time_then_each_new_one() {
        let events = Events::default();
        let mut old = Event::new("container", "create", "a");
        old.time = 10;
        events.publish(old);
        let mut newer = Event::new("container", "start", "a");
        newer.time = 20;
        events.publish(newer.clone());
        let (past, receiver) = events.subscribe(Some(15));
        assert_eq!(past, vec![newer]);
        events.publish(Event::new("container", "die", "a").with("exitCode", "0"));
        let next = receiver.try_recv().unwrap();
        assert_eq!(
            (next.action.as_str(), &next.attributes["exitCode"][..]),
            ("die", "0")
        );
        drop(receiver);
        events.publish(Event::new("container", "destroy", "a"));
        assert!(
            events.lock().subscribers.is_empty(),
            "a gone subscriber is dropped"
        );
    }

    #[test]
    fn only_the_last_256_events_are_kept() {
        let events = Events::default();
        for n in 0..300 {
            events.publish(Event::new("volume", "create", n.to_string()));
        }
        let (past, _) = events.subscribe(Some(0));
        assert_eq!(past.len(), KEPT);
        assert_eq!(past[0].id, "44");
    }
}
