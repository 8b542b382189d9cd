//! Docker's client configuration file (`~/.docker/config.json`, or
//! `$DOCKER_CONFIG/config.json`): the credentials `docker login` saves,
//! in its `auths` map or through a credential helper
//! (`credsStore`, `credHelpers`). Fields Keel does not use are kept.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Map, Value, json};

use crate::auth::{AuthConfig, decode_basic};
use crate::error::{Error, Result};

/// Docker Hub's key in config.json, for historical reasons.
const HUB_KEY: &str = "https://index.docker.io/v1/";

/// The registry a server address names, as `login` and `logout` take it:
/// `https://index.docker.io/v1/` or nothing is Docker Hub (`docker.io`),
/// `http://host:5000/` is `host:5000`.
pub fn server_domain(server: &str) -> &str {
    match hostname(server) {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io",
        host => host,
    }
}

/// The key config.json files credentials for `domain` under.
pub fn server_key(domain: &str) -> String {
    match server_domain(domain) {
        "docker.io" => HUB_KEY.to_owned(),
        host => host.to_owned(),
    }
}

/// `https://host:port/v1/` → `host:port`, as Docker compares keys.
fn hostname(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    value: Map<String, Value>,
}

impl ConfigFile {
    /// The file Docker's CLI uses: `$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`. A missing file is an empty configuration.
    pub fn load() -> Result<Self> {
        let dir = match std::env::var_os("DOCKER_CONFIG") {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".docker"),
        };
        Self::load_from(&dir)
    }

    pub fn load_from(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let bad = |reason: String| Error::ConfigFile {
            path: path.display().to_string(),
            reason,
        };
        let value = match std::fs::read(&path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| bad(format!("not a JSON object: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(bad(format!("cannot read it: {e}"))),
        };
        Ok(Self { path, value })
    }

    /// The helper that keeps credentials for `key`, if any.
    fn helper(&self, key: &str) -> Option<String> {
        let host = hostname(key);
        let specific = self.value.get("credHelpers").and_then(Value::as_object);
        specific
            .and_then(|helpers| {
                helpers
                    .iter()
                    .find(|(k, _)| hostname(k) == host)
                    .and_then(|(_, v)| v.as_str())
            })
            .or_else(|| self.value.get("credsStore").and_then(Value::as_str))
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
    }

    fn auths(&self) -> Option<&Map<String, Value>> {
        self.value.get("auths").and_then(Value::as_object)
    }

    /// The saved credentials for a registry (by reference domain).
    pub fn credentials(&self, domain: &str) -> Result<Option<AuthConfig>> {
        let key = server_key(domain);
        if let Some(helper) = self.helper(&key) {
            return helper_get(&helper, &key);
        }
        let host = hostname(&key);
        let entry = self.auths().and_then(|auths| {
            auths.get(&key).or_else(|| {
                auths
                    .iter()
                    .find(|(k, _)| hostname(k) == host)
                    .map(|(_, v)| v)
            })
        });
        let Some(entry) = entry else {
            return Ok(None);
        };
        let mut config = AuthConfig {
            serveraddress: key.clone(),
            identitytoken: string(entry, "identitytoken"),
            ..AuthConfig::default()
        };
        let auth = string(entry, "auth");
        if !auth.is_empty() {
            let (username, password) = decode_basic(&auth)?;
            config.username = username;
            config.password = password;
        }
        Ok(Some(config).filter(|c| !c.is_empty()))
    }

    /// The saved credentials of every registry, by its key: what a build's
    /// `X-Registry-Config` carries, as the docker CLI's GetAllCredentials
    /// gathers them: those of the default store (the file's `auths`, or
    /// every server `credsStore`'s helper lists), then each `credHelpers`
    /// registry's, which win.
    pub fn all_credentials(&self) -> Result<std::collections::BTreeMap<String, AuthConfig>> {
        let mut all = std::collections::BTreeMap::new();
        let store = self
            .value
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty());
        let stored: Vec<String> = match store {
            Some(helper) => helper_list(helper)?,
            None => self
                .auths()
                .map(|auths| auths.keys().cloned().collect())
                .unwrap_or_default(),
        };
        let specific: Vec<String> = self
            .value
            .get("credHelpers")
            .and_then(Value::as_object)
            .map(|helpers| helpers.keys().cloned().collect())
            .unwrap_or_default();
        for key in stored.into_iter().chain(specific) {
            if let Some(config) = self.credentials(server_domain(&key))? {
                all.insert(key, config);
            }
        }
        Ok(all)
    }

    /// Saves credentials (through the helper when one is configured).
    pub fn store(&mut self, domain: &str, auth: &AuthConfig) -> Result<()> {
        let key = server_key(domain);
        let mut entry = Map::new();
        match self.helper(&key) {
            Some(helper) => {
                let (username, secret) = match auth.identitytoken.is_empty() {
                    true => (auth.username.as_str(), auth.password.as_str()),
                    false => ("<token>", auth.identitytoken.as_str()),
                };
                let input = json!({ "ServerURL": key, "Username": username, "Secret": secret });
                run_helper(&helper, "store", &input.to_string())?;
            }
            None => {
                entry.insert("auth".to_owned(), auth.basic_token().into());
                if !auth.identitytoken.is_empty() {
                    entry.insert(
                        "identitytoken".to_owned(),
                        auth.identitytoken.clone().into(),
                    );
                }
            }
        }
        let auths = self
            .value
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(auths) = auths.as_object_mut() {
            auths.retain(|k, _| hostname(k) != hostname(&key));
            auths.insert(key, Value::Object(entry));
        }
        self.save()
    }

    /// Forgets a registry's credentials; false when there were none.
    pub fn erase(&mut self, domain: &str) -> Result<bool> {
        let key = server_key(domain);
        let host = hostname(&key).to_owned();
        let mut found = false;
        if let Some(helper) = self.helper(&key) {
            found = run_helper(&helper, "erase", &key).is_ok();
        }
        if let Some(auths) = self.value.get_mut("auths").and_then(Value::as_object_mut) {
            let before = auths.len();
            auths.retain(|k, _| hostname(k) != host);
            found |= auths.len() != before;
        }
        self.save()?;
        Ok(found)
    }

    /// Writes the file beside itself and renames it over, mode 0600.
    fn save(&self) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let bad = |e: std::io::Error| Error::ConfigFile {
            path: self.path.display().to_string(),
            reason: format!("cannot write it: {e}"),
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(bad)?;
        let temp = dir.join(format!(".config.json.{}", std::process::id()));
        let mut bytes = serde_json::to_vec_pretty(&self.value).expect("JSON serializes");
        bytes.push(b'\n');
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut file| file.write_all(&bytes).and_then(|()| file.sync_all()))
            .and_then(|()| std::fs::rename(&temp, &self.path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written.map_err(bad)
    }
}

fn string(entry: &Value, key: &str) -> String {
    entry[key].as_str().unwrap_or_default().to_owned()
}

/// `docker-credential-HELPER get`: the credentials, or none when the
/// helper has none for this server.
fn helper_get(helper: &str, key: &str) -> Result<Option<AuthConfig>> {
    let output = match run_helper(helper, "get", key) {
        Ok(output) => output,
        Err(Error::CredentialHelper { reason, .. }) if reason.contains("credentials not found") => {
            return Ok(None);
        }
        Err(error) => return Err(error),
    };
    let value: Value = serde_json::from_str(&output).map_err(|e| Error::CredentialHelper {
        helper: helper.to_owned(),
        reason: format!("answered get with something not JSON: {e}"),
    })?;
    let username = string(&value, "Username");
    let secret = string(&value, "Secret");
    let mut config = AuthConfig {
        serveraddress: key.to_owned(),
        ..AuthConfig::default()
    };
    if username == "<token>" {
        config.identitytoken = secret;
    } else {
        config.username = username;
        config.password = secret;
    }
    Ok(Some(config).filter(|c| !c.is_empty()))
}

/// `docker-credential-HELPER list`: the servers it keeps credentials for.
fn helper_list(helper: &str) -> Result<Vec<String>> {
    let output = run_helper(helper, "list", "")?;
    let servers: serde_json::Map<String, Value> =
        serde_json::from_str(&output).map_err(|e| Error::CredentialHelper {
            helper: helper.to_owned(),
            reason: format!("answered list with something not a JSON object: {e}"),
        })?;
    Ok(servers.into_iter().map(|(server, _)| server).collect())
}

/// Runs `docker-credential-HELPER ACTION` with `input` on stdin.
fn run_helper(helper: &str, action: &str, input: &str) -> Result<String> {
    let program = format!("docker-credential-{helper}");
    let failed = |reason: String| Error::CredentialHelper {
        helper: program.clone(),
        reason,
    };
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| failed(format!("cannot write to it: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| failed(format!("cannot wait for it: {e}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let said = if stdout.is_empty() {
            stderr.trim()
        } else {
            &stdout
        };
        return Err(failed(format!("{action}: {said}")));
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_and_other_registries_have_docker_keys() {
        assert_eq!(server_key("docker.io"), HUB_KEY);
        assert_eq!(server_key("localhost:5000"), "localhost:5000");
        assert_eq!(hostname("https://index.docker.io/v1/"), "index.docker.io");
    }

    #[test]
    fn credentials_are_stored_found_and_erased_keeping_other_fields() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"http://old.example:5000/v1/":{"auth":"dTpw"}},"psFormat":"x"}"#,
        )
        .unwrap();
        let mut config = ConfigFile::load_from(dir.path()).unwrap();
        let found = config.credentials("old.example:5000").unwrap().unwrap();
        assert_eq!(
            (found.username.as_str(), found.password.as_str()),
            ("u", "p")
        );
        config
            .store(
                "localhost:5000",
                &AuthConfig::basic("me", "pw", "localhost:5000"),
            )
            .unwrap();
        let reread = ConfigFile::load_from(dir.path()).unwrap();
        let found = reread.credentials("localhost:5000").unwrap().unwrap();
        assert_eq!(
            (found.username.as_str(), found.password.as_str()),
            ("me", "pw")
        );
        assert_eq!(reread.value["psFormat"], "x");
        let mut reread = reread;
        assert!(reread.erase("localhost:5000").unwrap());
        assert!(!reread.erase("localhost:5000").unwrap());
        assert_eq!(reread.credentials("localhost:5000").unwrap(), None);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("config.json"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}
