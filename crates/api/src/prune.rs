//! Docker's prune filters: `until` (made before a time), `label` (has
//! every label given) and `label!` (lacks them), on top of each prune's own
//! (`dangling` for images, `all` for volumes).

use std::collections::BTreeMap;

use crate::http::{ApiError, Query};

#[derive(Debug, Default)]
pub struct PruneFilter {
    until: Option<i128>,
    with: Vec<String>,
    without: Vec<String>,
}

impl PruneFilter {
    /// The query's filters: the common ones, and the `own` keys' values
    /// for the caller; any other key is refused by name.
    pub fn parse(query: &Query, own: &[&str]) -> Result<(Self, Vec<(String, String)>), ApiError> {
        let mut filter = PruneFilter::default();
        let mut rest = Vec::new();
        for (key, value) in query.filters()? {
            match key.as_str() {
                "until" if filter.until.is_some() => {
                    return Err(ApiError::bad_request(
                        "more than one until filter specified",
                    ));
                }
                "until" => {
                    let time = keel_time::parse_time(&value).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "failed to parse value as time or duration: \"{value}\""
                        ))
                    })?;
                    filter.until = Some(time);
                }
                "label" => filter.with.push(value),
                "label!" => filter.without.push(value),
                other if own.contains(&other) => rest.push((key, value)),
                _ => return Err(ApiError::bad_request(format!("invalid filter '{key}'"))),
            }
        }
        Ok((filter, rest))
    }

    /// Whether an object made at `created` (RFC 3339) with `labels` is to
    /// be pruned.
    pub fn selects(&self, created: &str, labels: &BTreeMap<String, String>) -> bool {
        let before = self
            .until
            .is_none_or(|until| keel_time::unix_nanos(created).is_some_and(|made| made < until));
        let has = |label: &String| match label.split_once('=') {
            Some((key, value)) => labels.get(key).is_some_and(|v| v == value),
            None => labels.contains_key(label),
        };
        before
            && self.with.iter().all(has)
            && (self.without.is_empty() || !self.without.iter().all(has))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(query: &str) -> PruneFilter {
        PruneFilter::parse(&Query::parse(Some(query)), &["dangling"])
            .unwrap()
            .0
    }

    #[test]
    fn until_and_labels_select_as_dockers_do() {
        let labels: BTreeMap<String, String> = [("tier".to_owned(), "front".to_owned())].into();
        let old = "2020-01-01T00:00:00Z";
        let until = filter("filters=%7B%22until%22%3A%5B%222021-01-01T00%3A00%3A00Z%22%5D%7D");
        assert!(until.selects(old, &labels));
        assert!(!until.selects("2022-01-01T00:00:00Z", &labels));
        let with = filter("filters=%7B%22label%22%3A%5B%22tier%3Dfront%22%5D%7D");
        assert!(with.selects(old, &labels));
        assert!(!with.selects(old, &BTreeMap::new()));
        let without = filter("filters=%7B%22label!%22%3A%5B%22tier%22%5D%7D");
        assert!(!without.selects(old, &labels));
        assert!(without.selects(old, &BTreeMap::new()));
    }

    #[test]
    fn unknown_keys_and_bad_times_are_refused() {
        let query = Query::parse(Some("filters=%7B%22colour%22%3A%5B%22red%22%5D%7D"));
        let error = PruneFilter::parse(&query, &[]).unwrap_err();
        assert_eq!(error.message, "invalid filter 'colour'");
        let query = Query::parse(Some("filters=%7B%22until%22%3A%5B%22soon%22%5D%7D"));
        let error = PruneFilter::parse(&query, &[]).unwrap_err();
        assert_eq!(
            error.message,
            "failed to parse value as time or duration: \"soon\""
        );
        let query = Query::parse(Some("filters=%7B%22dangling%22%3A%5B%22false%22%5D%7D"));
        let (_, own) = PruneFilter::parse(&query, &["dangling"]).unwrap();
        assert_eq!(own, [("dangling".to_owned(), "false".to_owned())]);
    }
}
