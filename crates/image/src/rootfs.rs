//! Root filesystems as single tarballs: `import` makes a one-layer image
//! of one (with Dockerfile-style `--change`s to its config), `export`
//! writes a container's merged filesystem as one.

use std::io::{Read, Write};

use serde_json::{Map, Value, json};

use crate::archive::go_arch;
use crate::cancel::Cancel;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::{DOCKER_LAYER, LayerBlob, NewLayer, Store};
use crate::unpack::decompress;

/// What `docker import` takes besides the tarball.
#[derive(Debug, Default, Clone)]
pub struct ImportOptions {
    /// Dockerfile instructions applied to the config: CMD, ENTRYPOINT,
    /// ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR, ONBUILD.
    pub changes: Vec<String>,
    /// The history comment; Docker's default is "Imported from -" or the
    /// source's name.
    pub message: Option<String>,
    pub source: String,
    /// The RFC 3339 creation time to record.
    pub created: String,
}

impl Store {
    /// Makes a one-layer image of a root filesystem tarball (plain, gzip or
    /// zstd), tagged `reference` if given, unless `cancel` stops it.
    /// Returns the image id.
    pub fn import(
        &self,
        tarball: impl Read,
        options: &ImportOptions,
        reference: Option<&Reference>,
        cancel: &Cancel,
    ) -> Result<Digest> {
        let mut container_config = Map::new();
        apply_changes(&mut container_config, &options.changes)?;
        let guard = self.adding();
        let result = (|| {
            let stream = decompress(tarball).map_err(|source| Error::Io {
                what: format!("cannot read {}", options.source),
                source,
            })?;
            let (diff_id, _) = self.content().write(stream, None, &options.source)?;
            let config = json!({
                "architecture": go_arch(),
                "os": "linux",
                "created": options.created,
                "config": container_config,
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [{
                    "created": options.created,
                    "comment": options.message.clone().unwrap_or_else(|| format!("Imported from {}", options.source)),
                }],
            });
            let layer = NewLayer {
                blob: LayerBlob {
                    diff_id: diff_id.clone(),
                    digest: diff_id,
                    media_type: DOCKER_LAYER.to_owned(),
                },
                verified: true,
            };
            let config = serde_json::to_vec(&config).expect("a config serializes");
            let id = self.add_image(&config, &[layer], cancel)?;
            if let Some(reference) = reference {
                self.set_ref(reference, &id)?;
            }
            Ok(id)
        })();
        drop(guard);
        if result.is_err() {
            self.collect_garbage()?;
        }
        result
    }

    /// Writes the snapshot's merged filesystem (the image with the
    /// container's changes) as a tarball.
    pub fn export(&self, snapshot_id: &str, out: impl Write) -> Result<()> {
        let snapshot = self.snapshot(snapshot_id)?;
        let was_mounted = snapshot.is_mounted();
        let merged = self.mount_snapshot(&snapshot)?;
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        let written = tar
            .append_dir_all(".", &merged)
            .and_then(|()| tar.into_inner())
            .and_then(|mut out| out.flush());
        if !was_mounted {
            snapshot.unmount()?;
        }
        written.map_err(|source| Error::Io {
            what: format!("cannot export container {snapshot_id}"),
            source,
        })
    }
}

/// Applies Dockerfile instructions (`import --change`, `commit -c`) to a
/// container config (the JSON object under an image config's "config").
pub fn apply_changes(config: &mut Map<String, Value>, changes: &[String]) -> Result<()> {
    changes
        .iter()
        .try_for_each(|change| apply_change(config, change))
}

