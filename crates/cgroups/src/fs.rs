//! Small helpers to read and write cgroup files. Each write is one open + one write + close, and
//! every failure names the file, the value and the errno.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Read, Write};
use std::path::Path;

use crate::error::{Errno, Error, Result};

/// Writes `value` to `dir/file`.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    write_path(&dir.join(file), value)
}

/// Writes `value` to `path` in a single write(2), as cgroup files expect.
pub(crate) fn write_path(path: &Path, value: &str) -> Result<()> {
    let fail = |err: &std::io::Error| Error::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        errno: Errno::from_io(err),
    };
    // No O_CREAT/O_TRUNC: a missing file must fail with ENOENT, not try to create one.
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| fail(&e))?;
    match file.write(value.as_bytes()) {
        Ok(n) if n == value.len() => Ok(()),
        Ok(_) => Err(fail(&std::io::Error::from_raw_os_error(libc::EIO))),
        Err(e) => Err(fail(&e)),
    }
}

/// Writes each of `values` to `dir/file` with its own write(2), through one open file: for
/// files that take one entry per write, such as v1 `devices.allow`.
pub(crate) fn write_each(dir: &Path, file: &str, values: &[String]) -> Result<()> {
    let path = dir.join(file);
    let fail = |value: &str, err: &std::io::Error| Error::Write {
        path: path.clone(),
        value: value.to_string(),
        errno: Errno::from_io(err),
    };
    let Some(first) = values.first() else {
        return Ok(());
    };
    let mut f = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| fail(first, &e))?;
    for value in values {
        match f.write(value.as_bytes()) {
            Ok(n) if n == value.len() => {}
            Ok(_) => return Err(fail(value, &std::io::Error::from_raw_os_error(libc::EIO))),
            Err(e) => return Err(fail(value, &e)),
        }
    }
    Ok(())
}

/// Reads `dir/file` as a string.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    read_path(&dir.join(file))
}

pub(crate) fn read_path(path: &Path) -> Result<String> {
    let mut out = String::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut out))
        .map_err(|e| Error::Read {
            path: path.to_path_buf(),
            errno: Errno::from_io(&e),
        })?;
    Ok(out)
}

/// Reads `dir/file` if it exists; `None` when it does not (controller or feature absent).
pub(crate) fn read_optional(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    let mut out = String::new();
    match std::fs::File::open(&path).and_then(|mut f| f.read_to_string(&mut out)) {
        Ok(_) => Ok(Some(out)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Read {
            path,
            errno: Errno::from_io(&e),
        }),
    }
}

/// Parses a single number; "max" reads as `u64::MAX` (v2's "no limit").
pub(crate) fn parse_u64(path: &Path, text: &str) -> Result<u64> {
    let t = text.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse().map_err(|_| Error::Parse {
        path: path.to_path_buf(),
        content: t.to_string(),
    })
}

/// Reads a single-number file.
pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    let path = dir.join(file);
    let text = read_path(&path)?;
    parse_u64(&path, &text)
}

/// Reads a single-number file that may be absent (0 then).
pub(crate) fn read_u64_or_zero(dir: &Path, file: &str) -> Result<u64> {
    match read_optional(dir, file)? {
        Some(text) => parse_u64(&dir.join(file), &text),
        None => Ok(0),
    }
}

/// Parses "key value" lines (memory.stat, cpu.stat, memory.events, ...). Lines that do not fit
/// are skipped: kernels add keys, and one odd line must not hide the rest.
pub(crate) fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace();
            let key = it.next()?;
            let value = it.next()?.parse().ok()?;
            Some((key.to_string(), value))
        })
        .collect()
}

/// Reads a flat-keyed file; an absent file gives an empty map.
pub(crate) fn read_flat_keyed(dir: &Path, file: &str) -> Result<BTreeMap<String, u64>> {
    Ok(read_optional(dir, file)?
        .map(|t| parse_flat_keyed(&t))
        .unwrap_or_default())
}

/// Whether `dir/file` exists (one access(2)).
pub(crate) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

/// Reads the pids listed in `dir/cgroup.procs`.
pub(crate) fn read_procs(dir: &Path) -> Result<Vec<i32>> {
    let path = dir.join("cgroup.procs");
    let text = read_path(&path)?;
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.trim().parse().map_err(|_| Error::Parse {
                path: path.clone(),
                content: l.to_string(),
            })
        })
        .collect()
}

/// Renders a spec value for v2 files, where a negative value means "no limit".
pub(crate) fn v2_limit(value: i64) -> String {
    if value < 0 {
        "max".to_string()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_skips_odd_lines() {
        let m = parse_flat_keyed("a 1\nbogus\nb 2 3\nc x\n");
        assert_eq!(m.get("a"), Some(&1));
        assert_eq!(m.get("b"), Some(&2));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn parse_max() {
        assert_eq!(parse_u64(Path::new("x"), "max\n").ok(), Some(u64::MAX));
        assert_eq!(parse_u64(Path::new("x"), " 12\n").ok(), Some(12));
        assert!(parse_u64(Path::new("x"), "abc").is_err());
    }

    #[test]
    fn write_error_names_file_value_errno() {
        let err = write(Path::new("/nonexistent-dir"), "pids.max", "max")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("write \"max\" to /nonexistent-dir/pids.max: no such file or directory")
        );
    }
}
