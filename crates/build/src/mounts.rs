//! `RUN --mount`: what a RUN step sees besides its root for as long as it
//! runs, and never in its layer. `type=cache` is a directory the store
//! keeps between builds under its `id` (the target by default), shared,
//! held by one step at a time (`sharing=locked`) or fresh when in use
//! (`sharing=private`); `type=tmpfs` is an empty tmpfs. The other types
//! BuildKit has are refused by name.

use std::fs::File;

use keel_image::Store;
use serde::Serialize;

use crate::builder::{JobMount, JobMountKind};
use crate::dockerfile::Instruction;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) enum Sharing {
    Shared,
    Private,
    Locked,
}

/// One `--mount` of a RUN, as written (after expansion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) enum RunMount {
    Cache {
        id: String,
        target: String,
        sharing: Sharing,
        readonly: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Tmpfs {
        target: String,
        size: Option<u64>,
    },
}

/// Parses one `--mount=` value: `key=value` pairs split by commas.
pub(crate) fn parse(instruction: &Instruction, value: &str) -> Result<RunMount> {
    let mut fields: Vec<(String, Option<String>)> = Vec::new();
    for field in value.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((key, value)) => (key.to_ascii_lowercase(), Some(value.to_owned())),
            None => (field.to_ascii_lowercase(), None),
        };
        fields.push((key, value));
    }
    let get = |names: &[&str]| {
        fields
            .iter()
            .rev()
            .find(|(key, _)| names.contains(&key.as_str()))
            .map(|(_, value)| value.clone().unwrap_or_default())
    };
    let kind = get(&["type"]).unwrap_or_else(|| "bind".to_owned());
    let allowed: &[&str] = match kind.as_str() {
        "cache" => &[
            "type",
            "target",
            "dst",
            "destination",
            "id",
            "sharing",
            "ro",
            "readonly",
            "mode",
            "uid",
            "gid",
        ],
        "tmpfs" => &["type", "target", "dst", "destination", "size"],
        "bind" | "secret" | "ssh" => {
            return Err(instruction.error(format!(
                "RUN --mount=type={kind} is not supported yet: Keel's RUN mounts are type=cache and type=tmpfs"
            )));
        }
        other => {
            return Err(instruction.error(format!(
                "unsupported mount type {other:?}: use cache, tmpfs, bind, secret or ssh"
            )));
        }
    };
    if let Some((key, _)) = fields
        .iter()
        .find(|(key, _)| !allowed.contains(&key.as_str()))
    {
        return Err(instruction.error(format!(
            "unexpected key {key:?} in --mount={value} (type={kind} takes {})",
            allowed.join(", ")
        )));
    }
    let target = get(&["target", "dst", "destination"])
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            instruction.error(format!(
                "--mount={value}: a target is required (target=PATH)"
            ))
        })?;
    let number = |name: &str, radix: u32, default: u32| -> Result<u32> {
        match get(&[name]) {
            None => Ok(default),
            Some(text) => u32::from_str_radix(&text, radix).map_err(|_| {
                instruction.error(format!("--mount={value}: {name}={text} is not a number"))
            }),
        }
    };
    Ok(match kind.as_str() {
        "cache" => RunMount::Cache {
            id: get(&["id"])
                .filter(|i| !i.is_empty())
                .unwrap_or(target.clone()),
            sharing: match get(&["sharing"]).as_deref() {
                None | Some("shared") => Sharing::Shared,
                Some("private") => Sharing::Private,
                Some("locked") => Sharing::Locked,
                Some(other) => {
                    return Err(instruction.error(format!(
                        "--mount={value}: sharing={other} is not one of shared, private, locked"
                    )));
                }
            },
            readonly: match get(&["ro", "readonly"]).as_deref() {
                None | Some("false") => false,
                Some("" | "true") => true,
                Some(other) => {
                    return Err(instruction.error(format!(
                        "--mount={value}: readonly={other} is not true or false"
                    )));
                }
            },
            mode: number("mode", 8, 0o755)?,
            uid: number("uid", 10, 0)?,
            gid: number("gid", 10, 0)?,
            target,
        },
        _ => RunMount::Tmpfs {
            size: match get(&["size"]) {
                None => None,
                Some(text) => Some(
                    keel_units::ram_in_bytes(&text)
                        .ok()
                        .and_then(|size| u64::try_from(size).ok())
                        .ok_or_else(|| {
                            instruction.error(format!("--mount={value}: size={text} is not a size"))
                        })?,
                ),
            },
            target,
        },
    })
}

