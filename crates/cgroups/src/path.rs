use std::path::{Component, Path, PathBuf};

use crate::Error;

/// Where a container's cgroup goes, from the OCI `linux.cgroupsPath`:
/// absolute paths are relative to each hierarchy's root, relative paths to
/// the runtime's own cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupPath {
    absolute: bool,
    relative: PathBuf,
}

impl CgroupPath {
    /// Parses `path`, refusing `..` so a config cannot escape the hierarchy.
    pub fn parse(path: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidPath {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let mut relative = PathBuf::new();
        for component in Path::new(path).components() {
            match component {
                Component::Normal(part) => relative.push(part),
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir => return Err(invalid("'..' is not allowed")),
                Component::Prefix(_) => return Err(invalid("not a Linux path")),
            }
        }
        if relative.as_os_str().is_empty() {
            return Err(invalid("it names no cgroup below the root"));
        }
        Ok(CgroupPath {
            absolute: path.starts_with('/'),
            relative,
        })
    }

    pub fn is_absolute(&self) -> bool {
        self.absolute
    }

    /// The path without its leading `/`.
    pub fn relative(&self) -> &Path {
        &self.relative
    }
}

/// Turns systemd's `slice:prefix:name` form (what runc's `--systemd-cgroup`
/// takes) into the cgroupfs path systemd would give the unit, so the
/// container lands where a systemd-driven runtime would put it.
pub fn systemd_to_cgroupfs(spec: &str) -> Result<String, Error> {
    let invalid = |reason: &str| Error::InvalidPath {
        path: spec.to_owned(),
        reason: reason.to_owned(),
    };
    let mut parts = spec.split(':');
    let (Some(slice), Some(prefix), Some(name), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("expected the systemd form slice:prefix:name"));
    };
    if name.is_empty() {
        return Err(invalid("the unit name is empty"));
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let mut path = expand_slice(slice).ok_or_else(|| invalid("malformed slice name"))?;
    let unit = if name.ends_with(".slice") {
        // A slice as the unit: it nests under the parent slice by name.
        return Ok(path + "/" + name);
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    path.push('/');
    path.push_str(&unit);
    Ok(path)
}

/// `a-b-c.slice` lives at `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is
/// the root.
fn expand_slice(slice: &str) -> Option<String> {
    let stem = slice.strip_suffix(".slice")?;
    if stem == "-" {
        return Some(String::new());
    }
    if stem.is_empty() || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return None;
    }
    let mut path = String::new();
    let mut end = 0;
    for part in stem.split('-') {
        end += part.len();
        path.push('/');
        path.push_str(&stem[..end]);
        path.push_str(".slice");
        end += 1;
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_and_relative_paths_keep_their_anchor() {
        let abs = CgroupPath::parse("/keel/c1").unwrap();
        assert!(abs.is_absolute());
        assert_eq!(abs.relative(), Path::new("keel/c1"));
        let rel = CgroupPath::parse("keel/c1").unwrap();
        assert!(!rel.is_absolute());
        assert_eq!(rel.relative(), Path::new("keel/c1"));
    }

    #[test]
    fn parent_components_and_the_bare_root_are_refused() {
        let err = CgroupPath::parse("/keel/../../etc")
            .unwrap_err()
            .to_string();
        assert!(err.contains("'..' is not allowed"), "{err}");
        assert!(CgroupPath::parse("/").is_err());
    }

    #[test]
    fn systemd_units_expand_like_systemd_names_them() {
        assert_eq!(
            systemd_to_cgroupfs("machine.slice:libpod:abc").unwrap(),
            "/machine.slice/libpod-abc.scope"
        );
        assert_eq!(
            systemd_to_cgroupfs("a-b.slice:docker:x").unwrap(),
            "/a.slice/a-b.slice/docker-x.scope"
        );
        assert_eq!(
            systemd_to_cgroupfs(":runc:x").unwrap(),
            "/system.slice/runc-x.scope"
        );
        assert_eq!(systemd_to_cgroupfs("-.slice::x").unwrap(), "/x.scope");
        assert!(systemd_to_cgroupfs("/plain/path").is_err());
        assert!(systemd_to_cgroupfs("a--b.slice:p:x").is_err());
    }
}
