//! Bearer-token auth as Docker Hub does it, against the real registry:
//! docker-registry configured for `token` auth, and a small auth server of
//! the test's own that issues JWTs (RS256, signed with `openssl` by a key
//! the test makes, its certificate in the token's `x5c` header) granting
//! what the scope asks to a known user, and nothing to anyone else.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use keel_image::Digest;
use keel_registry::{AuthConfig, Registry};
use keel_testkit::registry::Registry as TestRegistry;

const SERVICE: &str = "keel-test-registry";
const ISSUER: &str = "keel-test-auth";

/// A key and a self-signed certificate for it, made by openssl.
fn make_key(dir: &Path) {
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=keel-test-auth", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl runs (scripts/install-deps installs it)");
    assert!(status.status.success(), "{status:?}");
}

/// A JWT granting `scope` (`repository:NAME:ACTIONS`), signed RS256.
fn token(dir: &Path, scope: &str) -> String {
    let der = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(dir.join("cert.pem"))
        .output()
        .unwrap()
        .stdout;
    let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "x5c": [STANDARD.encode(der)] });
    let access: Vec<serde_json::Value> = scope
        .split(' ')
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({ "type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>() }))
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "me", "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{scope}"), "access": access,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sign = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(dir.join("key.pem"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    sign.stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let signature = sign.wait_with_output().unwrap().stdout;
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// The auth server: a token for the scope asked when the basic
/// credentials are `me:secret`, an empty grant when there are none, 401
/// for wrong ones. Returns its realm URL and the scopes it was asked for.
fn auth_server(dir: &Path) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let realm = format!("http://{}/token", listener.local_addr().unwrap());
    let asked = Arc::new(Mutex::new(Vec::new()));
    let (dir, log) = (dir.to_owned(), Arc::clone(&asked));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            let mut authorization = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("authorization")
                {
                    authorization = value.trim().to_owned();
                }
            }
            let target = request.split_whitespace().nth(1).unwrap_or_default();
            let scope = target
                .split_once('?')
                .map(|(_, query)| query)
                .unwrap_or_default()
                .split('&')
                .filter_map(|pair| pair.strip_prefix("scope="))
                .map(|s| {
                    s.replace("%3A", ":")
                        .replace("%2C", ",")
                        .replace("%2F", "/")
                        .replace("%20", " ")
                        .replace('+', " ")
                })
                .collect::<Vec<_>>()
                .join(" ");
            log.lock().unwrap().push(scope.clone());
            let me = format!("Basic {}", STANDARD.encode("me:secret"));
            let (status, body) = if authorization == me {
                (
                    "200 OK",
                    serde_json::json!({ "token": token(&dir, &scope) }).to_string(),
                )
            } else if authorization.is_empty() {
                (
                    "200 OK",
                    serde_json::json!({ "token": token(&dir, "") }).to_string(),
                )
            } else {
                (
                    "401 Unauthorized",
                    r#"{"details":"incorrect username or password"}"#.to_owned(),
                )
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (realm, asked)
}

#[test]
fn tokens_from_the_auth_server_grant_what_the_credentials_allow() {
    let dir = tempfile::tempdir().unwrap();
    make_key(dir.path());
    let (realm, asked) = auth_server(dir.path());
    let server =
        TestRegistry::with_token_auth(&realm, SERVICE, ISSUER, &dir.path().join("cert.pem"));

    // Anonymous: a token that grants nothing, so the registry says no.
    let anonymous = Registry::connect(&server.address, None, &[]).unwrap();
    let error = anonymous.tags("team/app").unwrap_err();
    assert_eq!(error.status(), Some(401), "{error}");

    // Wrong password: the auth server's refusal, at login and at use.
    let wrong = AuthConfig::basic("me", "wrong", &server.address);
    let error = Registry::connect(&server.address, Some(wrong), &[])
        .unwrap()
        .login()
        .unwrap_err();
    assert_eq!(error.status(), Some(401), "{error}");
    assert_eq!(
        error.to_string(),
        format!("Get {realm:?}: unauthorized: incorrect username or password")
    );

    // The right one: push and pull, a token per scope, fetched once each.
    let right = AuthConfig::basic("me", "secret", &server.address);
    let registry = Registry::connect(&server.address, Some(right), &[]).unwrap();
    registry.login().unwrap();
    asked.lock().unwrap().clear();
    let blob = b"a blob behind a token".to_vec();
    let digest = Digest::of(&blob);
    assert!(!registry.has_blob("team/app", &digest).unwrap());
    registry
        .upload_blob(
            "team/app",
            &digest,
            blob.len() as u64,
            &mut &blob[..],
            1 << 20,
        )
        .unwrap();
    assert!(registry.has_blob("team/app", &digest).unwrap());
    assert!(
        registry
            .mount_blob("team/other", &digest, "team/app")
            .unwrap()
    );
    assert_eq!(registry.small_blob("team/other", &digest).unwrap(), blob);
    let asked = asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        [
            "repository:team/app:pull,push",
            "repository:team/other:pull,push repository:team/app:pull",
            "repository:team/other:pull",
        ],
        "one token per scope"
    );
}
