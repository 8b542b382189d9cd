//! `ADD <http(s) URL>`: the resource downloaded into a directory of the
//! step's own, as Docker's builders take it: named by the URL's last path
//! part, mode 0600, its time the `Last-Modified` the server sent, never
//! unpacked; checked against `--checksum` as it is read.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

use keel_image::Cancel;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// Whether an ADD source is a URL, as Docker tells one.
pub(crate) fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// The name a URL's file takes: its path's last part, as BuildKit names it.
pub(crate) fn file_name(url: &str) -> String {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['?', '#'])
        .next()
        .unwrap_or_default();
    match path.split_once('/') {
        Some((_, path)) => path
            .rsplit('/')
            .find(|part| !part.is_empty())
            .unwrap_or("__unnamed__")
            .to_owned(),
        None => "__unnamed__".to_owned(),
    }
}

/// `--checksum=sha256:HEX`, checked as BuildKit does.
pub(crate) fn parse_checksum(value: &str) -> std::result::Result<String, String> {
    match value.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(format!("sha256:{}", hex.to_ascii_lowercase()))
        }
        _ => Err(format!(
            "invalid checksum {value:?}: use sha256: and 64 hex digits, the SHA-256 of the content"
        )),
    }
}

/// Downloads `url` as the file `name` in `dir`, unless `cancel` says to
/// stop; refused when it is not `checksum` (`sha256:…`) if one is given.
pub(crate) fn download(
    url: &str,
    dir: &Path,
    name: &str,
    checksum: Option<&str>,
    cancel: &Cancel,
) -> Result<()> {
    let failed = |why: String| Error::InvalidArgument(format!("failed to download {url}: {why}"));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("keel/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| failed(e.to_string()))?;
    let modified = response
        .headers()
        .get("last-modified")
        .and_then(|value| value.to_str().ok())
        .and_then(keel_time::http_date);
    let path = dir.join(name);
    let io = |source: io::Error| Error::Io {
        what: format!("cannot write the download of {url}"),
        source,
    };
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io)?;
    let mut body = response.into_body().into_reader();
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    loop {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let n = body.read(&mut buffer).map_err(|e| failed(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        file.write_all(&buffer[..n]).map_err(io)?;
    }
    let got: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let got = format!("sha256:{got}");
    if let Some(expected) = checksum
        && expected != got
    {
        return Err(failed(format!(
            "the content's checksum is {got}, not {expected} as --checksum says"
        )));
    }
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io)?;
    if let Some(modified) = modified {
        file.set_modified(modified).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_urls_file_is_named_by_its_last_path_part() {
        assert_eq!(
            file_name("https://example.com/a/b/tool.tar.gz?x=1"),
            "tool.tar.gz"
        );
        assert_eq!(file_name("http://example.com/dir/"), "dir");
        assert_eq!(file_name("http://example.com"), "__unnamed__");
        assert_eq!(file_name("http://example.com/"), "__unnamed__");
    }

    #[test]
    fn a_checksum_is_sha256_and_64_hex_digits() {
        let hex = "A".repeat(64);
        assert_eq!(
            parse_checksum(&format!("sha256:{hex}")),
            Ok(format!("sha256:{}", "a".repeat(64)))
        );
        assert!(
            parse_checksum("md5:abc")
                .unwrap_err()
                .contains("use sha256:")
        );
        assert!(parse_checksum("sha256:abc").is_err());
    }
}
