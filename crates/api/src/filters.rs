//! Docker's `filters` as its daemon reads them (moby's
//! daemon/internal/filters): a set of values per key, where one key's
//! values widen (any may match) and different keys narrow (all must),
//! except `label`, where every value given must hold.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;

use crate::http::{ApiError, Query};

#[derive(Debug, Default)]
pub struct Filters(BTreeMap<String, BTreeSet<String>>);

impl Filters {
    /// The query's `filters`, each key one of `accepted`; see
    /// [`from_pairs`](Self::from_pairs).
    pub fn parse(query: &Query, accepted: &[&str], unread: &[&str]) -> Result<Self, ApiError> {
        Self::from_pairs(query.filters()?, accepted, unread)
    }

    /// A key outside `accepted` is refused in Docker's words; one of
    /// Docker's that Keel does not read yet (`unread`) is refused saying
    /// so, rather than ignored.
    pub fn from_pairs(
        pairs: Vec<(String, String)>,
        accepted: &[&str],
        unread: &[&str],
    ) -> Result<Self, ApiError> {
        let mut filters = Filters::default();
        for (key, value) in pairs {
            if unread.contains(&key.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "the filter {key:?} is not supported yet"
                )));
            }
            if !accepted.contains(&key.as_str()) {
                return Err(ApiError::bad_request(format!("invalid filter '{key}'")));
            }
            filters.0.entry(key).or_default().insert(value);
        }
        Ok(filters)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The values given for `key`.
    pub fn get(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0.get(key).into_iter().flatten().map(String::as_str)
    }

    /// Every key given, with its values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &BTreeSet<String>)> {
        self.0.iter().map(|(key, values)| (key.as_str(), values))
    }

    /// Whether one of `key`'s values passes `test`, or `key` is not given.
    pub fn any(&self, key: &str, test: impl Fn(&str) -> bool) -> bool {
        self.0
            .get(key)
            .is_none_or(|values| values.iter().any(|value| test(value)))
    }

    /// Docker's `ExactMatch`: `source` is one of `key`'s values, or `key`
    /// is not given.
    pub fn exact(&self, key: &str, source: &str) -> bool {
        self.any(key, |value| value == source)
    }

    /// Docker's `FuzzyMatch`: as [`exact`](Self::exact), or a value is
    /// `source`'s prefix (an id's first digits, a name's start).
    pub fn fuzzy(&self, key: &str, source: &str) -> bool {
        self.any(key, |value| source.starts_with(value))
    }

    /// Docker's `GetBoolOrDefault`: `key`'s one truth value (`1`, `true`,
    /// `0`, `false`), none when not given.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        let Some(values) = self.0.get(key) else {
            return Ok(None);
        };
        let truthy = values.contains("1") || values.contains("true");
        let falsy = values.contains("0") || values.contains("false");
        if truthy == falsy {
            let given: Vec<&str> = values.iter().map(String::as_str).collect();
            return Err(ApiError::bad_request(format!(
                "invalid filter '{key}=[{}]'",
                given.join(" ")
            )));
        }
        Ok(Some(truthy))
    }

    /// Docker's `MatchKVList`: `labels` has every `KEY` (with any value)
    /// and every `KEY=VALUE` given for `key`; true when none is given.
    pub fn has_labels(&self, key: &str, labels: &BTreeMap<String, String>) -> bool {
        self.get(key).all(|label| {
            let (key, value) = split(label);
            has(labels, key, value)
        })
    }

    /// `label` and `label!` as containers, networks, volumes and prunes
    /// take them: every `label` holds and, when `label!` is given, not
    /// every `label!` does.
    pub fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        self.has_labels("label", labels)
            && !(self.contains("label!") && self.has_labels("label!", labels))
    }

    /// `label` and `label!` as Docker's (containerd) image store takes them
    /// for images: each by itself, `label!` or a `KEY!=VALUE` negating it,
    /// so `label!=a --filter label!=b` keeps images with neither.
    pub fn image_labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        let given = self.get("label").map(|label| (label, false));
        let negated = self.get("label!").map(|label| (label, true));
        given.chain(negated).all(|(label, negated)| {
            let (key, value) = split(label);
            match key.strip_suffix('!') {
                Some(key) => has(labels, key, value) == negated,
                None => has(labels, key, value) != negated,
            }
        })
    }
}

/// Docker's `Match` for one of a key's values: `source` is `pattern`, or
/// `pattern` is a regular expression found in it (Go's `MatchString`: a
/// match anywhere; an invalid one matches nothing, no error).
pub fn regex_match(pattern: &str, source: &str) -> bool {
    pattern == source || Regex::new(pattern).is_ok_and(|regex| regex.is_match(source))
}

