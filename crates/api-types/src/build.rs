//! `POST /build`'s parameters that are Keel's own: a context the daemon
//! reads where it is, so that a client on the daemon's machine sends no
//! tar. `contextdir` is the directory's absolute path and `contextid` the
//! `DEVICE:INODE` the client sees there; a daemon that sees another
//! directory at that path (a client in another mount namespace) answers
//! 412 Precondition Failed, and the client sends the tar instead.
//!
//! Secrets for `RUN --mount=type=secret` (`keel build --secret`) travel in
//! the header [`SECRETS_HEADER`]: base64 of a JSON object from each
//! secret's id to its bytes in base64. They are in no query, so in no
//! log line, and the daemon keeps them for the build only.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub const CONTEXT_DIR: &str = "contextdir";
/// `keel build --explain-cache`: each step that misses the cache says why.
pub const EXPLAIN_CACHE: &str = "explaincache";
/// `keel build --no-cache-filter STAGE`, once per stage: its steps all run.
pub const NO_CACHE_FILTER: &str = "nocachefilter";
pub const CONTEXT_ID: &str = "contextid";

/// The `contextid` of a directory whose metadata is `meta`.
pub fn context_id(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!("{}:{}", meta.dev(), meta.ino())
}

pub const SECRETS_HEADER: &str = "x-keel-build-secrets";

/// The [`SECRETS_HEADER`] value that carries `secrets`.
pub fn encode_secrets(secrets: &BTreeMap<String, Vec<u8>>) -> String {
    let map: BTreeMap<&str, String> = secrets
        .iter()
        .map(|(id, bytes)| (id.as_str(), STANDARD.encode(bytes)))
        .collect();
    STANDARD.encode(serde_json::to_vec(&map).expect("a map of strings serializes"))
}

/// The secrets a [`SECRETS_HEADER`] value carries.
pub fn decode_secrets(value: &str) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let bad = |why: String| format!("invalid {SECRETS_HEADER} header: {why}");
    let json = STANDARD
        .decode(value.trim())
        .map_err(|e| bad(format!("not base64 ({e})")))?;
    let map: BTreeMap<String, String> = serde_json::from_slice(&json)
        .map_err(|e| bad(format!("not a JSON object of strings ({e})")))?;
    map.into_iter()
        .map(|(id, bytes)| match STANDARD.decode(&bytes) {
            Ok(bytes) => Ok((id, bytes)),
            Err(e) => Err(bad(format!("secret {id:?} is not base64 ({e})"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_back_as_they_were_sent_and_garbage_is_named() {
        let secrets = BTreeMap::from([
            ("token".to_owned(), b"s3cret\n".to_vec()),
            ("bin".to_owned(), vec![0, 255, 10]),
        ]);
        assert_eq!(decode_secrets(&encode_secrets(&secrets)), Ok(secrets));
        let error = decode_secrets("not base64!").unwrap_err();
        assert!(
            error.contains(SECRETS_HEADER) && error.contains("not base64"),
            "{error}"
        );
    }
}
