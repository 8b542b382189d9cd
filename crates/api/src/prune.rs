//! Docker's prune filters: `until` (made before a time), `label` (has
//! every label given) and `label!` (lacks one of them), on top of each
//! prune's own (`dangling` for images, `all` for volumes).

use std::collections::BTreeMap;

use crate::filters::Filters;
use crate::http::{ApiError, Query};

#[derive(Debug)]
pub struct PruneFilter {
    until: Option<i128>,
    /// With the caller's own keys.
    pub filters: Filters,
}

impl PruneFilter {
    /// The query's filters: the common ones and the `own` keys; any other
    /// key is refused by name.
    pub fn parse(query: &Query, own: &[&str]) -> Result<Self, ApiError> {
        let accepted: Vec<&str> = ["until", "label", "label!"]
            .into_iter()
            .chain(own.iter().copied())
            .collect();
        let filters = Filters::parse(query, &accepted, &[])?;
        let until: Vec<&str> = filters.get("until").collect();
        let until = match until[..] {
            [] => None,
            [value] => Some(keel_time::parse_time(value).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "failed to parse value as time or duration: \"{value}\""
                ))
            })?),
            _ => {
                return Err(ApiError::bad_request(
                    "more than one until filter specified",
                ));
            }
        };
        Ok(PruneFilter { until, filters })
    }

    /// Whether an object made at `created` (RFC 3339) with `labels` is to
    /// be pruned.
    pub fn selects(&self, created: &str, labels: &BTreeMap<String, String>) -> bool {
        self.made_before(created) && self.filters.labels_match(labels)
    }

    /// As [`selects`](Self::selects), the labels read as Docker's image
    /// store reads them (see [`Filters::image_labels_match`]).
    pub fn selects_image(&self, created: &str, labels: &BTreeMap<String, String>) -> bool {
        self.made_before(created) && self.filters.image_labels_match(labels)
    }

    fn made_before(&self, created: &str) -> bool {
        self.until
            .is_none_or(|until| keel_time::unix_nanos(created).is_some_and(|made| made < until))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(query: &str) -> PruneFilter {
        PruneFilter::parse(&Query::parse(Some(query)), &["dangling"]).unwrap()
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
        let own = PruneFilter::parse(&query, &["dangling"]).unwrap();
        assert_eq!(own.filters.get("dangling").collect::<Vec<_>>(), ["false"]);
    }
}
