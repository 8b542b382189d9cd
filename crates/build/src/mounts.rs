//! `RUN --mount`: what a RUN step sees besides its root for as long as it
//! runs, and never in its layer. `type=cache` is a directory the store
//! keeps between builds under its `id` (the target by default), shared,
//! held by one step at a time (`sharing=locked`) or fresh when in use
//! (`sharing=private`); `type=tmpfs` is an empty tmpfs; `type=bind` is
//! a copy of files of the context (what its .dockerignore leaves in) or
//! of a stage or image (`from`), so that no host path reaches the step and
//! its writes (`rw`) are thrown away; `type=secret` is a file on a tmpfs
//! of the step's own (and or an environment variable) holding a secret
//! the build was given, whose mount point is removed after the step, so
//! that nothing of it is in a layer. `ssh` is refused by name.

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
    /// The secret `id`, as a file at `target`, in the variable `env`, or
    /// both. Its bytes are not part of the step's key, as in BuildKit.
    Secret {
        id: String,
        target: Option<String>,
        env: Option<String>,
        required: bool,
        mode: u32,
        uid: u32,
        gid: u32,
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
        "secret" => &[
            "type",
            "target",
            "dst",
            "destination",
            "id",
            "env",
            "required",
            "mode",
            "uid",
            "gid",
        ],
        "ssh" => {
            return Err(instruction.error(
                "RUN --mount=type=ssh is not supported yet: Keel's RUN mounts are type=cache, tmpfs, bind and secret",
            ));
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
    let target = get(&["target", "dst", "destination"]).filter(|t| !t.is_empty());
    let needs_target = || {
        instruction.error(format!(
            "--mount={value}: a target is required (target=PATH)"
        ))
    };
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
        "secret" => {
            let env = get(&["env"]).filter(|e| !e.is_empty());
            // The id defaults to the target's name, the target to
            // /run/secrets/ID unless the secret goes to a variable.
            let id = get(&["id"])
                .filter(|i| !i.is_empty())
                .or_else(|| Some(target.as_ref()?.rsplit('/').next()?.to_owned()))
                .filter(|i| !i.is_empty())
                .ok_or_else(|| {
                    instruction.error(format!(
                        "--mount={value}: a secret needs an id (id=NAME) or a target"
                    ))
                })?;
            RunMount::Secret {
                target: target.or_else(|| env.is_none().then(|| format!("/run/secrets/{id}"))),
                required: flag(&["required"])?,
                mode: number("mode", 8, 0o400)?,
                uid: number("uid", 10, 0)?,
                gid: number("gid", 10, 0)?,
                env,
                id,
            }
        }
        "bind" => RunMount::Bind {
            source: get(&["source", "src"])
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| ".".to_owned()),
            from: get(&["from"]).filter(|f| !f.is_empty()),
            readwrite: flag(&["rw", "readwrite"])? && !flag(&["ro", "readonly"])?,
            target: target.ok_or_else(needs_target)?,
        },
        "cache" => {
            let target = target.ok_or_else(needs_target)?;
            RunMount::Cache {
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
            }
        }
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
            target: target.ok_or_else(needs_target)?,
        },
    })
}

impl RunMount {
    /// Where the step sees it, as written (relative to the step's
    /// directory unless absolute); none for a secret only in a variable.
    pub(crate) fn target(&self) -> Option<&str> {
        match self {
            RunMount::Cache { target, .. }
            | RunMount::Tmpfs { target, .. }
            | RunMount::Bind { target, .. } => Some(target),
            RunMount::Secret { target, .. } => target.as_deref(),
        }
    }
}

/// A mount made ready for one step: what the job mounts, and what must
/// live while it runs (a cache's lock, a private cache's own directory, a
/// secret's tmpfs) and go after it (a secret's mount point).
pub(crate) struct Prepared {
    pub mount: JobMount,
    _lock: Option<File>,
    _stub: Option<Stub>,
    _tmpfs: Option<Unmount>,
    _private: Option<tempfile::TempDir>,
}

impl Prepared {
    fn of(mount: JobMount) -> Self {
        Prepared {
            mount,
            _lock: None,
            _stub: None,
            _tmpfs: None,
            _private: None,
        }
    }
}

/// A file made in the step's root as a mount point, removed when dropped.
struct Stub {
    dir: OwnedFd,
    name: String,
}

impl Drop for Stub {
    fn drop(&mut self) {
        rustix::fs::unlinkat(&self.dir, self.name.as_str(), rustix::fs::AtFlags::empty()).ok();
    }
}

/// A tmpfs the daemon mounted, unmounted when dropped.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH).ok();
    }
}

