//! Regression tests for the runtime escapes of runc and other runtimes (DESIGN.md, "Security
//! rules"). Each test attempts the attack from inside a real container (or with a rootfs and
//! config an attacker controls) and asserts what must not happen on the host: a host file
//! created, changed or mounted over, the runtime's executable overwritten, a host fd or
//! directory reachable, an unrelated process signalled.
//!
//! Every attack aims at files in the test's own temp directory (or at the container's own
//! namespaces), never at the real host, so a test that finds a hole does no damage. Races run a
//! bounded number of attempts and assert that none escaped; no assertion depends on timing.
//!
//! Needs root and busybox-static, like the lifecycle tests.

mod support;

#[path = "security/console.rs"]
mod console;
#[path = "security/swap.rs"]
mod swap;
#[path = "security/world.rs"]
mod world;

/// CVE-2025-31133, CVE-2025-52565: /dev/null for masks, /dev/console from the pty.
#[path = "security/devices.rs"]
mod devices;
/// CVE-2019-5736: the runtime executable overwritten from inside.
#[path = "security/exe.rs"]
mod exe;
/// CVE-2024-21626: host fds in the container, cwd through /proc/self/fd.
#[path = "security/fds.rs"]
mod fds;
/// CVE-2021-30465, CVE-2024-45310: mounts and creations through symlinks, static and raced.
#[path = "security/mounts.rs"]
mod mounts;
/// Pid reuse: kill and delete signal only the container's own process.
#[path = "security/pids.rs"]
mod pids;
/// CVE-2019-16884, CVE-2023-27561, CVE-2025-52881: fake /proc and /sys, procfs writes.
#[path = "security/procfs.rs"]
mod procfs;
