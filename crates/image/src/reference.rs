//! Image references, parsed and normalized exactly as Docker's
//! distribution/reference package does: `busybox` is
//! `docker.io/library/busybox:latest`, `localhost:5000/a/b:t` keeps its
//! registry, `name@sha256:…` pins a manifest.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::Error;

pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A normalized image reference: a full repository name, and a tag, a
/// digest or both.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// The repository with its registry: `docker.io/library/busybox`.
    name: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses what a user typed, normalizing it and adding the `latest` tag
    /// when neither a tag nor a digest is given (as `docker pull` does).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut reference = Self::parse_normalized(text)?;
        if reference.tag.is_none() && reference.digest.is_none() {
            reference.tag = Some(DEFAULT_TAG.to_owned());
        }
        Ok(reference)
    }

    /// Parses a repository name that must carry neither tag nor digest
    /// (`docker images REPOSITORY`, `docker push` of all tags).
    pub fn parse_repository(text: &str) -> Result<Self, Error> {
        let reference = Self::parse_normalized(text)?;
        if reference.tag.is_some() || reference.digest.is_some() {
            return Err(invalid(
                text,
                "expected a repository name without a tag or digest",
            ));
        }
        Ok(reference)
    }

    fn parse_normalized(text: &str) -> Result<Self, Error> {
        if Digest::is_hex(text) {
            return Err(invalid(
                text,
                "a 64-character hexadecimal string is an image id, not a repository name",
            ));
        }
        let (domain, remainder) = split_domain(text);
        let repository = remainder.split([':', '@']).next().unwrap_or_default();
        if repository.to_lowercase() != repository {
            return Err(invalid(
                text,
                &format!("repository name ({repository}) must be lowercase"),
            ));
        }
        let (rest, digest) = match remainder.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (remainder.as_str(), None),
        };
        let (path, tag) = match rest.rsplit_once(':') {
            Some((path, tag)) if !tag.contains('/') => (path, Some(tag)),
            _ => (rest, None),
        };
        if path.is_empty() {
            return Err(invalid(
                text,
                "repository name must have at least one component",
            ));
        }
        if !is_domain(domain) || !path.split('/').all(is_path_component) {
            return Err(invalid(
                text,
                "use [registry/]name[:tag][@sha256:digest], in lowercase",
            ));
        }
        let name = format!("{domain}/{path}");
        if name.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(invalid(
                text,
                &format!(
                    "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
                ),
            ));
        }
        if let Some(tag) = tag
            && !is_tag(tag)
        {
            return Err(invalid(
                text,
                &format!(
                    "tag {tag:?} must be 1 to 128 of letters, digits, '_', '.' and '-', not starting with '.' or '-'"
                ),
            ));
        }
        let digest = digest
            .map(|digest| {
                digest.parse().map_err(|_| {
                    invalid(
                        text,
                        &format!("digest {digest:?} is not sha256: and 64 lowercase hex digits"),
                    )
                })
            })
            .transpose()?;
        Ok(Self {
            name,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Self, Error> {
        if !is_tag(tag) {
            return Err(invalid(
                tag,
                "a tag is 1 to 128 of letters, digits, '_', '.' and '-'",
            ));
        }
        Ok(Self {
            name: self.name.clone(),
            tag: Some(tag.to_owned()),
            digest: None,
        })
    }

    /// The same repository pinned to a digest, without a tag.
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            name: self.name.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// The full repository name, `docker.io/library/busybox`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The registry host (and port): `docker.io`, `localhost:5000`.
    pub fn domain(&self) -> &str {
        self.name.split_once('/').map_or("", |(domain, _)| domain)
    }

    /// The repository path within the registry: `library/busybox`.
    pub fn path(&self) -> &str {
        self.name.split_once('/').map_or("", |(_, path)| path)
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The repository as Docker prints it: `busybox`, `user/app`,
    /// `localhost:5000/a/b`.
    pub fn familiar_name(&self) -> &str {
        match self.name.strip_prefix("docker.io/") {
            Some(path) => match path.strip_prefix(OFFICIAL_PREFIX) {
                Some(short) if !short.contains('/') => short,
                _ => path,
            },
            None => &self.name,
        }
    }

    /// The whole reference as Docker prints it: `busybox:latest`.
    pub fn familiar(&self) -> String {
        self.render(self.familiar_name())
    }

    fn render(&self, name: &str) -> String {
        let mut text = name.to_owned();
        if let Some(tag) = &self.tag {
            text.push(':');
            text.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            text.push('@');
            text.push_str(digest.as_str());
        }
        text
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        Self::parse(text)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(&self.name))
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

fn invalid(reference: &str, reason: &str) -> Error {
    Error::InvalidReference {
        reference: reference.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The registry a name starts with, and the rest, as Docker's
/// splitDockerDomain tells them: the first component is a registry when it
/// has a '.' or ':', is `localhost`, or has an uppercase letter. None for a
/// name on Docker Hub.
pub fn split_registry(text: &str) -> Option<(&str, &str)> {
    text.split_once('/').filter(|(first, _)| {
        first.contains(['.', ':']) || *first == "localhost" || first.to_lowercase() != *first
    })
}

/// Docker's splitDockerDomain, normalized: `docker.io` for Docker Hub,
/// whose one-component names are under `library/`.
fn split_domain(text: &str) -> (&str, String) {
    let (domain, remainder) = match split_registry(text) {
        Some((first, rest)) => (first, rest.to_owned()),
        None => (DEFAULT_DOMAIN, text.to_owned()),
    };
    let domain = if domain == LEGACY_DEFAULT_DOMAIN {
        DEFAULT_DOMAIN
    } else {
        domain
    };
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        return (domain, format!("{OFFICIAL_PREFIX}{remainder}"));
    }
    (domain, remainder)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    let mut previous_alnum = false;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            previous_alnum = true;
            i += 1;
            continue;
        }
        if !previous_alnum {
            return false;
        }
        let start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += if bytes.get(i + 1) == Some(&b'_') {
                    2
                } else {
                    1
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        debug_assert!(i > start);
        previous_alnum = false;
    }
    previous_alnum
}

/// A host name (components of letters, digits and inner '-', joined by
/// '.') or a bracketed IPv6 address, with an optional `:port`.
fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (domain, None),
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if let Some(ipv6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !ipv6.is_empty() && ipv6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    !host.is_empty()
        && host.split('.').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// `[\w][\w.-]{0,127}`
fn is_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(text: &str) -> String {
        Reference::parse(text).unwrap().to_string()
    }

    #[test]
    fn short_names_are_official_images_on_docker_hub() {
        assert_eq!(normalized("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(normalized("nginx:1.25"), "docker.io/library/nginx:1.25");
        assert_eq!(normalized("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            normalized("index.docker.io/nginx"),
            "docker.io/library/nginx:latest"
        );
    }

    #[test]
    fn registries_with_ports_and_nested_paths_keep_their_domain() {
        let reference = Reference::parse("localhost:5000/a/b:t").unwrap();
        assert_eq!(reference.to_string(), "localhost:5000/a/b:t");
        assert_eq!(reference.domain(), "localhost:5000");
        assert_eq!(reference.path(), "a/b");
        assert_eq!(reference.familiar(), "localhost:5000/a/b:t");
        assert_eq!(normalized("localhost/app"), "localhost/app:latest");
        assert_eq!(normalized("[::1]:5000/app"), "[::1]:5000/app:latest");
    }

    #[test]
    fn digest_references_get_no_default_tag() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let reference = Reference::parse(&format!("busybox@sha256:{hex}")).unwrap();
        assert_eq!(reference.tag(), None);
        assert_eq!(
            reference.to_string(),
            format!("docker.io/library/busybox@sha256:{hex}")
        );
        assert_eq!(reference.familiar(), format!("busybox@sha256:{hex}"));
    }

    #[test]
    fn familiar_names_drop_docker_hub_and_library() {
        assert_eq!(
            Reference::parse("docker.io/library/nginx")
                .unwrap()
                .familiar(),
            "nginx:latest"
        );
        assert_eq!(
            Reference::parse("docker.io/user/app:1").unwrap().familiar(),
            "user/app:1"
        );
    }

    #[test]
    fn malformed_references_are_refused_with_the_reason() {
        let message = |text: &str| Reference::parse(text).unwrap_err().to_string();
        assert!(
            message("Nginx").contains("must be lowercase"),
            "{}",
            message("Nginx")
        );
        assert!(message("nginx:").contains("tag"));
        assert!(message("a//b").contains("invalid reference format"));
        assert!(message("busybox@sha256:abc").contains("digest"));
        assert!(message(&"e".repeat(64)).contains("image id"));
        assert!(message(&"a".repeat(300)).contains("255"));
        assert!(message("-a").contains("invalid reference format"));
    }

    #[test]
    fn path_components_follow_dockers_separators() {
        for good in ["a", "a.b", "a_b", "a__b", "a---b", "0x"] {
            assert!(is_path_component(good), "{good}");
        }
        for bad in ["", "a___b", "a.", ".a", "a..b", "A", "a_-b"] {
            assert!(!is_path_component(bad), "{bad}");
        }
    }
}
