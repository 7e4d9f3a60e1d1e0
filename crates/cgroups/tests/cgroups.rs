//! The crate on real cgroups of the machine it runs on. Every test makes its own cgroup under a
//! unique name and removes it, also when it fails. Run as root. On a hybrid/v1 host the v2-only
//! tests print "SKIP ..." to stderr; `tools/cgv2-vm` runs this same binary in a pure v2 guest.

mod common;

use std::path::Path;

use cgroups::{FreezerState, Layout, Manager};
use common::{TestCgroup, Waiting, in_cgroup, layout, skip};
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroup, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxNetworkBuilder, LinuxPidsBuilder,
    LinuxResources, LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
};

fn ok<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn is_v2() -> bool {
    layout() == Layout::V2
}

#[test]
fn create_join_list_destroy() {
    let cg = TestCgroup::new("join");
    let mut child = Waiting::spawn("exec sleep 1000");
    ok(cg.m.add_process(child.pid()), "add_process");
    child.go();
    for p in cg.m.paths() {
        assert!(p.is_dir(), "{} missing", p.display());
        assert!(in_cgroup(child.pid(), p), "pid not in {}", p.display());
    }
    assert_eq!(ok(cg.m.pids(), "pids"), vec![child.pid()]);
    let paths: Vec<_> = cg.m.paths().map(Path::to_path_buf).collect();
    ok(cg.m.destroy(), "destroy");
    for p in &paths {
        assert!(!p.exists(), "{} left behind", p.display());
        // The parent this test's create() made is gone too.
        assert!(
            !p.parent().is_some_and(Path::exists),
            "parent of {} left",
            p.display()
        );
    }
    let (code, _, _) = child.finish();
    assert_eq!(code, -libc::SIGKILL, "destroy kills what is left");
    // Destroying again is fine (already gone).
    ok(cg.m.destroy(), "second destroy");
}

#[test]
fn state_round_trip_rebuilds_manager() {
    let cg = TestCgroup::new("serde");
    let text = ok(serde_json::to_string(&cg.m), "serialize");
    let back: Manager = ok(serde_json::from_str(&text), "deserialize");
    assert_eq!(back, cg.m);
    assert_eq!(back.path(), cg.m.path());
}

#[test]
fn empty_cgroups_path_is_relative_container_id() {
    let id = format!("ocirun-test-rel-{}", std::process::id());
    let m = ok(Manager::new(None, &id, false), "manager");
    let own = ok(std::fs::read_to_string("/proc/self/cgroup"), "read");
    for p in m.paths() {
        assert!(p.ends_with(&id), "{}", p.display());
    }
    // The memory cgroup of this process is the parent of the container's (relative path).
    if let Some(mem) = m.path_of("memory") {
        let line = own
            .lines()
            .find(|l| {
                let c = l.split(':').nth(1).unwrap_or("");
                if is_v2() {
                    c.is_empty()
                } else {
                    c.split(',').any(|x| x == "memory")
                }
            })
            .unwrap_or("");
        let mine = line
            .splitn(3, ':')
            .nth(2)
            .unwrap_or("/")
            .trim_start_matches('/');
        let want = Path::new(if is_v2() {
            "/sys/fs/cgroup"
        } else {
            "/sys/fs/cgroup/memory"
        })
        .join(mine)
        .join(&id);
        assert_eq!(mem, want.as_path());
    }
    // A relative path cannot climb out.
    let m = ok(Manager::new(Some("../../x"), "id", false), "manager");
    assert!(m.paths().all(|p| !p.to_string_lossy().contains("..")));
}