/// A file to mount over at `target` in the step's root `root`: the
/// image's own if it has one there (left as it is), else an empty one
/// made for the step and removed after it.
fn file_mount_point(root: &File, target: &str) -> Result<Option<Stub>> {
    let (parent, name) = target.rsplit_once('/').unwrap_or(("", target));
    let parent = copy::make_dirs(root, parent, Owner::default())?;
    if rustix::fs::statat(&parent, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok() {
        return Ok(None);
    }
    copy::write_file(&parent, name, b"", Owner::default())?;
    Ok(Some(Stub {
        dir: parent,
        name: name.to_owned(),
    }))
}

/// The secret `bytes` as the file `target` in the step's root `root`: a
/// file on a tmpfs of its own (never on disk), with the mount's owner and
/// mode, bound read-only.
fn secret_file(
    store: &Store,
    target: String,
    root: &File,
    bytes: &[u8],
    owner: Owner,
) -> Result<Prepared> {
    let dir = store.scratch_dir(0o700, 0, 0)?;
    rustix::mount::mount(
        "tmpfs",
        dir.path(),
        "tmpfs",
        rustix::mount::MountFlags::NOSUID
            | rustix::mount::MountFlags::NODEV
            | rustix::mount::MountFlags::NOEXEC,
        std::ffi::CString::new(format!("mode=0700,size={}", bytes.len().max(4096)))
            .expect("no NUL")
            .as_c_str(),
    )
    .map_err(|e| Error::Io {
        what: format!("cannot mount a tmpfs for the secret at {target}"),
        source: e.into(),
    })?;
    let tmpfs = Unmount(dir.path().to_owned());
    let secret_dir = OwnedFd::from(copy::open_root(dir.path())?);
    copy::write_file(&secret_dir, "secret", bytes, owner)?;
    let file = dir.path().join("secret");
    Ok(Prepared {
        _stub: file_mount_point(root, &target)?,
        _tmpfs: Some(tmpfs),
        _private: Some(dir),
        ..Prepared::of(JobMount {
            kind: JobMountKind::Bind(file),
            target,
            readonly: true,
        })
    })
}

/// Makes `mount` ready in `store`, to be seen at `target` (absolute) in
/// the step's root `root`; a bind copies what `selection` selected, a
/// secret holds `secret`.
pub(crate) fn prepare(
    store: &Store,
    mount: &RunMount,
    target: String,
    root: &File,
    selection: Option<Selection>,
    secret: Option<&[u8]>,
) -> Result<Prepared> {
    match mount {
        RunMount::Bind { readwrite, .. } => bind(store, target, root, selection, *readwrite),
        RunMount::Secret { mode, uid, gid, .. } => {
            let bytes = secret.ok_or_else(|| {
                Error::InvalidArgument(format!("the secret mount at {target} has no secret"))
            })?;
            let owner = Owner {
                uid: *uid,
                gid: *gid,
                mode: Some(*mode),
            };
            secret_file(store, target, root, bytes, owner)
        }
        RunMount::Tmpfs { size, .. } => {
            copy::make_dirs(root, &target, Owner::default())?;
            Ok(Prepared::of(JobMount {
                kind: JobMountKind::Tmpfs { size: *size },
                target,
                readonly: false,
            }))
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
                _lock: lock,
                _private: private,
                ..Prepared::of(JobMount {
                    kind: JobMountKind::Bind(source),
                    target,
                    readonly: *readonly,
                })
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
    let mut stub = None;
    for source in &sources {
        if source.is_dir {
            copy::make_dirs(root, &target, owner)?;
            copy::copy_children(&into, source, owner, visible)?;
        } else {
            stub = file_mount_point(root, &target)?;
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
        _stub: stub,
        _private: Some(copy),
        ..Prepared::of(JobMount {
            kind: JobMountKind::Bind(source_path),
            target,
            readonly: !readwrite,
        })
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
    fn secret_mounts_take_buildkits_keys_and_defaults() {
        let secret = |id: &str, target: Option<&str>, env: Option<&str>| RunMount::Secret {
            id: id.into(),
            target: target.map(str::to_owned),
            env: env.map(str::to_owned),
            required: false,
            mode: 0o400,
            uid: 0,
            gid: 0,
        };
        assert_eq!(
            mount("type=secret,id=npmrc").unwrap(),
            secret("npmrc", Some("/run/secrets/npmrc"), None)
        );
        assert_eq!(
            mount("type=secret,target=/root/.npmrc").unwrap(),
            secret(".npmrc", Some("/root/.npmrc"), None)
        );
        assert_eq!(
            mount("type=secret,id=token,env=TOKEN").unwrap(),
            secret("token", None, Some("TOKEN"))
        );
        assert_eq!(
            mount("type=secret,id=k,dst=/k,env=K,required,mode=0440,uid=1,gid=2").unwrap(),
            RunMount::Secret {
                id: "k".into(),
                target: Some("/k".into()),
                env: Some("K".into()),
                required: true,
                mode: 0o440,
                uid: 1,
                gid: 2,
            }
        );
    }

    #[test]
    fn a_bad_mount_is_refused_naming_the_line_and_the_value() {
        for (value, expected) in [
            ("type=ssh", "type=ssh is not supported yet"),
            ("type=secret", "a secret needs an id"),
            (
                "type=secret,id=x,required=perhaps",
                "required=perhaps is not true or false",
            ),
            ("type=cache", "a target is required"),
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
