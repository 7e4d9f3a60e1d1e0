//! Parsing a spec mount's `options` into what the fd-based mount API wants: per-mount attributes
//! (plain and recursive), bind flags, propagation, and filesystem parameters.

use crate::sys::mount_api::*;

/// A propagation change (`MS_SHARED`, `MS_SLAVE`, `MS_PRIVATE`, `MS_UNBINDABLE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Propagation {
    pub flag: u64,
    pub recursive: bool,
}

/// A mount's options, sorted by where they apply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// Attributes of the mount itself (`ro`, `nosuid`, ...).
    pub attr_set: u64,
    pub attr_clr: u64,
    /// Attributes applied to the whole subtree (`rro`, `rnosuid`, ...).
    pub rec_attr_set: u64,
    pub rec_attr_clr: u64,
    /// `bind` or `rbind` was given.
    pub bind: bool,
    pub recursive: bool,
    pub propagation: Vec<Propagation>,
    /// `idmap` / `ridmap`: an id-mapped bind mount.
    pub idmap: Option<bool>,
    /// `tmpcopyup`: copy the directory's content into the new tmpfs.
    pub tmpcopyup: bool,
    /// Everything else, handed to the filesystem (`mode=755`, `newinstance`, `sync`, ...).
    pub data: Vec<(String, Option<String>)>,
}

/// `mount(2)` propagation flags.
pub const MS_UNBINDABLE: u64 = libc::MS_UNBINDABLE;
pub const MS_PRIVATE: u64 = libc::MS_PRIVATE;
pub const MS_SLAVE: u64 = libc::MS_SLAVE;
pub const MS_SHARED: u64 = libc::MS_SHARED;

/// Maps a propagation name (`rslave`, `shared`, ...) to its flag.
pub fn propagation(name: &str) -> Option<Propagation> {
    let (recursive, base) = match name.strip_prefix('r') {
        Some(rest) if matches!(rest, "shared" | "slave" | "private" | "unbindable") => (true, rest),
        _ => (false, name),
    };
    let flag = match base {
        "shared" => MS_SHARED,
        "slave" => MS_SLAVE,
        "private" => MS_PRIVATE,
        "unbindable" => MS_UNBINDABLE,
        _ => return None,
    };
    Some(Propagation { flag, recursive })
}

/// One attribute option: (name, set?, attribute bit).
fn attribute(name: &str) -> Option<(bool, u64)> {
    Some(match name {
        "ro" => (true, MOUNT_ATTR_RDONLY),
        "rw" => (false, MOUNT_ATTR_RDONLY),
        "nosuid" => (true, MOUNT_ATTR_NOSUID),
        "suid" => (false, MOUNT_ATTR_NOSUID),
        "nodev" => (true, MOUNT_ATTR_NODEV),
        "dev" => (false, MOUNT_ATTR_NODEV),
        "noexec" => (true, MOUNT_ATTR_NOEXEC),
        "exec" => (false, MOUNT_ATTR_NOEXEC),
        "nodiratime" => (true, MOUNT_ATTR_NODIRATIME),
        "diratime" => (false, MOUNT_ATTR_NODIRATIME),
        "nosymfollow" => (true, MOUNT_ATTR_NOSYMFOLLOW),
        "symfollow" => (false, MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

/// Access-time options replace the whole atime field: (value, clear-mask).
fn atime(name: &str) -> Option<u64> {
    Some(match name {
        "noatime" => MOUNT_ATTR_NOATIME,
        "strictatime" => MOUNT_ATTR_STRICTATIME,
        "relatime" => MOUNT_ATTR_RELATIME,
        // Turning off a mode falls back to the kernel default, relatime.
        "atime" | "norelatime" | "nostrictatime" => MOUNT_ATTR_RELATIME,
        _ => return None,
    })
}

impl MountOptions {
    /// Sorts `options`; unknown ones become filesystem data.
    pub fn parse(options: &[String]) -> MountOptions {
        let mut o = MountOptions::default();
        for opt in options {
            let opt = opt.as_str();
            match opt {
                "bind" => o.bind = true,
                "rbind" => {
                    o.bind = true;
                    o.recursive = true;
                }
                "idmap" => o.idmap = Some(false),
                "ridmap" => o.idmap = Some(true),
                "tmpcopyup" => o.tmpcopyup = true,
                "defaults" | "remount" | "" => {}
                _ => {
                    if let Some(p) = propagation(opt) {
                        o.propagation.push(p);
                    } else if let Some((set, bit)) = attribute(opt) {
                        apply(&mut o.attr_set, &mut o.attr_clr, set, bit);
                    } else if let Some(v) = atime(opt) {
                        o.attr_clr |= MOUNT_ATTR__ATIME;
                        o.attr_set = (o.attr_set & !MOUNT_ATTR__ATIME) | v;
                    } else if let Some(rest) = opt
                        .strip_prefix('r')
                        .filter(|r| attribute(r).is_some() || atime(r).is_some())
                    {
                        if let Some((set, bit)) = attribute(rest) {
                            apply(&mut o.rec_attr_set, &mut o.rec_attr_clr, set, bit);
                        } else if let Some(v) = atime(rest) {
                            o.rec_attr_clr |= MOUNT_ATTR__ATIME;
                            o.rec_attr_set = (o.rec_attr_set & !MOUNT_ATTR__ATIME) | v;
                        }
                    } else {
                        let (k, v) = match opt.split_once('=') {
                            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                            None => (opt.to_owned(), None),
                        };
                        o.data.push((k, v));
                    }
                }
            }
        }
        o
    }

    /// Whether the mount itself is read-only.
    pub fn readonly(&self) -> bool {
        self.attr_set & MOUNT_ATTR_RDONLY != 0
    }
}

fn apply(set: &mut u64, clr: &mut u64, on: bool, bit: u64) {
    if on {
        *set |= bit;
        *clr &= !bit;
    } else {
        *set &= !bit;
        *clr |= bit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &[&str]) -> MountOptions {
        MountOptions::parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn sorts_docker_proc_and_tmpfs_options() {
        let o = parse(&["nosuid", "noexec", "nodev"]);
        assert_eq!(
            o.attr_set,
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODEV
        );
        assert!(o.data.is_empty());
        let o = parse(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.attr_set, MOUNT_ATTR_NOSUID | MOUNT_ATTR_STRICTATIME);
        assert_eq!(o.attr_clr & MOUNT_ATTR__ATIME, MOUNT_ATTR__ATIME);
        assert_eq!(
            o.data,
            vec![
                ("mode".to_owned(), Some("755".to_owned())),
                ("size".to_owned(), Some("65536k".to_owned()))
            ]
        );
    }

    #[test]
    fn bind_propagation_and_recursive_attributes() {
        let o = parse(&["rbind", "rprivate", "rro", "nosuid", "rw"]);
        assert!(o.bind && o.recursive);
        assert_eq!(
            o.propagation,
            vec![Propagation {
                flag: MS_PRIVATE,
                recursive: true
            }]
        );
        assert_eq!(o.rec_attr_set, MOUNT_ATTR_RDONLY);
        assert_eq!(o.attr_set, MOUNT_ATTR_NOSUID);
        assert_eq!(o.attr_clr, MOUNT_ATTR_RDONLY);
        assert!(!o.readonly());
    }

    #[test]
    fn later_options_win() {
        assert!(parse(&["rw", "ro"]).readonly());
        assert!(!parse(&["ro", "rw"]).readonly());
        assert_eq!(
            parse(&["newinstance", "ptmxmode=0666"]).data[0],
            ("newinstance".to_owned(), None)
        );
    }
}
