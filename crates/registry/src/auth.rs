//! Credentials as Docker passes them (`X-Registry-Auth`, the `auth` field
//! of config.json) and the challenges registries answer with.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Docker's `AuthConfig`: what `docker login` saves and what a client sends
/// the daemon, base64url-encoded JSON, in `X-Registry-Auth`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// `base64(username:password)`, as config.json stores it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serveraddress: String,
    /// An OAuth refresh token some registries hand out at login.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
    /// A bearer token to send as is.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub registrytoken: String,
}

impl AuthConfig {
    pub fn basic(username: &str, password: &str, serveraddress: &str) -> Self {
        Self {
            username: username.to_owned(),
            password: password.to_owned(),
            serveraddress: serveraddress.to_owned(),
            ..Self::default()
        }
    }

    /// Decodes an `X-Registry-Auth` header: base64url JSON (docker CLI,
    /// docker-py), standard base64 accepted too. An empty header or `{}`
    /// is no credentials.
    pub fn from_header(value: &str) -> Result<Option<Self>> {
        let Some(bytes) = decode_header(value)? else {
            return Ok(None);
        };
        let config: AuthConfig = serde_json::from_slice(&bytes)
            .map_err(|e| Error::BadAuthHeader(format!("not an auth config JSON object: {e}")))?;
        Ok(Some(config.normalized()?).filter(|c| !c.is_empty()))
    }

    /// The credentials of an `X-Registry-Config` header (`POST /build`'s):
    /// a JSON object of auth configs by registry, in base64 as
    /// `X-Registry-Auth`; each normalized, empty ones left out.
    pub fn configs_from_header(value: &str) -> Result<BTreeMap<String, Self>> {
        let Some(bytes) = decode_header(value)? else {
            return Ok(BTreeMap::new());
        };
        let configs: BTreeMap<String, AuthConfig> =
            serde_json::from_slice(&bytes).map_err(|e| {
                Error::BadAuthHeader(format!(
                    "not a JSON object of auth configs by registry: {e}"
                ))
            })?;
        let mut kept = BTreeMap::new();
        for (server, config) in configs {
            let config = config.normalized()?;
            if !config.is_empty() {
                kept.insert(server, config);
            }
        }
        Ok(kept)
    }

    /// The `X-Registry-Auth` header value for these credentials.
    pub fn to_header(&self) -> String {
        URL_SAFE.encode(serde_json::to_vec(self).expect("an auth config serializes"))
    }

    /// The `X-Registry-Config` header value for credentials by registry.
    pub fn configs_header(configs: &BTreeMap<String, Self>) -> String {
        URL_SAFE.encode(serde_json::to_vec(configs).expect("auth configs serialize"))
    }

    /// Fills username and password from `auth` when only that is given.
    pub fn normalized(mut self) -> Result<Self> {
        if self.username.is_empty() && !self.auth.is_empty() {
            let (username, password) = decode_basic(&self.auth)?;
            self.username = username;
            self.password = password;
        }
        self.auth.clear();
        Ok(self)
    }

    pub fn is_empty(&self) -> bool {
        self.username.is_empty()
            && self.password.is_empty()
            && self.identitytoken.is_empty()
            && self.registrytoken.is_empty()
    }

    /// `base64(username:password)`, the `Authorization: Basic` value and
    /// config.json's `auth` field.
    pub fn basic_token(&self) -> String {
        STANDARD.encode(format!("{}:{}", self.username, self.password))
    }
}

/// Splits config.json's `auth` field into username and password.
/// A registry header's JSON: base64, URL-safe as the docker CLI writes it
/// or standard as docker-py does, padded or not; none when empty.
fn decode_header(value: &str) -> Result<Option<Vec<u8>>> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let unpadded = value.trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(unpadded)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(unpadded))
        .map(Some)
        .map_err(|e| Error::BadAuthHeader(format!("not base64: {e}")))
}

pub fn decode_basic(auth: &str) -> Result<(String, String)> {
    let bad = |reason: String| Error::BadAuthHeader(format!("auth field {auth:?}: {reason}"));
    let bytes = STANDARD
        .decode(auth.trim())
        .map_err(|e| bad(format!("not base64: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8".to_owned()))?;
    let (username, password) = text
        .split_once(':')
        .ok_or_else(|| bad("expected base64 of USERNAME:PASSWORD".to_owned()))?;
    Ok((username.to_owned(), password.to_owned()))
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    /// Get a token from `realm` for `service`.
    Bearer {
        realm: String,
        service: String,
    },
}

impl Challenge {
    /// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
    pub fn parse(header: &str) -> Option<Self> {
        let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(params);
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service").unwrap_or_default(),
        })
    }
}

/// `key="value",key=value` pairs, where quoted values may hold commas.
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, remainder) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').unwrap_or(quoted.len());
                (
                    quoted[..end].to_owned(),
                    quoted.get(end + 1..).unwrap_or(""),
                )
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_owned(), &after[end..])
            }
        };
        pairs.push((key, value));
        rest = remainder.trim_start().trim_start_matches(',');
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_parse_with_quoted_commas() {
        let header = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#;
        assert_eq!(
            Challenge::parse(header),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".to_owned(),
                service: "registry.docker.io".to_owned(),
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
    }

    #[test]
    fn registry_config_headers_give_each_registrys_credentials() {
        let json = r#"{"127.0.0.1:5000":{"username":"u","password":"p"},"empty.io":{}}"#;
        let header = URL_SAFE.encode(json);
        let configs = AuthConfig::configs_from_header(&header).unwrap();
        assert_eq!(configs.keys().collect::<Vec<_>>(), ["127.0.0.1:5000"]);
        assert_eq!(configs["127.0.0.1:5000"].username, "u");
        let again = AuthConfig::configs_from_header(&AuthConfig::configs_header(&configs)).unwrap();
        assert_eq!(again["127.0.0.1:5000"].password, "p");
        assert!(AuthConfig::configs_from_header("e30=").unwrap().is_empty());
        let error = AuthConfig::configs_from_header(&URL_SAFE.encode("[1]")).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("not a JSON object of auth configs"),
            "{error}"
        );
    }

    #[test]
    fn registry_auth_headers_round_trip_in_both_base64_alphabets() {
        let config = AuthConfig::basic("user", "p?ss>>", "localhost:5000");
        assert_eq!(
            AuthConfig::from_header(&config.to_header()).unwrap(),
            Some(config.clone())
        );
        let standard = STANDARD.encode(serde_json::to_vec(&config).unwrap());
        assert_eq!(AuthConfig::from_header(&standard).unwrap(), Some(config));
        assert_eq!(AuthConfig::from_header("e30=").unwrap(), None);
        assert!(AuthConfig::from_header("!!!").is_err());
    }

    #[test]
    fn the_auth_field_gives_username_and_password() {
        let config = AuthConfig {
            auth: STANDARD.encode("me:se:cret"),
            ..AuthConfig::default()
        }
        .normalized()
        .unwrap();
        assert_eq!(
            (config.username.as_str(), config.password.as_str()),
            ("me", "se:cret")
        );
        assert!(decode_basic("bm9jb2xvbg==").is_err());
    }
}