#[test]
fn pids_limit_stops_forks() {
    let cg = TestCgroup::new("pids");
    let res = ok(
        LinuxResourcesBuilder::default()
            .pids(ok(LinuxPidsBuilder::default().limit(4).build(), "pids"))
            .build(),
        "res",
    );
    ok(cg.m.apply(&res), "apply");
    assert_eq!(cg.read("pids", "pids.max"), "4");
    // sh plus 3 sleeps fit; the 4th fork must fail.
    let child = Waiting::spawn(
        "i=0; while [ $i -lt 8 ]; do sleep 1000 >/dev/null 2>&1 & i=$((i+1)); done; echo spawned",
    );
    ok(cg.m.add_process(child.pid()), "add_process");
    let pid = child.pid();
    let (code, out, err) = child.finish();
    assert!(
        code != 0 || !err.is_empty(),
        "forks went through: {out} {err}"
    );
    assert!(
        err.to_lowercase().contains("fork") || err.to_lowercase().contains("resource"),
        "stderr: {err}"
    );
    let _ = pid;
    let stats = ok(cg.m.stats(), "stats");
    assert_eq!(stats.pids.limit, 4);
    assert!(stats.pids.current <= 4 && stats.pids.current >= 1);
    // The sleeps are left behind on purpose: destroy (in the guard) must kill them.
    assert!(ok(cg.m.pids(), "pids").len() >= 3);
}

#[test]
fn memory_limit_oom_kills_and_notifies() {
    let cg = TestCgroup::new("oom");
    let res = ok(
        LinuxResourcesBuilder::default()
            .memory(ok(
                LinuxMemoryBuilder::default()
                    .limit(32 << 20)
                    .swap(32 << 20)
                    .build(),
                "mem",
            ))
            .build(),
        "res",
    );
    ok(cg.m.apply(&res), "apply");
    if is_v2() {
        assert_eq!(cg.read("memory", "memory.max"), (32u64 << 20).to_string());
        if cg.file("memory", "memory.swap.max").exists() {
            assert_eq!(cg.read("memory", "memory.swap.max"), "0");
        }
    } else {
        assert_eq!(
            cg.read("memory", "memory.limit_in_bytes"),
            (32u64 << 20).to_string()
        );
        if cg.file("memory", "memory.memsw.limit_in_bytes").exists() {
            assert_eq!(
                cg.read("memory", "memory.memsw.limit_in_bytes"),
                (32u64 << 20).to_string()
            );
        }
    }
    let mut events = ok(cg.m.oom_events(), "oom_events");
    // The shell keeps the command's output in memory: 200 MB against a 32 MB limit.
    let child = Waiting::spawn("a=$(head -c 200000000 /dev/zero | tr '\\0' a); echo end $?");
    ok(cg.m.add_process(child.pid()), "add_process");
    let (_, out, _) = child.finish();
    assert!(
        !out.contains("end 0"),
        "the allocation was not stopped: {out}"
    );
    // The OOM already happened; poll only bounds a broken notifier, it times nothing.
    let mut pfd = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&events)),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, 60_000) };
    assert_eq!(n, 1, "no OOM notification");
    let got = ok(events.take(), "take");
    assert!(got.is_some_and(|n| n >= 1), "{got:?}");
    let stats = ok(cg.m.stats(), "stats");
    assert_eq!(stats.memory.usage.limit, 32 << 20);
}

