//! A session with one registry: the endpoint found by a ping, credentials,
//! bearer tokens per scope, and the Distribution API's manifest and blob
//! calls. Blocking: a pull's concurrency is a few layers, which threads
//! serve without an async runtime in the engine.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use keel_image::Digest;
use ureq::http::{self, Method, Response};
use ureq::tls::{RootCerts, TlsConfig};
use ureq::{Agent, Body, SendBody};

use crate::auth::{AuthConfig, Challenge};
use crate::error::{Error, Result};
use crate::manifest::{ACCEPTED, Manifest};

/// Docker Hub: references say `docker.io`, the API is elsewhere.
const HUB_DOMAIN: &str = "docker.io";
const HUB_API: &str = "registry-1.docker.io";
/// Blobs larger than this are uploaded in chunks of this size.
pub const UPLOAD_CHUNK: u64 = 32 << 20;
/// The most a manifest or config may be, read into memory.
const SMALL_LIMIT: u64 = 8 << 20;

/// A repository's access: `repository:team/app:pull,push`.
fn repository_scope(path: &str, actions: &str) -> String {
    format!("repository:{path}:{actions}")
}

/// A body to send: retried requests (after a token refresh) need one that
/// can be sent again, so streams are only sent once authorized.
enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    Stream(&'a mut dyn Read, u64),
}

/// A blob being downloaded (from an offset, when resumed).
#[allow(missing_debug_implementations)] // ureq's reader has no Debug
pub struct Blob {
    pub reader: ureq::BodyReader<'static>,
    /// The length the registry announced (of what is left to send).
    pub size: Option<u64>,
}

#[derive(Debug)]
pub struct Registry {
    agent: Agent,
    /// The registry as references name it: `docker.io`, `localhost:5000`.
    domain: String,
    /// `https://host[:port]` (or `http://` for an insecure registry).
    base: String,
    credentials: Option<AuthConfig>,
    challenge: Option<Challenge>,
    /// `Authorization` values by scope, fetched once each.
    tokens: Mutex<HashMap<String, String>>,
}

/// Whether Docker would talk to this registry without TLS: loopback
/// addresses and `localhost` always, others when the user says so.
pub fn is_insecure(domain: &str, insecure: &[String]) -> bool {
    let host = match domain.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => domain.rsplit_once(':').map_or(domain, |(host, _)| host),
    };
    host == "localhost"
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        || insecure.iter().any(|i| i == domain || i == host)
}

fn agent(verify: bool) -> Agent {
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::PlatformVerifier)
        .disable_verification(!verify)
        .build();
    Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        // A registry that stops sending mid-blob fails the pull rather
        // than hanging it.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("keel/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

impl Registry {
    /// Finds the registry's endpoint and how it wants to be authenticated
    /// (`GET /v2/`). An insecure registry is tried over HTTPS without
    /// verification first, then over plain HTTP, as Docker does.
    pub fn connect(
        domain: &str,
        credentials: Option<AuthConfig>,
        insecure: &[String],
    ) -> Result<Self> {
        let host = if domain == HUB_DOMAIN {
            HUB_API
        } else {
            domain
        };
        let insecure = is_insecure(domain, insecure);
        let agent = agent(!insecure);
        let mut attempts = vec![format!("https://{host}")];
        if insecure {
            attempts.push(format!("http://{host}"));
        }
        let mut last_error = None;
        for base in attempts {
            let url = format!("{base}/v2/");
            match agent.get(&url).call() {
                Ok(response) => {
                    let challenge = match response.status().as_u16() {
                        200..=299 => None,
                        401 => response
                            .headers()
                            .get_all(http::header::WWW_AUTHENTICATE)
                            .iter()
                            .filter_map(|h| Challenge::parse(h.to_str().ok()?))
                            .next(),
                        _ => {
                            last_error =
                                Some(status_error(&request_name(&Method::GET, &url), response));
                            continue;
                        }
                    };
                    return Ok(Self {
                        agent,
                        domain: domain.to_owned(),
                        base,
                        credentials: credentials.filter(|c| !c.is_empty()),
                        challenge,
                        tokens: Mutex::new(HashMap::new()),
                    });
                }
                Err(error) => {
                    last_error = Some(Error::Transport {
                        what: request_name(&Method::GET, &url),
                        source: Box::new(error),
                    })
                }
            }
        }
        Err(last_error.expect("at least one endpoint was tried"))
    }

