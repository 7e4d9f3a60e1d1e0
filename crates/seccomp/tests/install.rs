//! Filters installed for real, always in a forked child (never in the test
//! process), with the outcome of syscalls checked there.

mod support;

use oci_spec::runtime::LinuxSeccomp;
use seccomp::{Error, Filter, compile, install};
use support::{fixture_seccomp, profile};

/// How a forked child ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Exited(i32),
    Signaled(i32),
}

/// Runs `body` in a forked child and reports how it ended. The child only
/// makes syscalls and exits, so forking from the multi-threaded test harness is safe.
fn in_child(body: impl FnOnce() -> i32) -> Ended {
    // SAFETY: fork in a test; the child runs `body` and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        let code = body();
        // SAFETY: leave the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    if libc::WIFSIGNALED(status) {
        Ended::Signaled(libc::WTERMSIG(status))
    } else {
        Ended::Exited(libc::WEXITSTATUS(status))
    }
}

fn set_no_new_privs() {
    // SAFETY: prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(rc, 0);
}

/// The errno of a raw syscall (0 when it succeeded).
fn errno_of(nr: libc::c_long, args: [u64; 3]) -> i32 {
    // SAFETY: raw syscalls with harmless arguments chosen by the tests.
    let rc = unsafe { libc::syscall(nr, args[0], args[1], args[2]) };
    if rc < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
    } else {
        0
    }
}

/// Installs `filter` with no_new_privs and checks `(syscall, args, errno)` triples;
/// exits with 100 + the index of the first mismatch.
fn expect_errnos(filter: &Filter, checks: &[(libc::c_long, [u64; 3], i32)]) -> Ended {
    in_child(|| {
        set_no_new_privs();
        if install(filter).is_err() {
            return 99;
        }
        for (index, (nr, args, errno)) in checks.iter().enumerate() {
            if errno_of(*nr, *args) != *errno {
                return 100 + index as i32;
            }
        }
        0
    })
}

#[test]
fn docker_default_profile_compiles_and_loads() {
    let filter = compile(&fixture_seccomp("docker-20.10-default.json").unwrap()).unwrap();
    assert!(!filter.uses_notify());
    let ended = expect_errnos(
        &filter,
        &[
            (libc::SYS_getppid, [0; 3], 0),
            (libc::SYS_mount, [0; 3], libc::EPERM),
            (libc::SYS_clone3, [0; 3], libc::ENOSYS),
            (libc::SYS_personality, [0xffff_ffff, 0, 0], 0),
            (libc::SYS_personality, [4, 0, 0], libc::EPERM),
            (
                libc::SYS_unshare,
                [libc::CLONE_NEWNS as u64, 0, 0],
                libc::EPERM,
            ),
            (1000, [0; 3], libc::ENOSYS),
        ],
    );
    assert_eq!(ended, Ended::Exited(0));
}

#[test]
fn docker_rich_profile_compiles_and_loads() {
    let filter = compile(&fixture_seccomp("docker-20.10-rich.json").unwrap()).unwrap();
    let ended = expect_errnos(
        &filter,
        &[
            (libc::SYS_getppid, [0; 3], 0),
            (libc::SYS_kexec_load, [0; 3], libc::EPERM),
        ],
    );
    assert_eq!(ended, Ended::Exited(0));
}

#[test]
fn containerd_default_profile_compiles_and_loads() {
    // `ctr run` without --seccomp writes no linux.seccomp; with --seccomp it
    // writes containerd's default profile (captured in the project's fixtures/).
    assert!(fixture_seccomp("ctr-1.6-default.json").is_none());
    let filter = compile(&fixture_seccomp("ctr-1.6-seccomp.json").unwrap()).unwrap();
    let ended = expect_errnos(
        &filter,
        &[
            (libc::SYS_getppid, [0; 3], 0),
            (libc::SYS_mount, [0; 3], libc::EPERM),
            (
                libc::SYS_unshare,
                [libc::CLONE_NEWNS as u64, 0, 0],
                libc::EPERM,
            ),
            (1000, [0; 3], libc::ENOSYS),
        ],
    );
    assert_eq!(ended, Ended::Exited(0));
}

#[test]
fn aarch64_filters_compile() {
    let spec = fixture_seccomp("docker-20.10-default.json").unwrap();
    let filter = seccomp::compile_for(&spec, seccomp::TargetArch::Aarch64).unwrap();
    assert_eq!(filter.arch(), seccomp::TargetArch::Aarch64);
    assert!(filter.len() > 10);
}

#[test]
fn a_serialized_filter_installs_the_same() {
    let filter = compile(&fixture_seccomp("docker-20.10-default.json").unwrap()).unwrap();
    let back = Filter::from_bytes(&filter.to_bytes()).unwrap();
    assert_eq!(back, Filter::from_bytes(&filter.to_bytes()).unwrap());
    let ended = expect_errnos(
        &back,
        &[
            (libc::SYS_mount, [0; 3], libc::EPERM),
            (libc::SYS_getppid, [0; 3], 0),
        ],
    );
    assert_eq!(ended, Ended::Exited(0));
}

