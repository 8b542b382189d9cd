//! Records that say which version of their format they are in: the
//! record's own JSON object with a `version` key beside its fields. Files
//! written before records had versions (Keel of 2026-12-03 and earlier)
//! have none and read as version 0, whose format every record kept as its
//! version 1. A format that changes gets a new version, and its reader a
//! step from the one before.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Why a record cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(
        "written by a newer Keel (record version {version}; this one reads up to {newest}): \
         run that Keel, or a newer one"
    )]
    Newer { version: u32, newest: u32 },
    #[error("not a record: {0}")]
    Malformed(#[from] serde_json::Error),
}

#[derive(Serialize)]
struct Writing<'a, T> {
    version: u32,
    #[serde(flatten)]
    record: &'a T,
}

#[derive(Deserialize)]
struct Reading<T> {
    #[serde(default)]
    version: u32,
    #[serde(flatten)]
    record: T,
}

/// The record's JSON, marked with its format's `version`.
pub fn encode<T: Serialize>(version: u32, record: &T) -> Vec<u8> {
    serde_json::to_vec(&Writing { version, record }).expect("a record serializes")
}

/// A record of any version up to `newest` (the reader's own), with its
/// version; a newer one is refused, not misread.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], newest: u32) -> Result<(u32, T), RecordError> {
    let read: Reading<T> = serde_json::from_slice(bytes)?;
    if read.version > newest {
        return Err(RecordError::Newer {
            version: read.version,
            newest,
        });
    }
    Ok((read.version, read.record))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Thing {
        name: String,
        size: u64,
    }

    #[test]
    fn a_record_is_its_fields_and_its_version() {
        let thing = Thing {
            name: "web".into(),
            size: 3,
        };
        let bytes = encode(1, &thing);
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"version": 1, "name": "web", "size": 3})
        );
        assert_eq!(decode::<Thing>(&bytes, 1).unwrap(), (1, thing));
    }

    #[test]
    fn a_record_without_a_version_is_version_0_and_a_newer_one_is_refused() {
        let old = br#"{"name":"web","size":3}"#;
        assert_eq!(decode::<Thing>(old, 1).unwrap().0, 0);
        let newer = br#"{"version":2,"name":"web","size":3}"#;
        let refused = decode::<Thing>(newer, 1).unwrap_err().to_string();
        assert!(
            refused.contains("record version 2; this one reads up to 1"),
            "{refused}"
        );
    }

    #[test]
    fn a_map_record_keeps_its_keys_beside_the_version() {
        let refs = BTreeMap::from([("docker.io/library/busybox:latest".to_owned(), 7)]);
        let bytes = encode(1, &refs);
        assert_eq!(
            decode::<BTreeMap<String, u32>>(&bytes, 1).unwrap(),
            (1, refs)
        );
    }
}
