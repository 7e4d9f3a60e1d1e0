//! Probes asked for on the command line: each takes a path and reports one value.

use crate::sys::errno_name;
use serde_json::{Value, json};
use std::ffi::CString;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// Runs the probe named by `flag` on `path`; None if the flag is unknown.
pub fn run(flag: &str, path: &str) -> Option<Value> {
    Some(match flag {
        "--stat" => stat(path),
        "--read" => match std::fs::read_to_string(path) {
            Ok(s) => json!(s),
            Err(e) => json!({ "error": errno_name(&e) }),
        },
        "--writable" => writable(path),
        "--ro" => read_only(path),
        "--open" => result(std::fs::File::open(path).map(drop)),
        "--open-w" => result(std::fs::OpenOptions::new().write(true).open(path).map(drop)),
        "--mkdir" => result(std::fs::create_dir(path)),
        _ => return None,
    })
}

fn result(r: std::io::Result<()>) -> Value {
    match r {
        Ok(()) => json!("ok"),
        Err(e) => json!(errno_name(&e)),
    }
}

/// access(2) with W_OK: "ok", or the errno (EROFS on a read-only mount).
fn writable(path: &str) -> Value {
    let Ok(c) = CString::new(path) else {
        return json!("EINVAL");
    };
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::access(c.as_ptr(), libc::W_OK) };
    if rc == 0 {
        json!("ok")
    } else {
        json!(errno_name(&std::io::Error::last_os_error()))
    }
}

/// Whether the mount holding `path` is read-only (statvfs ST_RDONLY).
fn read_only(path: &str) -> Value {
    let Ok(c) = CString::new(path) else {
        return json!("EINVAL");
    };
    // SAFETY: statvfs is plain old data; all-zero is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid path and `st` a valid, writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return json!(errno_name(&std::io::Error::last_os_error()));
    }
    json!(st.f_flag & libc::ST_RDONLY != 0)
}

/// lstat(2) of `path`: type, mode, owner, device numbers, link target.
fn stat(path: &str) -> Value {
    let md = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => return json!({ "error": errno_name(&e) }),
    };
    let ft = md.file_type();
    let kind = if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_char_device() {
        "char"
    } else if ft.is_block_device() {
        "block"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else {
        "file"
    };
    let rdev = md.rdev();
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    let link = std::fs::read_link(path)
        .map(|p| p.display().to_string())
        .ok();
    json!({
        "type": kind,
        "mode": md.mode() & 0o7777,
        "uid": md.uid(),
        "gid": md.gid(),
        "major": major,
        "minor": minor,
        "size": md.size(),
        "link": link,
    })
}
