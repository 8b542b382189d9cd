//! `GET /containers/{id}/changes`: what a container changed in its
//! image's files.

use serde::{Deserialize, Serialize};

/// One changed path (swagger: FilesystemChange).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilesystemChange {
    pub path: String,
    pub kind: ChangeType,
}

/// How a path changed (swagger: ChangeType), sent as its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum ChangeType {
    Modified,
    Added,
    Deleted,
}

impl ChangeType {
    /// The letter `docker diff` prints.
    pub fn letter(self) -> char {
        match self {
            ChangeType::Modified => 'C',
            ChangeType::Added => 'A',
            ChangeType::Deleted => 'D',
        }
    }
}

impl From<ChangeType> for u8 {
    fn from(kind: ChangeType) -> u8 {
        match kind {
            ChangeType::Modified => 0,
            ChangeType::Added => 1,
            ChangeType::Deleted => 2,
        }
    }
}

impl TryFrom<u8> for ChangeType {
    type Error = String;

    fn try_from(number: u8) -> Result<Self, String> {
        match number {
            0 => Ok(ChangeType::Modified),
            1 => Ok(ChangeType::Added),
            2 => Ok(ChangeType::Deleted),
            other => Err(format!(
                "unknown change kind {other}: expected 0 (modified), 1 (added) or 2 (deleted)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_travel_as_dockers_numbers() {
        let change = FilesystemChange {
            path: "/etc/x".into(),
            kind: ChangeType::Added,
        };
        let text = serde_json::to_string(&change).unwrap();
        assert_eq!(text, r#"{"Path":"/etc/x","Kind":1}"#);
        assert_eq!(
            serde_json::from_str::<FilesystemChange>(&text).unwrap(),
            change
        );
        assert!(serde_json::from_str::<FilesystemChange>(r#"{"Path":"/x","Kind":7}"#).is_err());
    }
}
