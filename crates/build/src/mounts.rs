//! `RUN --mount`: what a RUN step sees besides its root for as long as it
//! runs, and never in its layer. `type=cache` is a directory the store
//! keeps between builds under its `id` (the target by default), shared,
//! held by one step at a time (`sharing=locked`) or fresh when in use
//! (`sharing=private`); `type=tmpfs` is an empty tmpfs; `type=bind` is
//! a copy of files of the context (what its .dockerignore leaves in) or
//! of a stage or image (`from`), so that no host path reaches the step and
//! its writes (`rw`) are thrown away. `secret` and `ssh` are refused by
//! name.

use std::fs::File;

use keel_image::Store;
use serde::Serialize;

use std::os::fd::OwnedFd;

use crate::builder::{JobMount, JobMountKind, Selection};
use crate::copy::{self, Owner};
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
    Bind {
        target: String,
        /// A path in the context or in `from`'s files.
        source: String,
        from: Option<String>,
        readwrite: bool,
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
        "bind" => &[
            "type",
            "target",
            "dst",
            "destination",
            "source",
            "src",
            "from",
            "rw",
            "readwrite",
            "ro",
            "readonly",
        ],
        "secret" | "ssh" => {
            return Err(instruction.error(format!(
                "RUN --mount=type={kind} is not supported yet: Keel's RUN mounts are type=cache, tmpfs and bind"
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
    let flag = |names: &[&str]| -> Result<bool> {
        match get(names).as_deref() {
            None | Some("false") => Ok(false),
            Some("" | "true") => Ok(true),
            Some(other) => Err(instruction.error(format!(
                "--mount={value}: {}={other} is not true or false",
                names[0]
            ))),
        }
    };
    Ok(match kind.as_str() {
        "bind" => RunMount::Bind {
            source: get(&["source", "src"])
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| ".".to_owned()),
            from: get(&["from"]).filter(|f| !f.is_empty()),
            readwrite: flag(&["rw", "readwrite"])? && !flag(&["ro", "readonly"])?,
            target,
        },
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
            readonly: flag(&["ro", "readonly"])?,
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
            RunMount::Cache { target, .. }
            | RunMount::Tmpfs { target, .. }
            | RunMount::Bind { target, .. } => target,
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

/// Makes `mount` ready in `store`, to be seen at `target` (absolute) in
/// the step's root `root`; a bind copies what `selection` selected.
pub(crate) fn prepare(
    store: &Store,
    mount: &RunMount,
    target: String,
    root: &File,
    selection: Option<Selection>,
) -> Result<Prepared> {
    match mount {
        RunMount::Bind { readwrite, .. } => bind(store, target, root, selection, *readwrite),
        RunMount::Tmpfs { size, .. } => {
            copy::make_dirs(root, &target, Owner::default())?;
            Ok(Prepared {
                mount: JobMount {
                    kind: JobMountKind::Tmpfs { size: *size },
                    target,
                    readonly: false,
                },
                _lock: None,
                _private: None,
            })
        }
        RunMount::Cache {
            id,
            sharing,
            readonly,
            mode,
            uid,
            gid,
            ..
        } => {
            copy::make_dirs(root, &target, Owner::default())?;
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
                            let own = store.scratch_dir(*mode, *uid, *gid)?;
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

/// A bind at `target` in the step's root `root`: a copy of what
/// `selection` selected, thrown away after the step.
fn bind(
    store: &Store,
    target: String,
    root: &File,
    selection: Option<Selection>,
    readwrite: bool,
) -> Result<Prepared> {
    let (_root, sources, visible) = selection.ok_or_else(|| {
        Error::InvalidArgument(format!("the bind mount at {target} has no files selected"))
    })?;
    let copy = store.scratch_dir(0o755, 0, 0)?;
    let into = copy::open_root(copy.path())?;
    let into = OwnedFd::from(into);
    let owner = Owner::default();
    let mut source_path = copy.path().to_owned();
    for source in &sources {
        if source.is_dir {
            copy::make_dirs(root, &target, owner)?;
            copy::copy_children(&into, source, owner, visible)?;
        } else {
            let (parent, name) = target.rsplit_once('/').unwrap_or(("", &target));
            let parent = copy::make_dirs(root, parent, owner)?;
            copy::write_file(&parent, name, b"", owner)?;
            copy::copy_into(
                &into,
                "file",
                &source.host,
                &source.path,
                owner,
                true,
                visible,
            )?;
            source_path = copy.path().join("file");
        }
    }
    Ok(Prepared {
        mount: JobMount {
            kind: JobMountKind::Bind(source_path),
            target,
            readonly: !readwrite,
        },
        _lock: None,
        _private: Some(copy),
    })
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
            ("type=ssh", "type=ssh is not supported yet"),
            ("target=/src,rw=maybe", "rw=maybe is not true or false"),
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
