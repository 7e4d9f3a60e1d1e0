//! The state store: one directory per container under the root (`/run/ocirun` by default), with
//! its record written atomically and a lock per container, so that commands on different
//! containers never wait on each other.

use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::errno::{Errno, check, retry};
use crate::id;
use crate::state::Record;
use crate::sys;

const STATE_FILE: &str = "state.json";
const CONFIG_FILE: &str = "config.json";

/// A state store failure.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    Id(#[from] id::IdError),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container {0:?} already exists")]
    Exists(String),
    #[error(
        "container {0:?} has no state: it is being created, or its creation was interrupted (delete --force removes it)"
    )]
    Incomplete(String),
    #[error("{op} {path}: {errno}")]
    Io {
        op: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    #[error("read {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> StoreError + 'a {
    move |errno| StoreError::Io {
        op,
        path: path.to_owned(),
        errno,
    }
}

/// The root directory holding every container's state.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// One container's directory, locked for as long as this value lives.
#[derive(Debug)]
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
    lock: OwnedFd,
}

impl Store {
    /// A store at `root` (created on first use with mode 0700).
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir_of(&self, id: &str) -> Result<PathBuf, StoreError> {
        id::validate(id)?;
        Ok(self.root.join(id))
    }

    /// Makes a new container directory and locks it; fails if the id is taken.
    pub fn create(&self, id: &str) -> Result<ContainerDir, StoreError> {
        let path = self.dir_of(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|e| io("create state root", &self.root)(Errno::from(e)))?;
        match fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Exists(id.to_owned()));
            }
            Err(e) => return Err(io("create state directory", &path)(Errno::from(e))),
        }
        let lock = lock(&path, libc::LOCK_EX)?;
        Ok(ContainerDir {
            id: id.to_owned(),
            path,
            lock,
        })
    }

    /// Opens and locks an existing container's directory (exclusive when `exclusive`).
    pub fn open(&self, id: &str, exclusive: bool) -> Result<ContainerDir, StoreError> {
        let path = self.dir_of(id)?;
        let lock = match lock(
            &path,
            if exclusive {
                libc::LOCK_EX
            } else {
                libc::LOCK_SH
            },
        ) {
            Err(StoreError::Io { errno, .. }) if errno.0 == libc::ENOENT => {
                return Err(StoreError::NotFound(id.to_owned()));
            }
            other => other?,
        };
        // The directory may have been removed while we waited for the lock.
        if !path.join(STATE_FILE).exists() && !path.exists() {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        Ok(ContainerDir {
            id: id.to_owned(),
            path,
            lock,
        })
    }

    /// The ids of every container in the store, sorted.
    pub fn list(&self) -> Result<Vec<String>, StoreError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("list", &self.root)(Errno::from(e))),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| id::validate(name).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn lock(path: &Path, how: i32) -> Result<OwnedFd, StoreError> {
    let fd = sys::openat(sys::cwd(), path, libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .map_err(io("open state directory", path))?;
    // SAFETY: flock on a valid fd.
    retry(|| unsafe { libc::flock(fd.as_raw_fd(), how) }).map_err(io("lock", path))?;
    Ok(fd)
}

impl ContainerDir {
    /// Reads the container's record.
    pub fn load(&self) -> Result<Record, StoreError> {
        let path = self.path.join(STATE_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Incomplete(self.id.clone()));
            }
            Err(e) => return Err(io("read", &path)(Errno::from(e))),
        };
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path,
            reason: e.to_string(),
        })
    }

    /// Writes the record atomically (temporary file, then rename). No fsync: the store lives on
    /// a tmpfs and does not outlive a reboot, like the containers it describes.
    pub fn save(&self, record: &Record) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(record).map_err(|e| StoreError::Corrupt {
            path: self.path.join(STATE_FILE),
            reason: e.to_string(),
        })?;
        write_atomic(&self.path.join(STATE_FILE), &bytes)
    }

    /// Keeps a copy of the bundle's `config.json` as it was at create time.
    pub fn save_config(&self, bytes: &[u8]) -> Result<(), StoreError> {
        write_atomic(&self.path.join(CONFIG_FILE), bytes)
    }

    /// The config as it was at create time.
    pub fn load_config(&self) -> Result<Vec<u8>, StoreError> {
        let path = self.path.join(CONFIG_FILE);
        fs::read(&path).map_err(|e| io("read", &path)(Errno::from(e)))
    }

    /// A path inside the container's directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The raw fd of the lock, which a forked child must close so the lock ends with us.
    pub fn lock_fd(&self) -> i32 {
        self.lock.as_raw_fd()
    }

    /// Removes the directory and everything in it.
    pub fn remove(self) -> Result<(), StoreError> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &self.path)(Errno::from(e))),
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// readers see the old content or the new, never a torn write.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io("create", &tmp)(Errno::from(e)))?;
    file.write_all(bytes)
        .map_err(|e| io("write", &tmp)(Errno::from(e)))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io("rename", path)(Errno::from(e))
    })
}

/// Removes a file, ignoring that it is already gone.
pub fn remove_file(path: &Path) -> Result<(), Errno> {
    let c = sys::cpath(path)?;
    // SAFETY: `c` is NUL-terminated.
    match check(unsafe { libc::unlink(c.as_ptr()) }) {
        Ok(_) | Err(Errno(libc::ENOENT)) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp_root(name: &str) -> PathBuf {
        let p =
            std::env::temp_dir().join(format!("ocirun-store-test-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn create_refuses_taken_and_unsafe_ids() {
        let root = tmp_root("create");
        let store = Store::new(&root);
        let dir = store.create("c1").unwrap();
        assert!(matches!(store.create("c1"), Err(StoreError::Exists(_))));
        assert!(matches!(store.create("../x"), Err(StoreError::Id(_))));
        assert!(matches!(
            store.open("nope", false),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(dir.load(), Err(StoreError::Incomplete(_))));
        assert_eq!(store.list().unwrap(), vec!["c1".to_owned()]);
        dir.remove().unwrap();
        assert!(store.list().unwrap().is_empty());
        fs::remove_dir_all(&root).unwrap();
    }
}