fn killing(action: &str) -> Filter {
    compile(&profile(&format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["getpgid"],"action":"{action}"}}]}}"#
    )))
    .unwrap()
}

#[test]
fn kill_and_trap_actions_end_the_process_with_sigsys() {
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
    ] {
        let filter = killing(action);
        let ended = expect_errnos(&filter, &[(libc::SYS_getpgid, [0; 3], 0)]);
        assert_eq!(ended, Ended::Signaled(libc::SIGSYS), "{action}");
    }
}

#[test]
fn log_trace_and_errno_actions() {
    let filter = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["getpgid"],"action":"SCMP_ACT_LOG"},
            {"names":["getsid"],"action":"SCMP_ACT_TRACE"},
            {"names":["getpriority"],"action":"SCMP_ACT_ERRNO"},
            {"names":["sched_getscheduler"],"action":"SCMP_ACT_ERRNO","errnoRet":77}]}"#,
    ))
    .unwrap();
    let ended = expect_errnos(
        &filter,
        &[
            (libc::SYS_getpgid, [0; 3], 0),
            // No tracer: TRACE fails the syscall with ENOSYS.
            (libc::SYS_getsid, [0; 3], libc::ENOSYS),
            (libc::SYS_getpriority, [0; 3], libc::EPERM),
            (libc::SYS_sched_getscheduler, [0; 3], 77),
        ],
    );
    assert_eq!(ended, Ended::Exited(0));
}

#[test]
fn default_errno_ret_is_used() {
    let filter = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":95,"syscalls":[
            {"names":["getppid","exit_group","exit"],"action":"SCMP_ACT_ALLOW"}]}"#,
    ))
    .unwrap();
    let ended = expect_errnos(
        &filter,
        &[
            (libc::SYS_getppid, [0; 3], 0),
            (libc::SYS_getpgid, [0; 3], 95),
        ],
    );
    assert_eq!(ended, Ended::Exited(0));
}

fn with_flags(flags: &str) -> LinuxSeccomp {
    profile(&format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","flags":[{flags}],"syscalls":[
            {{"names":["getpgid"],"action":"SCMP_ACT_ERRNO","errnoRet":33}}]}}"#
    ))
}

#[test]
fn filter_flags_install() {
    for flags in [
        r#""SECCOMP_FILTER_FLAG_TSYNC""#,
        r#""SECCOMP_FILTER_FLAG_LOG""#,
        r#""SECCOMP_FILTER_FLAG_SPEC_ALLOW""#,
        r#""SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV""#,
        r#""SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW""#,
    ] {
        let filter = compile(&with_flags(flags)).unwrap();
        let ended = expect_errnos(&filter, &[(libc::SYS_getpgid, [0; 3], 33)]);
        assert_eq!(ended, Ended::Exited(0), "flags {flags}");
    }
}

#[test]
fn without_no_new_privs_cap_sys_admin_is_required() {
    let filter = compile(&with_flags("")).unwrap();
    // Root keeps CAP_SYS_ADMIN: no no_new_privs needed.
    let ended = in_child(|| match install(&filter) {
        Ok(None) => errno_of(libc::SYS_getpgid, [0; 3]),
        _ => 99,
    });
    assert_eq!(ended, Ended::Exited(33));
    // After dropping every capability (setuid to nobody), the error says why.
    let ended = in_child(|| {
        // SAFETY: setuid in the child only.
        if unsafe { libc::setuid(65534) } != 0 {
            return 98;
        }
        match install(&filter) {
            Err(Error::NeedsNoNewPrivsOrCapSysAdmin) => 0,
            Err(_) => 97,
            Ok(_) => 96,
        }
    });
    assert_eq!(ended, Ended::Exited(0));
    let message = Error::NeedsNoNewPrivsOrCapSysAdmin.to_string();
    assert!(
        message.contains("no_new_privs") && message.contains("CAP_SYS_ADMIN"),
        "{message}"
    );
}

#[test]
fn features_are_what_the_kernel_has() {
    let features = seccomp::features();
    assert_eq!(features.enabled(), &Some(true));
    let actions = features.actions().as_ref().unwrap();
    // Linux 6.x implements every action.
    assert_eq!(actions.len(), 9, "{actions:?}");
    assert_eq!(features.operators().as_ref().unwrap().len(), 7);
    let archs: Vec<String> = features
        .archs()
        .as_ref()
        .unwrap()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(
        archs,
        ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    );
    assert_eq!(features.known_flags().as_ref().unwrap().len(), 4);
    assert_eq!(features.supported_flags().as_ref().unwrap().len(), 4);
}