    /// `https://host/v2/`, as login messages name it.
    pub fn endpoint(&self) -> String {
        format!("{}/v2/", self.base)
    }

    /// Checks the credentials as `docker login` does: a token from the
    /// auth server, or `/v2/` answered with basic auth.
    pub fn login(&self) -> Result<()> {
        let failed = |status: u16, reason: &str| Error::Status {
            what: format!("login attempt to {} failed with status", self.endpoint()),
            status,
            message: format!("{status} {reason}"),
        };
        match &self.challenge {
            None => Ok(()),
            Some(Challenge::Bearer { .. }) => self.authorization("", true).map(drop),
            Some(Challenge::Basic) => {
                let response = self.send(Method::GET, &self.endpoint(), "", &[], Payload::Empty)?;
                match response.status().as_u16() {
                    200..=299 => Ok(()),
                    status => Err(failed(
                        status,
                        response.status().canonical_reason().unwrap_or(""),
                    )),
                }
            }
        }
    }

    /// `Basic …` for the credentials, when they have a username.
    fn basic_authorization(&self) -> Option<String> {
        let credentials = self.credentials.as_ref()?;
        (!credentials.username.is_empty()).then(|| format!("Basic {}", credentials.basic_token()))
    }

    /// The `Authorization` header for `scope`, fetching a token when the
    /// registry asks for bearer tokens (again when `refresh`).
    fn authorization(&self, scope: &str, refresh: bool) -> Result<Option<String>> {
        let Some(challenge) = &self.challenge else {
            return Ok(None);
        };
        let credentials = self.credentials.as_ref();
        match challenge {
            Challenge::Basic => match self.basic_authorization() {
                Some(basic) => Ok(Some(basic)),
                None => Err(Error::NoCredentials {
                    what: format!("{} {}", self.domain, self.endpoint()),
                }),
            },
            Challenge::Bearer { realm, service } => {
                if let Some(token) = credentials
                    .map(|c| &c.registrytoken)
                    .filter(|t| !t.is_empty())
                {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
                if !refresh && let Some(value) = tokens.get(scope) {
                    return Ok(Some(value.clone()));
                }
                let token = self.fetch_token(realm, service, scope)?;
                let value = format!("Bearer {token}");
                tokens.insert(scope.to_owned(), value.clone());
                Ok(Some(value))
            }
        }
    }

    /// A token from the auth server: with an identity token by OAuth
    /// refresh, else by GET with basic auth (anonymous without credentials).
    fn fetch_token(&self, realm: &str, service: &str, scope: &str) -> Result<String> {
        let what = request_name(&Method::GET, realm);
        let credentials = self.credentials.as_ref();
        let response = match credentials.filter(|c| !c.identitytoken.is_empty()) {
            Some(c) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", c.identitytoken.as_str()),
                    ("service", service),
                    ("client_id", "keel"),
                ];
                if !scope.is_empty() {
                    form.push(("scope", scope));
                }
                self.agent.post(realm).send_form(form)
            }
            None => {
                // One `scope` parameter per scope, as Docker asks.
                let mut request = self.agent.get(realm).query("service", service);
                for scope in scope.split(' ').filter(|s| !s.is_empty()) {
                    request = request.query("scope", scope);
                }
                if let Some(basic) = self.basic_authorization() {
                    request = request.header("Authorization", basic);
                }
                request.call()
            }
        }
        .map_err(|source| Error::Transport {
            what: what.clone(),
            source: Box::new(source),
        })?;
        if !response.status().is_success() {
            return Err(status_error(&what, response));
        }
        #[derive(serde::Deserialize)]
        struct Token {
            #[serde(default)]
            token: String,
            #[serde(default)]
            access_token: String,
        }
        let token: Token = read_json(&what, response)?;
        [token.token, token.access_token]
            .into_iter()
            .find(|t| !t.is_empty())
            .ok_or_else(|| Error::BadAnswer {
                what,
                reason: "the auth server answered without a token".to_owned(),
            })
    }

    /// Sends a request with the authorization `scope` needs; on a 401 the
    /// token is fetched again once (it may have expired or lack a scope).
    fn send(
        &self,
        method: Method,
        url: &str,
        scope: &str,
        headers: &[(&str, &str)],
        mut payload: Payload<'_>,
    ) -> Result<Response<Body>> {
        let what = request_name(&method, url);
        for refresh in [false, true] {
            let mut request = http::Request::builder().method(method.clone()).uri(url);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            if let Some(value) = self.authorization(scope, refresh)? {
                request = request.header(http::header::AUTHORIZATION, value);
            }
            let response = match &mut payload {
                Payload::Empty => self.agent.run(with_body(request, &what, SendBody::none())?),
                Payload::Bytes(bytes) => {
                    let request =
                        request.header(http::header::CONTENT_LENGTH, bytes.len().to_string());
                    self.agent.run(with_body(
                        request,
                        &what,
                        SendBody::from_reader(&mut &bytes[..]),
                    )?)
                }
                Payload::Stream(reader, size) => {
                    let request = request.header(http::header::CONTENT_LENGTH, size.to_string());
                    self.agent.run(with_body(
                        request,
                        &what,
                        SendBody::from_reader(&mut **reader),
                    )?)
                }
            }
            .map_err(|source| Error::Transport {
                what: what.clone(),
                source: Box::new(source),
            })?;
            let retry = response.status() == 401
                && !refresh
                && matches!(self.challenge, Some(Challenge::Bearer { .. }))
                && !matches!(payload, Payload::Stream(..));
            if !retry {
                return Ok(response);
            }
        }
        unreachable!("the second attempt always returns")
    }

    fn url(&self, path: &str, kind: &str, reference: &str) -> String {
        format!("{}/v2/{path}/{kind}/{reference}", self.base)
    }

    /// A manifest or index by tag or digest, with its digest (checked
    /// against the one asked for).
    pub fn manifest(&self, path: &str, reference: &str) -> Result<(Manifest, Vec<u8>, Digest)> {
        let url = self.url(path, "manifests", reference);
        let accept = ACCEPTED.join(", ");
        let scope = repository_scope(path, "pull");
        let response = self.send(
            Method::GET,
            &url,
            &scope,
            &[("Accept", &accept)],
            Payload::Empty,
        )?;
        let what = format!("manifest for {}/{path}:{reference}", self.domain)
            .replace(":sha256:", "@sha256:");
        if !response.status().is_success() {
            return Err(match response.status().as_u16() {
                404 => status_error(&format!("{what} not found"), response),
                _ => status_error(&request_name(&Method::GET, &url), response),
            });
        }
        let content_type = header(&response, "content-type");
        let bytes = read_small(&request_name(&Method::GET, &url), response)?;
        let digest = Digest::of(&bytes);
        if let Ok(expected) = reference.parse::<Digest>()
            && expected != digest
        {
            return Err(Error::ManifestDigest {
                reference: what,
                expected,
                actual: digest,
            });
        }
        Ok((Manifest::parse(&content_type, &bytes)?, bytes, digest))
    }

    /// The repository's tags (`GET /v2/NAME/tags/list`).
    pub fn tags(&self, path: &str) -> Result<Vec<String>> {
        let url = format!("{}/v2/{path}/tags/list", self.base);
        let scope = repository_scope(path, "pull");
        let response = self.send(Method::GET, &url, &scope, &[], Payload::Empty)?;
        if !response.status().is_success() {
            return Err(status_error(&request_name(&Method::GET, &url), response));
        }
        #[derive(serde::Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let tags: Tags = read_json(&request_name(&Method::GET, &url), response)?;
        Ok(tags.tags.unwrap_or_default())
    }

    /// A small blob (a config) read whole, its digest checked.
    pub fn small_blob(&self, path: &str, digest: &Digest) -> Result<Vec<u8>> {
        let mut blob = self.blob(path, digest)?;
        let mut bytes = Vec::new();
        (&mut blob.reader)
            .take(SMALL_LIMIT)
            .read_to_end(&mut bytes)
            .map_err(|source| Error::Io {
                what: format!("cannot read blob {digest}"),
                source,
            })?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(Error::BadAnswer {
                what: format!("blob {digest}"),
                reason: format!("its content has digest {actual}"),
            });
        }
        Ok(bytes)
    }

    /// Starts downloading a blob; the caller verifies it as it reads.
    pub fn blob(&self, path: &str, digest: &Digest) -> Result<Blob> {
        self.blob_from(path, digest, 0)
    }

    /// A blob from byte `offset` on (`Range`), to resume a download the
    /// network cut; an error if the registry cannot serve a range.
    pub fn blob_from(&self, path: &str, digest: &Digest, offset: u64) -> Result<Blob> {
        let url = self.url(path, "blobs", digest.as_str());
        let scope = repository_scope(path, "pull");
        let range = format!("bytes={offset}-");
        let headers: &[(&str, &str)] = match offset {
            0 => &[],
            _ => &[("Range", &range)],
        };
        let response = self.send(Method::GET, &url, &scope, headers, Payload::Empty)?;
        match response.status().as_u16() {
            206 if offset > 0 => {}
            200..=299 if offset == 0 => {}
            200..=299 => {
                return Err(Error::BadAnswer {
                    what: request_name(&Method::GET, &url),
                    reason: format!("the registry cannot resume the blob at byte {offset}"),
                });
            }
            _ => return Err(status_error(&request_name(&Method::GET, &url), response)),
        }
        let size = response.body().content_length();
        Ok(Blob {
            reader: response.into_body().into_reader(),
            size,
        })
    }

    /// Whether the repository has the blob (`HEAD`).
    pub fn has_blob(&self, path: &str, digest: &Digest) -> Result<bool> {
        let url = self.url(path, "blobs", digest.as_str());
        let scope = repository_scope(path, "pull,push");
        let response = self.send(Method::HEAD, &url, &scope, &[], Payload::Empty)?;
        match response.status().as_u16() {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(status_error(&request_name(&Method::HEAD, &url), response)),
        }
    }

    /// Asks the registry to link a blob from another of its repositories
    /// instead of uploading it. False when it would not.
    pub fn mount_blob(&self, path: &str, digest: &Digest, from: &str) -> Result<bool> {
        let url = format!(
            "{}/v2/{path}/blobs/uploads/?mount={digest}&from={from}",
            self.base
        );
        let scope = format!(
            "{} {}",
            repository_scope(path, "pull,push"),
            repository_scope(from, "pull")
        );
        let response = self.send(Method::POST, &url, &scope, &[], Payload::Empty)?;
        match response.status().as_u16() {
            201 => Ok(true),
            202 => {
                // An upload was started instead: cancel it.
                if let Ok(location) = self.location(&request_name(&Method::POST, &url), &response) {
                    let _ = self.send(Method::DELETE, &location, &scope, &[], Payload::Empty);
                }
                Ok(false)
            }
            _ => Err(status_error(&request_name(&Method::POST, &url), response)),
        }
    }

    /// Uploads a blob of `size` bytes: in one request when small, else in
    /// chunks of `chunk` bytes (`PATCH` each, then `PUT` with the digest).
    pub fn upload_blob(
        &self,
        path: &str,
        digest: &Digest,
        size: u64,
        reader: &mut dyn Read,
        chunk: u64,
    ) -> Result<()> {
        let scope = repository_scope(path, "pull,push");
        let start = format!("{}/v2/{path}/blobs/uploads/", self.base);
        let response = self.send(Method::POST, &start, &scope, &[], Payload::Empty)?;
        if response.status() != 202 {
            return Err(status_error(&request_name(&Method::POST, &start), response));
        }
        let mut location = self.location(&request_name(&Method::POST, &start), &response)?;
        let octets = [("Content-Type", "application/octet-stream")];
        if size > chunk {
            let mut offset = 0;
            while offset < size {
                let length = chunk.min(size - offset);
                let range = format!("{offset}-{}", offset + length - 1);
                let mut part = (&mut *reader).take(length);
                let response = self.send(
                    Method::PATCH,
                    &location,
                    &scope,
                    &[octets[0], ("Content-Range", &range)],
                    Payload::Stream(&mut part, length),
                )?;
                if response.status() != 202 {
                    return Err(status_error(
                        &request_name(&Method::PATCH, &location),
                        response,
                    ));
                }
                location = self.location(&request_name(&Method::PATCH, &location), &response)?;
                offset += length;
            }
        }
        let separator = if location.contains('?') { '&' } else { '?' };
        let finish = format!("{location}{separator}digest={digest}");
        let payload = match size > chunk {
            true => Payload::Empty,
            false => Payload::Stream(reader, size),
        };
        let response = self.send(Method::PUT, &finish, &scope, &octets, payload)?;
        if response.status() != 201 {
            return Err(status_error(
                &request_name(&Method::PUT, &location),
                response,
            ));
        }
        Ok(())
    }

    /// Puts a manifest under a tag (or its digest); returns its digest.
    pub fn put_manifest(
        &self,
        path: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        let url = self.url(path, "manifests", reference);
        let scope = repository_scope(path, "pull,push");
        let response = self.send(
            Method::PUT,
            &url,
            &scope,
            &[("Content-Type", media_type)],
            Payload::Bytes(bytes),
        )?;
        if !response.status().is_success() {
            return Err(status_error(&request_name(&Method::PUT, &url), response));
        }
        Ok(Digest::of(bytes))
    }

    /// `GET /v1/search` (Docker Hub's search API) on this registry's index.
    pub fn search(&self, term: &str, limit: u32) -> Result<Vec<u8>> {
        let base = match self.domain.as_str() {
            HUB_DOMAIN => "https://index.docker.io".to_owned(),
            _ => self.base.clone(),
        };
        let url = format!("{base}/v1/search?q={}&n={limit}", query_escape(term));
        let mut request = self.agent.get(&url);
        if let Some(basic) = self.basic_authorization() {
            request = request.header("Authorization", basic);
        }
        let what = request_name(&Method::GET, &url);
        let response = request.call().map_err(|source| Error::Transport {
            what: what.clone(),
            source: Box::new(source),
        })?;
        if !response.status().is_success() {
            return Err(status_error(&what, response));
        }
        read_small(&what, response)
    }

    /// The absolute URL of a response's `Location` header; `request`
    /// names the request that answered.
    fn location(&self, request: &str, response: &Response<Body>) -> Result<String> {
        let location = header(response, "location");
        if location.is_empty() {
            return Err(Error::BadAnswer {
                what: request.to_owned(),
                reason: "the registry answered without a Location".to_owned(),
            });
        }
        Ok(match location.starts_with('/') {
            true => format!("{}{location}", self.base),
            false => location,
        })
    }
}