#[test]
fn memory_fields_and_update_ordering() {
    let cg = TestCgroup::new("memupd");
    let v2 = is_v2();
    let mut mem = LinuxMemoryBuilder::default()
        .limit(64 << 20)
        .reservation(16 << 20);
    if !v2 {
        mem = mem
            .swappiness(10u64)
            .kernel_tcp(8 << 20)
            .disable_oom_killer(true);
    }
    let has_swap = if v2 {
        cg.file("memory", "memory.swap.max").exists()
    } else {
        cg.file("memory", "memory.memsw.limit_in_bytes").exists()
    };
    if has_swap {
        mem = mem.swap(128 << 20);
    }
    let res = ok(
        LinuxResourcesBuilder::default()
            .memory(ok(mem.build(), "mem"))
            .build(),
        "res",
    );
    ok(cg.m.apply(&res), "apply");
    if v2 {
        assert_eq!(cg.read("memory", "memory.max"), (64u64 << 20).to_string());
        assert_eq!(cg.read("memory", "memory.low"), (16u64 << 20).to_string());
        if has_swap {
            // runc's v2 meaning: swap.max = (memory+swap) - memory.
            assert_eq!(
                cg.read("memory", "memory.swap.max"),
                (64u64 << 20).to_string()
            );
        }
    } else {
        assert_eq!(
            cg.read("memory", "memory.soft_limit_in_bytes"),
            (16u64 << 20).to_string()
        );
        assert_eq!(cg.read("memory", "memory.swappiness"), "10");
        assert_eq!(
            cg.read("memory", "memory.kmem.tcp.limit_in_bytes"),
            (8u64 << 20).to_string()
        );
        assert!(
            cg.read("memory", "memory.oom_control")
                .contains("oom_kill_disable 1")
        );
    }
    // Raising both needs memsw first on v1, lowering both needs the limit first.
    for (limit, swap) in [(256u64 << 20, 512u64 << 20), (48 << 20, 96 << 20)] {
        let mut mem = LinuxMemoryBuilder::default().limit(limit as i64);
        if has_swap {
            mem = mem.swap(swap as i64);
        }
        let res = ok(
            LinuxResourcesBuilder::default()
                .memory(ok(mem.build(), "mem"))
                .build(),
            "res",
        );
        ok(cg.m.update(&res), "update");
        let file = if v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        assert_eq!(cg.read("memory", file), limit.to_string());
    }
    // Unlimited.
    let res = ok(
        LinuxResourcesBuilder::default()
            .memory(ok(LinuxMemoryBuilder::default().limit(-1).build(), "mem"))
            .build(),
        "res",
    );
    ok(cg.m.update(&res), "update unlimited");
    if v2 {
        assert_eq!(cg.read("memory", "memory.max"), "max");
    }
    // checkBeforeUpdate refuses a limit below the usage of a process that ran inside.
    // The shell keeps 4 MB it allocated inside the cgroup, then waits.
    let mut child =
        Waiting::spawn("a=$(head -c 4000000 /dev/zero | tr '\\0' a); echo ready; read _x");
    ok(cg.m.add_process(child.pid()), "add");
    assert_eq!(child.go_and_read_line(), "ready");
    let usage = ok(cg.m.stats(), "stats").memory.usage.usage;
    if usage > 4096 {
        let res = ok(
            LinuxResourcesBuilder::default()
                .memory(ok(
                    LinuxMemoryBuilder::default()
                        .limit(4096)
                        .check_before_update(true)
                        .build(),
                    "mem",
                ))
                .build(),
            "res",
        );
        let err =
            cg.m.update(&res)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(err.contains("below current usage"), "{err}");
    } else {
        skip(
            "memory_fields_and_update_ordering",
            "no usage charged to check checkBeforeUpdate",
        );
    }
}

