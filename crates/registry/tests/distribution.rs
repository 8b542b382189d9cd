//! The client against a real registry (Debian's `docker-registry` on a
//! loopback port): uploads whole and in chunks, mounts, manifests, tags.

use std::io::Read;

use keel_image::Digest;
use keel_registry::{Descriptor, ImageManifest, Manifest, Registry};
use keel_testkit::registry::Registry as TestRegistry;

fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn descriptor(bytes: &[u8], media_type: &str) -> Descriptor {
    Descriptor {
        media_type: media_type.to_owned(),
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        platform: None,
    }
}

#[test]
fn blobs_go_up_whole_or_in_chunks_and_come_back_the_same() {
    let server = TestRegistry::start();
    let registry = Registry::connect(&server.address, None, &[]).unwrap();
    let big = noise(5 << 20);
    let small = noise(1000);
    for (blob, chunk) in [(&big, 2 << 20), (&small, 2 << 20)] {
        let digest = Digest::of(blob);
        assert!(!registry.has_blob("up/load", &digest).unwrap());
        registry
            .upload_blob("up/load", &digest, blob.len() as u64, &mut &blob[..], chunk)
            .unwrap();
        assert!(registry.has_blob("up/load", &digest).unwrap());
        let mut back = Vec::new();
        registry
            .blob("up/load", &digest)
            .unwrap()
            .reader
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == *blob, "blob {digest} came back different");
    }
    let patches = server
        .log()
        .lines()
        .filter(|line| line.contains("\"PATCH /v2/up/load/blobs/uploads/"))
        .count();
    assert_eq!(patches, 3, "5 MiB in 2 MiB chunks is three PATCHes");

    // Another repository mounts the blob; a wrong digest is refused.
    let digest = Digest::of(&big);
    assert!(
        registry
            .mount_blob("other/repo", &digest, "up/load")
            .unwrap()
    );
    assert!(registry.has_blob("other/repo", &digest).unwrap());
    let missing = Digest::of(b"never uploaded");
    assert!(
        !registry
            .mount_blob("other/repo", &missing, "up/load")
            .unwrap()
    );
    let error = registry
        .upload_blob("up/load", &missing, 3, &mut &b"abc"[..], 1 << 20)
        .unwrap_err();
    assert!(error.to_string().contains("digest invalid"), "{error}");
}

#[test]
fn manifests_are_put_fetched_listed_and_checked_against_their_digest() {
    let server = TestRegistry::start();
    let registry = Registry::connect(&server.address, None, &[]).unwrap();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = noise(300);
    for bytes in [&config[..], &layer[..]] {
        let digest = Digest::of(bytes);
        registry
            .upload_blob(
                "m/app",
                &digest,
                bytes.len() as u64,
                &mut &bytes[..],
                1 << 20,
            )
            .unwrap();
    }
    let manifest = ImageManifest::new(
        descriptor(config, ""),
        vec![descriptor(
            &layer,
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        )],
    );
    let bytes = manifest.to_json();
    let digest = registry
        .put_manifest("m/app", "v1", &manifest.media_type, &bytes)
        .unwrap();
    registry
        .put_manifest("m/app", "v2", &manifest.media_type, &bytes)
        .unwrap();
    let (fetched, raw, fetched_digest) = registry.manifest("m/app", "v1").unwrap();
    assert_eq!(fetched, Manifest::Image(manifest));
    assert_eq!((raw, fetched_digest.clone()), (bytes, digest.clone()));
    assert_eq!(
        registry.manifest("m/app", digest.as_str()).unwrap().2,
        digest
    );
    let mut tags = registry.tags("m/app").unwrap();
    tags.sort();
    assert_eq!(tags, ["v1", "v2"]);

    let error = registry.manifest("m/app", "v3").unwrap_err();
    assert_eq!(error.status(), Some(404));
    assert_eq!(
        error.to_string(),
        format!(
            "manifest for {}/m/app:v3 not found: manifest unknown: manifest unknown",
            server.address
        )
    );
}

#[test]
fn basic_auth_is_sent_only_with_credentials_and_checked_at_login() {
    let server = TestRegistry::with_basic_auth("user", "pass");
    let anonymous = Registry::connect(&server.address, None, &[]).unwrap();
    let error = anonymous.tags("a/b").unwrap_err();
    assert!(
        error.to_string().ends_with("no basic auth credentials"),
        "{error}"
    );
    let wrong = keel_registry::AuthConfig::basic("user", "nope", &server.address);
    let error = Registry::connect(&server.address, Some(wrong), &[])
        .unwrap()
        .login()
        .unwrap_err();
    assert_eq!(error.status(), Some(401));
    let right = keel_registry::AuthConfig::basic("user", "pass", &server.address);
    let registry = Registry::connect(&server.address, Some(right), &[]).unwrap();
    registry.login().unwrap();
    assert_eq!(registry.tags("a/b").unwrap_err().status(), Some(404));
}