fn apply_change(config: &mut Map<String, Value>, change: &str) -> Result<()> {
    let change = change.trim();
    let (instruction, rest) = change
        .split_once(char::is_whitespace)
        .unwrap_or((change, ""));
    let rest = rest.trim();
    let bad = |why: &str| Error::BadConfig(format!("--change {change:?}: {why}"));
    match instruction.to_ascii_uppercase().as_str() {
        key @ ("CMD" | "ENTRYPOINT") => {
            let args = match serde_json::from_str::<Vec<String>>(rest) {
                Ok(args) => args,
                Err(_) => vec!["/bin/sh".to_owned(), "-c".to_owned(), rest.to_owned()],
            };
            let key = if key == "CMD" { "Cmd" } else { "Entrypoint" };
            config.insert(key.to_owned(), json!(args));
        }
        "ENV" => {
            let env = config.entry("Env").or_insert_with(|| json!([]));
            let list = env.as_array_mut().ok_or_else(|| bad("Env is not a list"))?;
            for (name, value) in
                pairs(rest).ok_or_else(|| bad("use ENV NAME=VALUE or ENV NAME VALUE"))?
            {
                list.retain(|item| {
                    item.as_str()
                        .is_none_or(|s| !s.starts_with(&format!("{name}=")))
                });
                list.push(json!(format!("{name}={value}")));
            }
        }
        "LABEL" => {
            let labels = config.entry("Labels").or_insert_with(|| json!({}));
            let map = labels
                .as_object_mut()
                .ok_or_else(|| bad("Labels is not a map"))?;
            for (name, value) in pairs(rest).ok_or_else(|| bad("use LABEL NAME=VALUE"))? {
                map.insert(name, json!(value));
            }
        }
        "EXPOSE" => {
            let ports = config.entry("ExposedPorts").or_insert_with(|| json!({}));
            let map = ports
                .as_object_mut()
                .ok_or_else(|| bad("ExposedPorts is not a map"))?;
            for port in rest.split_whitespace() {
                let (number, protocol) = port.split_once('/').unwrap_or((port, "tcp"));
                if number.parse::<u16>().is_err() || !matches!(protocol, "tcp" | "udp" | "sctp") {
                    return Err(bad(&format!(
                        "invalid port {port:?}: use PORT or PORT/tcp|udp|sctp"
                    )));
                }
                map.insert(format!("{number}/{protocol}"), json!({}));
            }
        }
        "VOLUME" => {
            let volumes = config.entry("Volumes").or_insert_with(|| json!({}));
            let map = volumes
                .as_object_mut()
                .ok_or_else(|| bad("Volumes is not a map"))?;
            let paths = serde_json::from_str::<Vec<String>>(rest)
                .unwrap_or_else(|_| rest.split_whitespace().map(str::to_owned).collect());
            for path in paths {
                map.insert(path, json!({}));
            }
        }
        "USER" => set_string(config, "User", rest, &bad)?,
        "WORKDIR" => set_string(config, "WorkingDir", rest, &bad)?,
        "STOPSIGNAL" => set_string(config, "StopSignal", rest, &bad)?,
        "ONBUILD" => {
            let onbuild = config.entry("OnBuild").or_insert_with(|| json!([]));
            if let Some(list) = onbuild.as_array_mut() {
                list.push(json!(rest));
            }
        }
        other => {
            return Err(bad(&format!(
                "{} is not a valid change command: use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME or WORKDIR",
                other.to_ascii_lowercase()
            )));
        }
    }
    Ok(())
}

fn set_string(
    config: &mut Map<String, Value>,
    key: &str,
    value: &str,
    bad: &dyn Fn(&str) -> Error,
) -> Result<()> {
    if value.is_empty() {
        return Err(bad("needs a value"));
    }
    config.insert(key.to_owned(), json!(value));
    Ok(())
}

/// `A=1 B="two words"` or the legacy `NAME rest of value`.
fn pairs(text: &str) -> Option<Vec<(String, String)>> {
    let first = text.split_whitespace().next()?;
    if !first.contains('=') {
        let (name, value) = text.split_once(char::is_whitespace)?;
        return Some(vec![(name.to_owned(), value.trim().to_owned())]);
    }
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Some(out);
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|&c| c != '=')).collect();
        chars.next()?;
        let mut value = String::new();
        let mut quote = None;
        while let Some(c) = chars.next_if(|&c| quote.is_some() || !c.is_whitespace()) {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => value.extend(chars.next()),
                (_, c) => value.push(c),
            }
        }
        if name.is_empty() || name.contains(char::is_whitespace) {
            return None;
        }
        out.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(changes: &[&str]) -> Value {
        let mut config = Map::new();
        for change in changes {
            apply_change(&mut config, change).unwrap();
        }
        Value::Object(config)
    }

    #[test]
    fn import_changes_set_the_config_as_dockerfile_instructions_do() {
        let config = changed(&[
            "CMD [\"/bin/sh\", \"-c\", \"echo hi\"]",
            "ENTRYPOINT top -b",
            "ENV A=1 B=\"two words\"",
            "ENV C three",
            "EXPOSE 80 53/udp",
            "LABEL team=core",
            "WORKDIR /srv",
            "USER 1000:1000",
        ]);
        assert_eq!(config["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(config["Entrypoint"], json!(["/bin/sh", "-c", "top -b"]));
        assert_eq!(config["Env"], json!(["A=1", "B=two words", "C=three"]));
        assert_eq!(config["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(config["Labels"], json!({"team": "core"}));
        assert_eq!(config["WorkingDir"], json!("/srv"));
        assert_eq!(config["User"], json!("1000:1000"));
    }

    #[test]
    fn unknown_or_malformed_import_changes_are_refused_with_the_fix() {
        let mut config = Map::new();
        let error = apply_change(&mut config, "RUN make")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("run is not a valid change command"),
            "{error}"
        );
        let error = apply_change(&mut config, "EXPOSE http")
            .unwrap_err()
            .to_string();
        assert!(error.contains("invalid port \"http\""), "{error}");
    }
}
