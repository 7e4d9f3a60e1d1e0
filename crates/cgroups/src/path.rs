//! `linux.cgroupsPath` as runc's cgroupfs driver reads it:
//! - empty or absent: a cgroup named after the container id, relative to our own cgroup;
//! - absolute (`/docker/ID`): that path under each hierarchy's mount point;
//! - relative (`a/b`): under our own cgroup in each hierarchy (from /proc/self/cgroup).
//!
//! Paths are cleaned lexically, and a relative path cannot climb above its starting point
//! (`../../x` is `x`), which keeps a container from naming a cgroup outside its parent.

use crate::error::{Error, Result};

/// The container's cgroup path inside a hierarchy, before the mount point is prepended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InnerPath {
    /// Relative to the hierarchy's root.
    Absolute(String),
    /// Relative to the cgroup the runtime itself is in.
    Relative(String),
}

/// Cleans `path` lexically as if it were rooted: no "", "." or ".." components remain.
fn clean_components(path: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Interprets `linux.cgroupsPath` for container `id` (cgroupfs driver semantics).
pub(crate) fn inner_path(cgroups_path: Option<&str>, id: &str) -> Result<InnerPath> {
    let given = cgroups_path.unwrap_or("");
    if given.is_empty() {
        if id.is_empty() || id.contains('/') || id == "." || id == ".." {
            return Err(Error::InvalidPath {
                path: id.to_string(),
                reason: "no cgroupsPath, and the container id cannot be used as a cgroup name",
            });
        }
        return Ok(InnerPath::Relative(id.to_string()));
    }
    if given.contains('\0') {
        return Err(Error::InvalidPath {
            path: given.to_string(),
            reason: "contains a NUL byte",
        });
    }
    let parts = clean_components(given);
    if parts.is_empty() {
        return Err(Error::InvalidPath {
            path: given.to_string(),
            reason: "names the root cgroup, which a container cannot own",
        });
    }
    let joined = parts.join("/");
    if given.starts_with('/') {
        Ok(InnerPath::Absolute(format!("/{joined}")))
    } else {
        Ok(InnerPath::Relative(joined))
    }
}

impl InnerPath {
    /// The cgroup path inside a hierarchy where the runtime itself sits at `own` ("/a/b").
    pub(crate) fn within(&self, own: &str) -> String {
        match self {
            InnerPath::Absolute(p) => p.clone(),
            InnerPath::Relative(p) => {
                let own = own.trim_end_matches('/');
                format!("{own}/{p}")
            }
        }
    }

    pub(crate) fn is_relative(&self) -> bool {
        matches!(self, InnerPath::Relative(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: Option<&str>, id: &str) -> InnerPath {
        match inner_path(p, id) {
            Ok(v) => v,
            Err(e) => panic!("{p:?}: {e}"),
        }
    }

    #[test]
    fn empty_path_is_relative_id() {
        assert_eq!(ok(None, "c1"), InnerPath::Relative("c1".into()));
        assert_eq!(ok(Some(""), "c1"), InnerPath::Relative("c1".into()));
        assert!(inner_path(None, "a/b").is_err());
        assert!(inner_path(None, "..").is_err());
    }

    #[test]
    fn absolute_is_cleaned() {
        assert_eq!(
            ok(Some("/docker//x/./y/../z/"), "c"),
            InnerPath::Absolute("/docker/x/z".into())
        );
        assert_eq!(
            ok(Some("/../../etc"), "c"),
            InnerPath::Absolute("/etc".into())
        );
        assert!(inner_path(Some("/"), "c").is_err());
        assert!(inner_path(Some("/a/.."), "c").is_err());
    }

    #[test]
    fn relative_cannot_escape() {
        assert_eq!(
            ok(Some("../../x/y"), "c"),
            InnerPath::Relative("x/y".into())
        );
        assert_eq!(ok(Some("a/b"), "c"), InnerPath::Relative("a/b".into()));
    }

    #[test]
    fn within_own_cgroup() {
        assert_eq!(InnerPath::Relative("c".into()).within("/"), "/c");
        assert_eq!(
            InnerPath::Relative("c".into()).within("/user/s"),
            "/user/s/c"
        );
        assert_eq!(InnerPath::Absolute("/d/c".into()).within("/user"), "/d/c");
    }
}