impl RunMount {
    /// Where the step sees it, as written (relative to the step's
    /// directory unless absolute).
    pub(crate) fn target(&self) -> &str {
        match self {
            RunMount::Cache { target, .. } | RunMount::Tmpfs { target, .. } => target,
        }
    }
}

/// A mount made ready for one step: what the job mounts, and what must
/// live while it runs (a cache's lock, a private cache's own directory).
pub(crate) struct Prepared {
    pub mount: JobMount,
    _lock: Option<File>,
    _private: Option<tempfile::TempDir>,
}

/// Makes `mount` ready in `store`, to be seen at `target` (absolute).
pub(crate) fn prepare(store: &Store, mount: &RunMount, target: String) -> Result<Prepared> {
    match mount {
        RunMount::Tmpfs { size, .. } => Ok(Prepared {
            mount: JobMount {
                kind: JobMountKind::Tmpfs { size: *size },
                target,
                readonly: false,
            },
            _lock: None,
            _private: None,
        }),
        RunMount::Cache {
            id,
            sharing,
            readonly,
            mode,
            uid,
            gid,
            ..
        } => {
            let (dir, lock) = store.cache_mount(id, *mode, *uid, *gid)?;
            let flock = |flags| rustix::fs::flock(&lock, flags).map_err(std::io::Error::from);
            let (source, lock, private) = match sharing {
                Sharing::Shared => (dir, None, None),
                Sharing::Locked => {
                    flock(rustix::fs::FlockOperation::LockExclusive).map_err(|source| {
                        Error::Io {
                            what: format!("cannot lock the cache mount {id}"),
                            source,
                        }
                    })?;
                    (dir, Some(lock), None)
                }
                Sharing::Private => {
                    match flock(rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                        Ok(()) => (dir, Some(lock), None),
                        // In use: this step gets a cache of its own.
                        Err(_) => {
                            let own = store.private_cache_mount(*mode, *uid, *gid)?;
                            (own.path().to_owned(), None, Some(own))
                        }
                    }
                }
            };
            Ok(Prepared {
                mount: JobMount {
                    kind: JobMountKind::Bind(source),
                    target,
                    readonly: *readonly,
                },
                _lock: lock,
                _private: private,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(value: &str) -> Result<RunMount> {
        let parsed = crate::dockerfile::parse(&format!("RUN --mount={value} true\n")).unwrap();
        parse(&parsed.instructions[0], value)
    }

    #[test]
    fn cache_mounts_take_buildkits_keys_and_defaults() {
        assert_eq!(
            mount("type=cache,target=/root/.cache").unwrap(),
            RunMount::Cache {
                id: "/root/.cache".into(),
                target: "/root/.cache".into(),
                sharing: Sharing::Shared,
                readonly: false,
                mode: 0o755,
                uid: 0,
                gid: 0,
            }
        );
        assert_eq!(
            mount("type=cache,id=go,dst=/go,sharing=private,ro,mode=0700,uid=1000,gid=100")
                .unwrap(),
            RunMount::Cache {
                id: "go".into(),
                target: "/go".into(),
                sharing: Sharing::Private,
                readonly: true,
                mode: 0o700,
                uid: 1000,
                gid: 100,
            }
        );
        assert_eq!(
            mount("type=tmpfs,target=/t,size=64m").unwrap(),
            RunMount::Tmpfs {
                target: "/t".into(),
                size: Some(64 << 20),
            }
        );
    }

    #[test]
    fn a_bad_mount_is_refused_naming_the_line_and_the_value() {
        for (value, expected) in [
            ("target=/src", "type=bind is not supported yet"),
            ("type=volume,target=/v", "unsupported mount type \"volume\""),
            (
                "type=cache,target=/c,sharing=all",
                "sharing=all is not one of",
            ),
            ("type=cache,target=/c,mode=rw", "mode=rw is not a number"),
            ("type=tmpfs,target=/t,id=x", "unexpected key \"id\""),
        ] {
            let error = mount(value).unwrap_err().to_string();
            assert!(error.contains(expected), "{value}: {error}");
            assert!(error.contains("line 1"), "{value}: {error}");
        }
    }
}
