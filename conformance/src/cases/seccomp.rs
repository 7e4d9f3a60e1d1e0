//! config-linux.md "Seccomp": the filter is loaded, its actions and errno values
//! apply, and no filter is loaded when none is configured.

use super::Entry;
use crate::ensure_eq;
use crate::harness::{Ctx, R, skip};
use serde_json::json;

pub const CASES: &[Entry] = &[
    ("seccomp.errno-action", seccomp_errno),
    ("seccomp.default-errno-allowlist", seccomp_allowlist),
    ("seccomp.absent-means-none", seccomp_absent),
];

/// x86_64 system calls a runtime and the checker may make, less mkdir/mkdirat.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "arch_prctl",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "clone",
    "clone3",
    "close",
    "close_range",
    "connect",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "flock",
    "fork",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "futex",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresuid",
    "getrlimit",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getxattr",
    "inotify_add_watch",
    "inotify_init1",
    "ioctl",
    "ioprio_get",
    "kill",
    "lgetxattr",
    "listen",
    "lseek",
    "lstat",
    "madvise",
    "membarrier",
    "mincore",
    "mmap",
    "mprotect",
    "mremap",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pause",
    "personality",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "prlimit64",
    "pselect6",
    "pwrite64",
    "pwritev",
    "read",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmsg",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_yield",
    "select",
    "sendmsg",
    "sendto",
    "set_robust_list",
    "set_tid_address",
    "setgid",
    "setgroups",
    "setitimer",
    "setresgid",
    "setresuid",
    "setsid",
    "setsockopt",
    "setuid",
    "sigaltstack",
    "socket",
    "socketpair",
    "stat",
    "statfs",
    "statx",
    "sysinfo",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_settime",
    "tkill",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "vfork",
    "wait4",
    "waitid",
    "write",
    "writev",
];

fn seccomp_base(
    ctx: &mut Ctx,
    seccomp: serde_json::Value,
) -> Result<crate::bundle::Bundle, crate::harness::Fail> {
    let mut b = ctx.bundle()?;
    b.config["linux"]["seccomp"] = seccomp;
    b.mount(json!({ "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"] }));
    b.report(&["--mkdir", "/tmp/probe", "--open", "/dev/null"]);
    Ok(b)
}

fn seccomp_errno(ctx: &mut Ctx) -> R {
    let b = seccomp_base(
        ctx,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [ { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 } ]
        }),
    )?;
    let r = ctx.report(&b)?;
    ensure_eq!(r.str("seccomp"), "2", "Seccomp mode");
    ensure_eq!(
        r.probe("mkdir", "/tmp/probe").as_str().unwrap_or(""),
        "EPERM",
        "mkdir under the filter"
    );
    ensure_eq!(
        r.probe("open", "/dev/null").as_str().unwrap_or(""),
        "ok",
        "open (allowed)"
    );
    Ok(())
}

fn seccomp_allowlist(ctx: &mut Ctx) -> R {
    // A broad allowlist (what a runtime may still need after loading the filter,
    // and what the checker needs); mkdir and mkdirat fall to the default action.
    let b = seccomp_base(
        ctx,
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 13,
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [ { "names": ALLOWED, "action": "SCMP_ACT_ALLOW" } ]
        }),
    )?;
    let r = ctx.report(&b)?;
    ensure_eq!(r.str("seccomp"), "2", "Seccomp mode");
    ensure_eq!(
        r.probe("mkdir", "/tmp/probe").as_str().unwrap_or(""),
        "EACCES",
        "mkdir under the default action"
    );
    ensure_eq!(
        r.probe("open", "/dev/null").as_str().unwrap_or(""),
        "ok",
        "open (allowed)"
    );
    Ok(())
}

fn seccomp_absent(ctx: &mut Ctx) -> R {
    let own = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if own
        .lines()
        .any(|l| l.starts_with("Seccomp:") && !l.ends_with('0'))
    {
        return skip("the runner itself runs under seccomp");
    }
    let b = ctx.bundle()?;
    let r = ctx.report(&b)?;
    ensure_eq!(r.str("seccomp"), "0", "Seccomp mode without linux.seccomp");
    Ok(())
}
