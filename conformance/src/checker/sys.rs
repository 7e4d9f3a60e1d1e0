//! The few things the checker has to ask the kernel for directly.

use serde_json::{Map, Value, json};

/// Node name and NIS domain name from uname(2).
pub fn uts_names() -> (String, String) {
    // SAFETY: utsname is plain old data; all-zero is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return (String::new(), String::new());
    }
    (field(&u.nodename), field(&u.domainname))
}

fn field(raw: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

const RLIMITS: &[(&str, i32)] = &[
    ("RLIMIT_CPU", 0),
    ("RLIMIT_FSIZE", 1),
    ("RLIMIT_DATA", 2),
    ("RLIMIT_STACK", 3),
    ("RLIMIT_CORE", 4),
    ("RLIMIT_RSS", 5),
    ("RLIMIT_NPROC", 6),
    ("RLIMIT_NOFILE", 7),
    ("RLIMIT_MEMLOCK", 8),
    ("RLIMIT_AS", 9),
    ("RLIMIT_LOCKS", 10),
    ("RLIMIT_SIGPENDING", 11),
    ("RLIMIT_MSGQUEUE", 12),
    ("RLIMIT_NICE", 13),
    ("RLIMIT_RTPRIO", 14),
    ("RLIMIT_RTTIME", 15),
];

/// Every rlimit as `[soft, hard]`; infinity is u64::MAX.
pub fn rlimits() -> Value {
    let mut m = Map::new();
    for &(name, res) in RLIMITS {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `lim` is a valid, writable rlimit; a null new limit only reads.
        let rc = unsafe { libc::prlimit(0, res as _, std::ptr::null(), &mut lim) };
        if rc == 0 {
            m.insert(name.into(), json!([lim.rlim_cur, lim.rlim_max]));
        }
    }
    Value::Object(m)
}

/// Whether fds 0-2 are terminals, the window size of fd 0 and its name.
pub fn tty() -> Value {
    let isatty = |fd: i32| {
        // SAFETY: isatty only inspects the fd number.
        unsafe { libc::isatty(fd) == 1 }
    };
    // SAFETY: winsize is plain old data; all-zero is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into `ws`, which is valid and writable.
    let rc = unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) };
    let winsize = if rc == 0 {
        json!([ws.ws_row, ws.ws_col])
    } else {
        Value::Null
    };
    json!({
        "isatty": [isatty(0), isatty(1), isatty(2)],
        "winsize": winsize,
    })
}

/// The I/O priority of this process as `[class, level]`.
pub fn ioprio() -> Value {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    // SAFETY: ioprio_get takes two integers and touches no memory.
    let rc = unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0 as libc::c_long) };
    if rc < 0 {
        return Value::Null;
    }
    json!([rc >> 13, rc & 0xff])
}

/// The errno name of the last failure.
pub fn errno_name(e: &std::io::Error) -> String {
    let n = e.raw_os_error().unwrap_or(0);
    let name = match n {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EACCES => "EACCES",
        libc::EEXIST => "EEXIST",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EROFS => "EROFS",
        libc::ENXIO => "ENXIO",
        libc::ENODEV => "ENODEV",
        libc::EBUSY => "EBUSY",
        _ => return format!("errno {n}"),
    };
    name.to_string()
}