#[test]
fn cpu_fields() {
    let cg = TestCgroup::new("cpu");
    let v2 = is_v2();
    let cpu = ok(
        LinuxCpuBuilder::default()
            .shares(512u64)
            .quota(50_000)
            .period(100_000u64)
            .burst(1000u64)
            .idle(0)
            .cpus("0")
            .mems("0")
            .build(),
        "cpu",
    );
    let res = ok(LinuxResourcesBuilder::default().cpu(cpu).build(), "res");
    ok(cg.m.apply(&res), "apply");
    if v2 {
        assert_eq!(
            cg.read("cpu", "cpu.weight"),
            cgroups::shares_to_weight(512).to_string()
        );
        assert_eq!(cg.read("cpu", "cpu.max"), "50000 100000");
        assert_eq!(cg.read("cpu", "cpu.max.burst"), "1000");
        assert_eq!(cg.read("cpu", "cpu.idle"), "0");
    } else {
        assert_eq!(cg.read("cpu", "cpu.shares"), "512");
        assert_eq!(cg.read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(cg.read("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(cg.read("cpu", "cpu.cfs_burst_us"), "1000");
    }
    assert_eq!(cg.read("cpuset", "cpuset.cpus"), "0");
    assert_eq!(cg.read("cpuset", "cpuset.mems"), "0");
    // A joined process works with the cpuset (v1: inherited cpus/mems made it joinable).
    let child = Waiting::spawn("echo ran");
    ok(cg.m.add_process(child.pid()), "add");
    let (code, out, _) = child.finish();
    assert_eq!((code, out.trim()), (0, "ran"));
    // Out-of-range shares are reported, not silently clamped.
    let res = ok(
        LinuxResourcesBuilder::default()
            .cpu(ok(
                LinuxCpuBuilder::default().shares(1u64 << 30).build(),
                "cpu",
            ))
            .build(),
        "res",
    );
    if !v2 {
        let err =
            cg.m.update(&res)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(err.contains("cpu.shares"), "{err}");
    }
    let stats = ok(cg.m.stats(), "stats");
    assert_eq!(stats.cpuset.cpus, vec![0]);
}

#[test]
fn kernel_rejections_name_file_and_value() {
    let cg = TestCgroup::new("reject");
    // Realtime runtime beyond what the (empty) parent has: the kernel says no.
    let res = ok(
        LinuxResourcesBuilder::default()
            .cpu(ok(
                LinuxCpuBuilder::default()
                    .realtime_period(1_000_000u64)
                    .realtime_runtime(900_000)
                    .build(),
                "cpu",
            ))
            .build(),
        "res",
    );
    let err =
        cg.m.apply(&res)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
    if is_v2() {
        assert!(err.contains("realtime"), "{err}");
    } else if cg.file("cpu", "cpu.rt_runtime_us").exists() {
        assert!(
            err.starts_with("write \"900000\" to ") && err.contains("cpu.rt_runtime_us: "),
            "{err}"
        );
    }
    // Swap below memory.
    let res = ok(
        LinuxResourcesBuilder::default()
            .memory(ok(
                LinuxMemoryBuilder::default()
                    .limit(64 << 20)
                    .swap(1 << 20)
                    .build(),
                "mem",
            ))
            .build(),
        "res",
    );
    let err =
        cg.m.apply(&res)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
    assert!(!err.is_empty(), "swap < limit was accepted");
    // A cpuset the machine does not have.
    let res = ok(
        LinuxResourcesBuilder::default()
            .cpu(ok(LinuxCpuBuilder::default().cpus("4000").build(), "cpu"))
            .build(),
        "res",
    );
    let err =
        cg.m.apply(&res)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
    assert!(
        err.starts_with("write \"4000\" to ") && err.contains("cpuset.cpus: "),
        "{err}"
    );
}

#[test]
fn network_needs_v1_controllers() {
    let cg = TestCgroup::new("net");
    let net = ok(
        LinuxNetworkBuilder::default().class_id(0x10001u32).build(),
        "net",
    );
    let res = ok(LinuxResourcesBuilder::default().network(net).build(), "res");
    let r = cg.m.apply(&res);
    if cg.has("net_cls") {
        ok(r, "apply");
        assert_eq!(cg.read("net_cls", "net_cls.classid"), "65537");
    } else {
        let err = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("net_cls"), "{err}");
    }
}

fn root_block_device() -> Option<(i64, i64)> {
    // The first whole disk the kernel lists (the guest may have none).
    let entries = std::fs::read_dir("/sys/block").ok()?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("loop") || name.starts_with("ram") {
            continue;
        }
        let dev = std::fs::read_to_string(e.path().join("dev")).ok()?;
        let (a, b) = dev.trim().split_once(':')?;
        return Some((a.parse().ok()?, b.parse().ok()?));
    }
    None
}

#[test]
fn blkio_throttle_and_weight() {
    let cg = TestCgroup::new("blkio");
    let Some((major, minor)) = root_block_device() else {
        skip(
            "blkio_throttle_and_weight",
            "no block device on this machine",
        );
        return;
    };
    let t = ok(
        LinuxThrottleDeviceBuilder::default()
            .major(major)
            .minor(minor)
            .rate(1_048_576u64)
            .build(),
        "t",
    );
    let b = ok(
        LinuxBlockIoBuilder::default()
            .throttle_read_bps_device(vec![t])
            .build(),
        "b",
    );
    let res = ok(LinuxResourcesBuilder::default().block_io(b).build(), "res");
    ok(cg.m.apply(&res), "apply");
    if is_v2() {
        let text = cg.read("blkio", "io.max");
        assert!(
            text.contains(&format!("{major}:{minor} rbps=1048576")),
            "{text}"
        );
    } else {
        let text = cg.read("blkio", "blkio.throttle.read_bps_device");
        assert_eq!(text, format!("{major}:{minor} 1048576"));
    }
    // A weight needs a proportional scheduler; without one the error names the file.
    let b = ok(LinuxBlockIoBuilder::default().weight(500u16).build(), "b");
    let res = ok(LinuxResourcesBuilder::default().block_io(b).build(), "res");
    match cg.m.apply(&res) {
        Ok(()) => {}
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("weight\": ") || e.contains("weight: "), "{e}");
        }
    }
}

