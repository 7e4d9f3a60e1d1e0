//! Differential tests: the same probe, the same profile, runc's filter
//! (libseccomp + runc's ENOSYS patch) against ours, in identical busybox
//! containers. With `OCIRUN_BIN=/path/to/ocirun` the profile is also run
//! under that runtime and compared with runc.
//!
//! Each profile runs twice under runc: once with `linux.seccomp` set (runc
//! compiles and installs it) and once without, the probe installing our
//! compiled filter itself, so only the filters differ.

mod support;

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;
use support::{
    Case, FilterSource, Mode, assert_same, fixture_seccomp, have_runc, profile, run_in_container,
    try_run_in_container,
};

const X32_BIT: u32 = 0x4000_0000;
const BIG: u64 = 1 << 32;

fn compare(name: &str, spec: &LinuxSeccomp, cases: &[Case]) {
    if !have_runc() {
        eprintln!("runc is not installed: skipping the differential test {name}");
        return;
    }
    let filter = seccomp::compile(spec).expect("compile");
    let runc = Path::new("runc");
    let reference = run_in_container(runc, FilterSource::Runtime(spec), cases);
    let ours = run_in_container(runc, FilterSource::Probe(&filter), cases);
    if std::env::var_os("SECCOMP_DIFF_VERBOSE").is_some() {
        for (id, outcome) in &reference {
            eprintln!(
                "{name}: {id} runc={outcome} ours={}",
                ours.get(id).map_or("-", |o| o.as_str())
            );
        }
    }
    assert_same("runc", &reference, "ocirun-seccomp", &ours, cases);
    let ocirun = std::env::var_os("OCIRUN_BIN").map(PathBuf::from);
    // CI must compare the runtime too, not just the compiler.
    assert!(
        ocirun.is_some() || std::env::var_os("CI").is_none(),
        "CI is set but OCIRUN_BIN is not: the profile would not run under ocirun"
    );
    if let Some(ocirun) = ocirun {
        let under_ocirun = run_in_container(&ocirun, FilterSource::Runtime(spec), cases);
        assert_same("runc", &reference, "ocirun", &under_ocirun, cases);
    }
}

/// Calls every ABI makes in the Docker profile's interesting spots.
fn docker_cases() -> Vec<Case> {
    let mut cases = vec![
        Case::named(Mode::Sys, "getppid", &[]),
        Case::named(Mode::Sys, "mount", &[]),
        Case::named(Mode::Sys, "unshare", &[0x1000_0000]),
        Case::named(Mode::Sys, "clone3", &[]),
        Case::named(Mode::Fork, "clone", &[17]),
        Case::named(Mode::Fork, "clone", &[0x1000_0000 | 17]),
        Case::named(Mode::Fork, "clone", &[0x2000_0000 | 17]),
        Case::named(Mode::Sys, "bpf", &[]),
        Case::named(Mode::Sys, "keyctl", &[]),
        Case::named(Mode::Sys, "socket", &[1, 1, 0]),
        Case::named(Mode::Sys, "ptrace", &[]),
        Case::number(Mode::Sys, 400, &[], "hole"),
        Case::number(Mode::Sys, 1000, &[], "beyond"),
        Case::number(Mode::Sys, u32::MAX, &[], "minus-one"),
        Case::number(Mode::Sys, 0x8000_0000, &[], "bit31"),
        Case::named(Mode::I386, "getppid", &[]),
        Case::named(Mode::I386, "mount", &[]),
        Case::named(Mode::I386, "socketcall", &[1, 0]),
        Case::named(Mode::I386, "socket", &[1, 1, 0]),
        Case::named(Mode::I386, "clone3", &[]),
        Case::number(Mode::I386, 1000, &[], "beyond"),
        Case::named(Mode::X32, "getppid", &[]),
        Case::named(Mode::X32, "mount", &[]),
        Case::number(Mode::X32, X32_BIT | 1000, &[], "beyond"),
    ];
    for value in [0, 8, 0x20000, 0x20008, 0xffff_ffff, BIG | 0xffff_ffff, 4] {
        cases.push(Case::named(Mode::Sys, "personality", &[value]));
        cases.push(Case::named(Mode::I386, "personality", &[value]));
    }
    cases
}

#[test]
fn docker_default_profile_matches_runc() {
    let spec = fixture_seccomp("docker-20.10-default.json").expect("docker profile");
    compare("docker default", &spec, &docker_cases());
}