/// `KEY` or `KEY=VALUE`.
fn split(label: &str) -> (&str, Option<&str>) {
    match label.split_once('=') {
        Some((key, value)) => (key, Some(value)),
        None => (label, None),
    }
}

fn has(labels: &BTreeMap<String, String>, key: &str, value: Option<&str>) -> bool {
    match value {
        Some(value) => labels.get(key).is_some_and(|v| v == value),
        None => labels.contains_key(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(pairs: &[(&str, &str)]) -> Filters {
        let pairs = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Filters::from_pairs(pairs, &["label", "label!", "dangling"], &[]).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_label_given_must_hold() {
        let both = labels(&[("a", "1"), ("b", "2")]);
        let only_a = labels(&[("a", "1"), ("b", "3")]);
        let wanted = filters(&[("label", "a=1"), ("label", "b=2")]);
        assert!(wanted.labels_match(&both));
        assert!(!wanted.labels_match(&only_a));
        assert!(!wanted.labels_match(&BTreeMap::new()));
        assert!(filters(&[("label", "b")]).labels_match(&only_a));
        assert!(filters(&[]).labels_match(&BTreeMap::new()));
        // A value given must be the label's, even an empty one.
        assert!(!filters(&[("label", "a=")]).labels_match(&both));
    }

    #[test]
    fn label_not_refuses_only_what_has_every_one_given() {
        let both = labels(&[("a", "1"), ("b", "2")]);
        let only_a = labels(&[("a", "1")]);
        let unwanted = filters(&[("label!", "a"), ("label!", "b")]);
        assert!(!unwanted.labels_match(&both));
        assert!(unwanted.labels_match(&only_a));
        assert!(unwanted.labels_match(&BTreeMap::new()));
    }

    #[test]
    fn image_label_filters_negate_each_on_its_own() {
        let only_a = labels(&[("a", "1")]);
        let unwanted = filters(&[("label!", "a"), ("label!", "b")]);
        assert!(!unwanted.image_labels_match(&only_a));
        assert!(unwanted.image_labels_match(&BTreeMap::new()));
        assert!(filters(&[("label!", "a=2")]).image_labels_match(&only_a));
        assert!(!filters(&[("label", "a!=1")]).image_labels_match(&only_a));
        assert!(filters(&[("label", "a!=2")]).image_labels_match(&only_a));
        assert!(!filters(&[("label", "a=1"), ("label", "b")]).image_labels_match(&only_a));
    }

    #[test]
    fn a_match_is_the_value_itself_or_a_regular_expression_found_anywhere() {
        assert!(regex_match("web", "myweb2"));
        assert!(regex_match("^/web$", "/web"));
        assert!(!regex_match("^/web$", "/web2"));
        assert!(regex_match("^w.b", "wxb"));
        assert!(!regex_match("^web", "myweb"));
        // Not a regular expression: only the same text matches it.
        assert!(regex_match("a(b", "a(b"));
        assert!(!regex_match("a(b", "xa(by"));
    }

    #[test]
    fn keys_are_refused_in_dockers_words() {
        let pairs = vec![("colour".to_owned(), "red".to_owned())];
        let error = Filters::from_pairs(pairs, &["label"], &[]).unwrap_err();
        assert_eq!(error.message, "invalid filter 'colour'");
        let pairs = vec![("publish".to_owned(), "80".to_owned())];
        let error = Filters::from_pairs(pairs, &["label"], &["publish"]).unwrap_err();
        assert_eq!(error.message, "the filter \"publish\" is not supported yet");
    }

    #[test]
    fn a_truth_value_is_one_of_dockers_and_not_both() {
        assert_eq!(filters(&[]).bool("dangling").unwrap(), None);
        assert_eq!(
            filters(&[("dangling", "1")]).bool("dangling").unwrap(),
            Some(true)
        );
        assert_eq!(
            filters(&[("dangling", "false")]).bool("dangling").unwrap(),
            Some(false)
        );
        let error = filters(&[("dangling", "true"), ("dangling", "0")])
            .bool("dangling")
            .unwrap_err();
        assert_eq!(error.message, "invalid filter 'dangling=[0 true]'");
        let error = filters(&[("dangling", "yes")])
            .bool("dangling")
            .unwrap_err();
        assert_eq!(error.message, "invalid filter 'dangling=[yes]'");
    }
}