#[test]
fn hugetlb_limit() {
    let Some(size) = hugepage_size() else {
        skip("hugetlb_limit", "no huge page sizes on this machine");
        return;
    };
    let cg = TestCgroup::new("huge");
    if !cg.has("hugetlb") {
        skip("hugetlb_limit", "no hugetlb controller");
        return;
    }
    let unified_root = Path::new("/sys/fs/cgroup/unified/cgroup.subtree_control");
    let before = std::fs::read_to_string(unified_root).unwrap_or_default();
    let l = ok(
        LinuxHugepageLimitBuilder::default()
            .page_size(size.clone())
            .limit(4i64 << 21)
            .build(),
        "l",
    );
    let res = ok(
        LinuxResourcesBuilder::default()
            .hugepage_limits(vec![l])
            .build(),
        "res",
    );
    let r = cg.m.apply(&res);
    let checked = r.as_ref().map_err(|e| e.to_string()).map(|_| {
        let v2_file = cg.file("hugetlb", &format!("hugetlb.{size}.max"));
        let file = if v2_file.exists() {
            v2_file
        } else {
            cg.file("hugetlb", &format!("hugetlb.{size}.limit_in_bytes"))
        };
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .trim()
            .to_string()
    });
    let bad = ok(
        LinuxHugepageLimitBuilder::default()
            .page_size("3MB")
            .limit(1i64)
            .build(),
        "l",
    );
    let res = ok(
        LinuxResourcesBuilder::default()
            .hugepage_limits(vec![bad])
            .build(),
        "res",
    );
    let bad_err =
        cg.m.apply(&res)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
    drop(cg);
    // Hybrid: hugetlb had to be enabled in the unified root; put it back as it was.
    if layout() == Layout::Hybrid && !before.contains("hugetlb") {
        let _ = std::fs::write(unified_root, "-hugetlb");
    }
    assert_eq!(ok(checked, "apply"), (4u64 << 21).to_string());
    assert!(bad_err.contains("3MB"), "{bad_err}");
}

fn hugepage_size() -> Option<String> {
    let mut kb: Vec<u64> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()
        })
        .collect();
    kb.sort();
    kb.first().map(|k| {
        if k % (1 << 20) == 0 {
            format!("{}GB", k >> 20)
        } else {
            format!("{}MB", k >> 10)
        }
    })
}

fn rule(
    allow: bool,
    t: LinuxDeviceType,
    major: i64,
    minor: i64,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow)
        .set_typ(Some(t))
        .set_major(Some(major))
        .set_minor(Some(minor))
        .set_access(Some(access.to_string()));
    r
}

#[test]
fn device_deny_blocks_dev_null() {
    let cg = TestCgroup::new("dev");
    // Deny everything, allow /dev/zero only.
    let rules = vec![
        rule(false, LinuxDeviceType::A, -1, -1, "rwm"),
        rule(true, LinuxDeviceType::C, 1, 5, "rw"),
    ];
    let res = ok(
        LinuxResourcesBuilder::default().devices(rules).build(),
        "res",
    );
    ok(cg.m.apply(&res), "apply");
    if !is_v2() {
        assert_eq!(cg.read("devices", "devices.list"), "c 1:5 rw");
    }
    // `true`, not `:`: a failed redirection on a special builtin would end the shell.
    let script = "if true </dev/null 2>&-; then echo null-ok; else echo null-denied; fi; \
                  if true </dev/zero 2>&-; then echo zero-ok; else echo zero-denied; fi";
    let child = Waiting::spawn(script);
    ok(cg.m.add_process(child.pid()), "add");
    let (_, out, _) = child.finish();
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["null-denied", "zero-ok"]
    );
    // Updating the rules replaces them (v2: the eBPF program is swapped atomically).
    let mut rules = vec![rule(false, LinuxDeviceType::A, -1, -1, "rwm")];
    rules.extend(cgroups::default_device_rules());
    let res = ok(
        LinuxResourcesBuilder::default().devices(rules).build(),
        "res",
    );
    ok(cg.m.update(&res), "update");
    let child = Waiting::spawn(script);
    ok(cg.m.add_process(child.pid()), "add");
    let (_, out, _) = child.finish();
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["null-ok", "zero-ok"]
    );
}