fn with_body<B>(request: http::request::Builder, what: &str, body: B) -> Result<http::Request<B>> {
    request.body(body).map_err(|e| Error::BadAnswer {
        what: what.to_owned(),
        reason: format!("cannot build the request: {e}"),
    })
}

fn header(response: &Response<Body>, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// A request as errors name it, as Go's HTTP client does: `Get "URL"`.
fn request_name(method: &Method, url: &str) -> String {
    let lower = method.as_str().to_ascii_lowercase();
    let mut chars = lower.chars();
    let title = chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default();
    format!("{title} {url:?}")
}

fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A small answer read whole; `what` names the request.
fn read_small(what: &str, response: Response<Body>) -> Result<Vec<u8>> {
    response
        .into_body()
        .into_with_config()
        .limit(SMALL_LIMIT)
        .read_to_vec()
        .map_err(|source| Error::Transport {
            what: what.to_owned(),
            source: Box::new(source),
        })
}

fn read_json<T: serde::de::DeserializeOwned>(what: &str, response: Response<Body>) -> Result<T> {
    let bytes = read_small(what, response)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::BadAnswer {
        what: what.to_owned(),
        reason: format!("not the JSON expected: {e}"),
    })
}

/// An error status, with the registry's `{"errors":[…]}` rendered as
/// Docker renders it (`manifest unknown: manifest unknown`).
fn status_error(what: &str, response: Response<Body>) -> Error {
    let status = response.status();
    let body = response
        .into_body()
        .into_with_config()
        .limit(64 << 10)
        .read_to_vec()
        .unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Details {
        details: String,
    }
    if let Ok(Details { details }) = serde_json::from_slice(&body) {
        // An auth server's refusal, as Docker Hub's words it.
        return Error::Status {
            what: what.to_owned(),
            status: status.as_u16(),
            message: format!("unauthorized: {details}"),
        };
    }
    let message = match serde_json::from_slice::<Errors>(&body) {
        Ok(errors) if !errors.errors.is_empty() => errors
            .errors
            .iter()
            .map(|e| {
                let code = e.code.to_ascii_lowercase().replace('_', " ");
                match e.message.is_empty() {
                    true => code,
                    false => format!("{code}: {}", e.message),
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            match text.is_empty() || text.len() > 200 {
                true => format!(
                    "{} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                ),
                false => text.to_owned(),
            }
        }
    };
    Error::Status {
        what: what.to_owned(),
        status: status.as_u16(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_named_registries_are_insecure() {
        let none: &[String] = &[];
        assert!(is_insecure("localhost:5000", none));
        assert!(is_insecure("127.0.0.1:5000", none));
        assert!(is_insecure("127.3.2.1", none));
        assert!(is_insecure("[::1]:5000", none));
        assert!(!is_insecure("registry.example:5000", none));
        assert!(is_insecure(
            "registry.example:5000",
            &["registry.example:5000".to_owned()]
        ));
        assert!(!is_insecure("docker.io", none));
    }
}
