//! Credentials kept by a credential helper (`credsStore`), as Docker
//! Desktop and `pass` users have them: a `docker-credential-NAME` program
//! on PATH speaking get/store/erase on stdin and stdout.

use std::os::unix::fs::PermissionsExt;

use keel_registry::{AuthConfig, ConfigFile};

/// A helper that keeps one credential in a file beside itself.
const HELPER: &str = r#"#!/bin/sh
store="$(dirname "$0")/stored"
case "$1" in
  get) read server
       if [ -f "$store" ]; then cat "$store"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store) cat > "$store" ;;
  erase) read server; rm -f "$store" ;;
  list) if [ -f "$store" ]; then echo '{"registry.example:5000":"me"}'; else echo '{}'; fi ;;
esac
"#;

#[test]
fn a_configured_helper_stores_finds_and_erases_credentials() {
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-keeltest");
    std::fs::write(&helper, HELPER).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    // SAFETY: nextest runs each test in a process of its own, and this one
    // starts no thread before changing PATH.
    unsafe { std::env::set_var("PATH", path) };

    let config_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        config_dir.path().join("config.json"),
        r#"{"credsStore":"keeltest"}"#,
    )
    .unwrap();
    let mut config = ConfigFile::load_from(config_dir.path()).unwrap();
    assert_eq!(config.credentials("registry.example:5000").unwrap(), None);
    config
        .store(
            "registry.example:5000",
            &AuthConfig::basic("me", "secret", "registry.example:5000"),
        )
        .unwrap();
    let stored = std::fs::read_to_string(bin.path().join("stored")).unwrap();
    assert!(stored.contains(r#""Secret":"secret""#), "{stored}");
    let saved = std::fs::read_to_string(config_dir.path().join("config.json")).unwrap();
    assert!(
        !saved.contains("secret"),
        "the password went to the file: {saved}"
    );

    let found = ConfigFile::load_from(config_dir.path())
        .unwrap()
        .credentials("registry.example:5000")
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.username.as_str(), found.password.as_str()),
        ("me", "secret")
    );
    // What a build sends in X-Registry-Config: every server the store
    // lists, as the docker CLI gathers them.
    let all = config.all_credentials().unwrap();
    assert_eq!(all.keys().collect::<Vec<_>>(), ["registry.example:5000"]);
    assert_eq!(all["registry.example:5000"].password, "secret");
    // A registry's own helper adds it, beside the file's auths.
    let other_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        other_dir.path().join("config.json"),
        r#"{"auths":{"plain.example":{"auth":"dTpw"}},"credHelpers":{"other.example:5000":"keeltest"}}"#,
    )
    .unwrap();
    let other = ConfigFile::load_from(other_dir.path()).unwrap();
    let all = other.all_credentials().unwrap();
    assert_eq!(
        all.keys().collect::<Vec<_>>(),
        ["other.example:5000", "plain.example"]
    );
    assert_eq!(all["other.example:5000"].password, "secret");
    assert_eq!(all["plain.example"].password, "p");
    assert!(config.erase("registry.example:5000").unwrap());
    assert!(!bin.path().join("stored").exists());
    assert!(config.all_credentials().unwrap().is_empty());
}