#[test]
fn freeze_and_thaw() {
    let cg = TestCgroup::new("freeze");
    let mut child = Waiting::spawn("exec sleep 1000");
    ok(cg.m.add_process(child.pid()), "add");
    child.go();
    assert_eq!(ok(cg.m.freezer_state(), "state"), FreezerState::Thawed);
    ok(cg.m.freeze(), "freeze");
    assert_eq!(ok(cg.m.freezer_state(), "state"), FreezerState::Frozen);
    ok(cg.m.thaw(), "thaw");
    assert_eq!(ok(cg.m.freezer_state(), "state"), FreezerState::Thawed);
    // destroy works on a frozen cgroup too (v1 SIGKILL waits for a thaw: destroy must thaw).
    ok(cg.m.freeze(), "freeze");
    ok(cg.m.destroy(), "destroy frozen");
    assert_eq!(child.finish().0, -libc::SIGKILL);
}

#[test]
fn destroy_removes_nested_cgroups_and_many_processes() {
    let cg = TestCgroup::new("nested");
    let mut kids = Vec::new();
    for _ in 0..5 {
        let mut c = Waiting::spawn("exec sleep 1000");
        ok(cg.m.add_process(c.pid()), "add");
        c.go();
        kids.push(c);
    }
    // A child cgroup, as a container with its own cgroup namespace would make.
    let sub = cg.m.path().join("sub");
    ok(std::fs::create_dir(&sub), "mkdir sub");
    let mut inner = Waiting::spawn("exec sleep 1000");
    ok(
        std::fs::write(sub.join("cgroup.procs"), inner.pid().to_string()),
        "move",
    );
    inner.go();
    assert_eq!(ok(cg.m.pids(), "pids").len(), 6);
    ok(cg.m.destroy(), "destroy");
    assert!(!cg.m.path().exists());
    for k in kids.into_iter().chain([inner]) {
        assert_eq!(k.finish().0, -libc::SIGKILL);
    }
}

#[test]
fn failed_apply_then_destroy_leaves_nothing() {
    let cg = TestCgroup::new("fail");
    let res: LinuxResources = ok(
        serde_json::from_str(r#"{"cpu":{"cpus":"9999"},"pids":{"limit":10}}"#),
        "json",
    );
    assert!(cg.m.apply(&res).is_err());
    let paths: Vec<_> = cg.m.paths().map(Path::to_path_buf).collect();
    ok(cg.m.destroy(), "destroy");
    for p in paths {
        assert!(
            !p.exists() && !p.parent().is_some_and(Path::exists),
            "{}",
            p.display()
        );
    }
}

#[test]
fn unified_is_v2_only() {
    let cg = TestCgroup::new("unified");
    let mut u = std::collections::HashMap::new();
    u.insert("memory.high".to_string(), "104857600".to_string());
    let res = ok(LinuxResourcesBuilder::default().unified(u).build(), "res");
    let r = cg.m.apply(&res);
    if is_v2() {
        ok(r, "apply");
        assert_eq!(cg.read("memory", "memory.high"), "104857600");
        let mut bad = std::collections::HashMap::new();
        bad.insert("../x".to_string(), "1".to_string());
        let res = ok(LinuxResourcesBuilder::default().unified(bad).build(), "res");
        assert!(cg.m.apply(&res).is_err());
    } else {
        let err = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("only supported on cgroup v2"), "{err}");
        skip(
            "unified_is_v2_only",
            "writing unified keys needs pure cgroup v2",
        );
    }
}