#[test]
fn docker_rich_profile_matches_runc() {
    let spec = fixture_seccomp("docker-20.10-rich.json").expect("docker rich profile");
    compare("docker rich", &spec, &docker_cases());
}

#[test]
fn containerd_default_profile_matches_runc() {
    let spec = fixture_seccomp("ctr-1.6-seccomp.json").expect("containerd profile");
    compare("containerd default", &spec, &docker_cases());
}

/// Every operator with 64-bit values, every action, libseccomp's rule
/// merging, the i386 socketcall path and x32's 32-bit compares.
const OPERATORS_PROFILE: &str = r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
  "syscalls": [
    {"names":["getuid"],"action":"SCMP_ACT_ERRNO","errnoRet":10,"args":[{"index":0,"value":4294967301,"op":"SCMP_CMP_EQ"}]},
    {"names":["geteuid"],"action":"SCMP_ACT_ERRNO","errnoRet":11,"args":[{"index":1,"value":4294967301,"op":"SCMP_CMP_NE"}]},
    {"names":["getgid"],"action":"SCMP_ACT_ERRNO","errnoRet":12,"args":[{"index":2,"value":4294967296,"op":"SCMP_CMP_GT"}]},
    {"names":["getegid"],"action":"SCMP_ACT_ERRNO","errnoRet":13,"args":[{"index":3,"value":4294967296,"op":"SCMP_CMP_GE"}]},
    {"names":["getpgrp"],"action":"SCMP_ACT_ERRNO","errnoRet":14,"args":[{"index":4,"value":4294967296,"op":"SCMP_CMP_LT"}]},
    {"names":["gettid"],"action":"SCMP_ACT_ERRNO","errnoRet":15,"args":[{"index":5,"value":4294967296,"op":"SCMP_CMP_LE"}]},
    {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":16,"args":[{"index":0,"value":1095216660735,"valueTwo":78383153152,"op":"SCMP_CMP_MASKED_EQ"}]},
    {"names":["sched_yield"],"action":"SCMP_ACT_ERRNO","errnoRet":17,"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":2,"value":3,"op":"SCMP_CMP_GE"}]},
    {"names":["umask"],"action":"SCMP_ACT_ERRNO","errnoRet":18,"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]},
    {"names":["getresuid"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":5,"op":"SCMP_CMP_EQ"}]},
    {"names":["getresgid"],"action":"SCMP_ACT_ERRNO","errnoRet":20,"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
    {"names":["getresgid"],"action":"SCMP_ACT_ERRNO","errnoRet":21},
    {"names":["getcwd"],"action":"SCMP_ACT_ALLOW"},
    {"names":["getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":22,"args":[{"index":1,"value":16,"op":"SCMP_CMP_EQ"}]},
    {"names":["sched_get_priority_max"],"action":"SCMP_ACT_ERRNO","errnoRet":23,"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
    {"names":["sched_get_priority_max"],"action":"SCMP_ACT_ERRNO","errnoRet":24,"args":[{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]},
    {"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":25},
    {"names":["bind"],"action":"SCMP_ACT_ERRNO","errnoRet":26,"args":[{"index":0,"value":3,"op":"SCMP_CMP_EQ"}]},
    {"names":["getpgid"],"action":"SCMP_ACT_KILL_PROCESS","args":[{"index":0,"value":99,"op":"SCMP_CMP_EQ"}]},
    {"names":["getsid"],"action":"SCMP_ACT_TRAP","args":[{"index":0,"value":99,"op":"SCMP_CMP_EQ"}]},
    {"names":["getpriority"],"action":"SCMP_ACT_KILL","args":[{"index":0,"value":99,"op":"SCMP_CMP_EQ"}]},
    {"names":["sched_getscheduler"],"action":"SCMP_ACT_TRACE","errnoRet":5,"args":[{"index":0,"value":99,"op":"SCMP_CMP_EQ"}]},
    {"names":["sched_getparam"],"action":"SCMP_ACT_LOG","args":[{"index":0,"value":99,"op":"SCMP_CMP_EQ"}]},
    {"names":["no_such_syscall"],"action":"SCMP_ACT_KILL"}
  ]
}"#;

fn operator_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut at = |name: &str, index: usize, values: &[u64]| {
        for &value in values {
            let mut args = [0u64; 6];
            args[index] = value;
            for mode in [Mode::Sys, Mode::I386, Mode::X32] {
                cases.push(Case::named(mode, name, &args));
            }
        }
    };
    at("getuid", 0, &[5, BIG + 5, 2 * BIG + 5]);
    at("geteuid", 1, &[5, BIG + 5, 6]);
    at("getgid", 2, &[0, 1, BIG, BIG + 1, 2 * BIG]);
    at("getegid", 3, &[0, BIG - 1, BIG, BIG + 1]);
    at("getpgrp", 4, &[0, BIG - 1, BIG, BIG + 1]);
    at("gettid", 5, &[0, BIG, BIG + 1, 2 * BIG]);
    at(
        "getpid",
        0,
        &[0x12_3456_7800, 0x12_3456_7801, 0x13_0000_0000, 0x7800],
    );
    at("umask", 0, &[1, 2, 3]);
    at("getresuid", 0, &[5, 6]);
    at("getresgid", 0, &[1, 2]);
    at("getpgid", 0, &[99, 98]);
    at("getsid", 0, &[99, 98]);
    at("getpriority", 0, &[99, 98]);
    at("sched_getscheduler", 0, &[99, 98]);
    at("sched_getparam", 0, &[99, 98]);
    for mode in [Mode::Sys, Mode::I386, Mode::X32] {
        cases.push(Case::named(mode, "sched_yield", &[1, 0, 3]));
        cases.push(Case::named(mode, "sched_yield", &[1, 0, 2]));
        cases.push(Case::named(mode, "sched_yield", &[2, 0, 3]));
        cases.push(Case::named(mode, "getcwd", &[0, 16]));
        cases.push(Case::named(mode, "getcwd", &[0, 17]));
        cases.push(Case::named(mode, "sched_get_priority_max", &[1, 2]));
        cases.push(Case::named(mode, "sched_get_priority_max", &[1, 0]));
        cases.push(Case::named(mode, "sched_get_priority_max", &[0, 2]));
        cases.push(Case::named(mode, "socket", &[1, 1, 0]));
        cases.push(Case::named(mode, "bind", &[3, 0, 0]));
        cases.push(Case::named(mode, "bind", &[4, 0, 0]));
    }
    for call in [1, 2, 3] {
        cases.push(Case::named(Mode::I386, "socketcall", &[call, 0]));
    }
    cases
}

#[test]
fn operators_actions_and_rule_merging_match_runc() {
    compare("operators", &profile(OPERATORS_PROFILE), &operator_cases());
}

#[test]
fn architecture_lists_match_runc() {
    let cases = vec![
        Case::named(Mode::Sys, "getppid", &[]),
        Case::named(Mode::Sys, "getpid", &[]),
        Case::named(Mode::I386, "getppid", &[]),
        Case::named(Mode::I386, "getpid", &[]),
        Case::named(Mode::X32, "getppid", &[]),
        Case::named(Mode::X32, "getpid", &[]),
        Case::number(Mode::Sys, u32::MAX, &[], "minus-one"),
        Case::number(Mode::Sys, 2000, &[], "beyond"),
    ];
    let rule = r#""syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":30}]"#;
    for arches in [
        "",
        r#""architectures":["SCMP_ARCH_X86_64"],"#,
        r#""architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],"#,
        r#""architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X32"],"#,
        r#""architectures":["SCMP_ARCH_X86","SCMP_ARCH_AARCH64","SCMP_ARCH_ARM"],"#,
    ] {
        let json = format!(r#"{{"defaultAction":"SCMP_ACT_ALLOW",{arches}{rule}}}"#);
        compare(&json, &profile(&json), &cases);
    }
}

/// Rules libseccomp refuses (EEXIST) make runc fail; we refuse them too.
#[test]
fn conflicting_rules_are_refused_like_runc() {
    if !have_runc() {
        return;
    }
    let spec = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":1,"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
            {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":2,"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    let err = seccomp::compile(&spec).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("linux.seccomp.syscalls[1]: syscall getpid:"),
        "{err}"
    );
    let cases = [Case::named(Mode::Sys, "getpid", &[1])];
    let runc = try_run_in_container(Path::new("runc"), FilterSource::Runtime(&spec), &cases);
    assert!(runc.is_err(), "runc accepted conflicting rules: {runc:?}");
}