#[test]
fn stats_json_has_runc_shape() {
    let cg = TestCgroup::new("stats");
    let mut child = Waiting::spawn("exec sleep 1000");
    ok(cg.m.add_process(child.pid()), "add");
    child.go();
    let s = ok(cg.m.stats(), "stats");
    assert_eq!(s.pids.current, 1);
    let text = ok(
        serde_json::to_string(&cgroups::Event::stats("c1", s)),
        "json",
    );
    let v: serde_json::Value = ok(serde_json::from_str(&text), "parse");
    assert_eq!(v["type"], "stats");
    for k in ["cpu", "memory", "pids", "blkio", "hugetlb"] {
        assert!(v["data"].get(k).is_some(), "{k} missing: {text}");
    }
}

#[test]
fn clone_into_cgroup_on_v2() {
    let cg = TestCgroup::new("clone3");
    let fd = ok(cg.m.open_cgroup_dir(), "open");
    if !is_v2() {
        assert!(fd.is_none(), "only pure v2 offers CLONE_INTO_CGROUP");
        skip("clone_into_cgroup_on_v2", "needs pure cgroup v2");
        return;
    }
    let Some(fd) = fd else {
        panic!("no cgroup fd on v2")
    };
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x200000000;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: std::os::fd::AsRawFd::as_raw_fd(&fd) as u64,
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM forks; the child only calls async-signal-safe pause/_exit.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid == 0 {
        // SAFETY: child side: wait for the signal that ends it.
        unsafe {
            libc::pause();
            libc::_exit(0);
        }
    }
    assert!(pid > 0, "clone3: {}", std::io::Error::last_os_error());
    let pid = pid as i32;
    let inside = in_cgroup(pid, cg.m.path());
    // SAFETY: pid is our child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let mut status = 0;
    // SAFETY: reaps our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(inside, "child not born in the cgroup");
}

#[test]
fn features_list_this_host() {
    let f = ok(cgroups::host_features(), "features");
    assert_eq!(f.layout, layout());
    assert!(
        f.controllers.iter().any(|c| c == "memory"),
        "{:?}",
        f.controllers
    );
    assert!(
        f.controllers.iter().any(|c| c == "pids"),
        "{:?}",
        f.controllers
    );
    match f.layout {
        Layout::Hybrid => assert!(f.v1 && f.v2),
        Layout::V2 => assert!(!f.v1 && f.v2),
        Layout::V1 => assert!(f.v1 && !f.v2),
    }
}

#[test]
fn a_cgroup_removed_under_an_open_file_counts_as_gone() {
    // systemd prunes a dead scope's cgroup at any moment, also between `delete` opening
    // cgroup.kill (or cgroup.procs) and writing (reading) it: the kernel then answers ENODEV,
    // not ENOENT. Both must read as "nothing left to kill".
    use std::io::{Read, Write};
    let cg = TestCgroup::new("vanish");
    let path = cg.m.path().to_path_buf();
    let mut procs = ok(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path.join("cgroup.procs")),
        "open cgroup.procs",
    );
    ok(cg.m.destroy(), "destroy");
    assert!(!path.exists());
    let write = procs.write_all(b"0\n").map_err(|e| cgroups::Error::Write {
        path: path.join("cgroup.procs"),
        value: "0".into(),
        errno: cgroups::Errno(e.raw_os_error().unwrap_or(0)),
    });
    let read = procs
        .read_to_string(&mut String::new())
        .map_err(|e| cgroups::Error::Read {
            path: path.join("cgroup.procs"),
            errno: cgroups::Errno(e.raw_os_error().unwrap_or(0)),
        });
    for (what, r) in [("write", write.map(|_| ())), ("read", read.map(|_| ()))] {
        let e = r.expect_err(what);
        assert_eq!(e.errno(), Some(libc::ENODEV), "{what}: {e}");
        assert!(e.cgroup_gone(), "{what}: {e}");
    }
    let reopened = std::fs::read(path.join("cgroup.procs")).map_err(|e| cgroups::Error::Read {
        path: path.clone(),
        errno: cgroups::Errno(e.raw_os_error().unwrap_or(0)),
    });
    assert!(reopened.expect_err("reopen").cgroup_gone());
    // And a second destroy of the vanished cgroup is fine.
    ok(cg.m.destroy(), "destroy again");
}
