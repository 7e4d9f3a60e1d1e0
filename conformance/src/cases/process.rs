//! config.md "Process": args, env, cwd, user, umask, capabilities, rlimits,
//! noNewPrivileges, oomScoreAdj, ioPriority.

use super::Entry;
use crate::harness::{Ctx, R, skip};
use crate::host::{cap_mask, cap_names};
use crate::report::Report;
use crate::{ensure, ensure_eq};
use serde_json::json;

pub const CASES: &[Entry] = &[
    ("process.args", args),
    ("process.env", env),
    ("process.cwd", cwd),
    ("process.user-uid-gid", user),
    ("process.user-additional-gids", additional_gids),
    ("process.user-umask", umask),
    ("process.user-umask-default-0022", umask_default),
    ("process.capabilities-root", caps_root),
    ("process.capabilities-non-root", caps_non_root),
    ("process.rlimits", rlimits),
    ("process.no-new-privileges-true", |c| nnp(c, true)),
    ("process.no-new-privileges-false", |c| nnp(c, false)),
    ("process.oom-score-adj", oom),
    ("process.io-priority", io_priority),
];

fn args(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.args(&["/oci-checker", "report", "--out", "/dev/stdout"]);
    let r = ctx.report(&b)?;
    ensure_eq!(
        r.0["args"],
        json!(["/oci-checker", "report", "--out", "/dev/stdout"]),
        "argv"
    );
    Ok(())
}

fn env(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    let want = [
        "PATH=/bin:/sbin",
        "ONE=1",
        "SPACES=a b  c",
        "EMPTY=",
        "HOME=/somewhere",
    ];
    b.config["process"]["env"] = json!(want);
    let r = ctx.report(&b)?;
    let mut got = r.env();
    got.sort();
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    ensure_eq!(got, want, "environment");
    Ok(())
}

fn cwd(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    std::fs::create_dir_all(b.rootfs().join("srv/app"))?;
    b.config["process"]["cwd"] = "/srv/app".into();
    let r = ctx.report(&b)?;
    ensure_eq!(r.str("cwd"), "/srv/app", "cwd");
    Ok(())
}

fn user(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1001 });
    let r = ctx.report(&b)?;
    ensure_eq!(
        r.ids("uid"),
        vec![1000, 1000, 1000, 1000],
        "uids (real, effective, saved, fs)"
    );
    ensure_eq!(
        r.ids("gid"),
        vec![1001, 1001, 1001, 1001],
        "gids (real, effective, saved, fs)"
    );
    Ok(())
}

fn additional_gids(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.config["process"]["user"] =
        json!({ "uid": 1000, "gid": 1000, "additionalGids": [10, 20, 3000] });
    let r = ctx.report(&b)?;
    let mut g = r.ids("groups");
    g.sort();
    g.retain(|&x| x != 1000);
    ensure_eq!(
        g,
        vec![10, 20, 3000],
        "supplementary groups (besides the primary)"
    );
    Ok(())
}

fn umask(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.config["process"]["user"]["umask"] = json!(0o027);
    let r = ctx.report(&b)?;
    ensure_eq!(r.str("umask"), "0027", "umask");
    Ok(())
}

fn umask_default(ctx: &mut Ctx) -> R {
    let b = ctx.bundle()?;
    let r = ctx.report(&b)?;
    ensure_eq!(r.str("umask"), "0022", "umask without process.user.umask");
    Ok(())
}

/// Sets all five sets, runs the checker as `uid`, returns the report.
fn caps_report(
    ctx: &mut Ctx,
    uid: u64,
    sets: &serde_json::Value,
) -> Result<Report, crate::harness::Fail> {
    let mut b = ctx.bundle()?;
    b.config["process"]["user"] = json!({ "uid": uid, "gid": uid });
    b.config["process"]["capabilities"] = sets.clone();
    b.config["process"]["noNewPrivileges"] = true.into();
    ctx.report(&b)
}

fn names(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default()
}

fn check_set(r: &Report, set: &str, want: u64) -> R {
    let got = r.cap(set);
    ensure!(
        got == want,
        "{set}: got {:?}, want {:?}",
        cap_names(got),
        cap_names(want)
    );
    Ok(())
}

fn five_sets() -> serde_json::Value {
    json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_NET_RAW"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
        "ambient": ["CAP_NET_BIND_SERVICE"],
    })
}

// What the checker sees is after execve(2), which recomputes the sets from the
// ones the runtime set (capabilities(7)): bounding, inheritable and ambient are
// kept. For root, the kernel raises permitted to bounding | inheritable, but
// with no_new_privs (set here) caps cannot grow across execve, so permitted
// stays what the runtime set; effective becomes permitted (root's effective
// bit). For others, with no file capabilities, permitted = effective = ambient.
fn caps_root(ctx: &mut Ctx) -> R {
    let sets = five_sets();
    let r = caps_report(ctx, 0, &sets)?;
    let prm = cap_mask(&names(&sets["permitted"]));
    check_set(&r, "bounding", cap_mask(&names(&sets["bounding"])))?;
    check_set(&r, "inheritable", cap_mask(&names(&sets["inheritable"])))?;
    check_set(&r, "ambient", cap_mask(&names(&sets["ambient"])))?;
    check_set(&r, "permitted", prm)?;
    check_set(&r, "effective", prm)
}

fn caps_non_root(ctx: &mut Ctx) -> R {
    let sets = five_sets();
    let r = caps_report(ctx, 1000, &sets)?;
    let amb = cap_mask(&names(&sets["ambient"]));
    check_set(&r, "bounding", cap_mask(&names(&sets["bounding"])))?;
    check_set(&r, "inheritable", cap_mask(&names(&sets["inheritable"])))?;
    check_set(&r, "ambient", amb)?;
    check_set(&r, "permitted", amb)?;
    check_set(&r, "effective", amb)
}

fn rlimits(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.config["process"]["rlimits"] = json!([
        { "type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000 },
        { "type": "RLIMIT_CORE", "soft": 0, "hard": 4096 },
        { "type": "RLIMIT_NPROC", "soft": 300, "hard": 400 },
        { "type": "RLIMIT_MSGQUEUE", "soft": 8192, "hard": 8192 },
    ]);
    let r = ctx.report(&b)?;
    ensure_eq!(
        r.rlimit("RLIMIT_NOFILE"),
        Some((512, 1000)),
        "RLIMIT_NOFILE"
    );
    ensure_eq!(r.rlimit("RLIMIT_CORE"), Some((0, 4096)), "RLIMIT_CORE");
    ensure_eq!(r.rlimit("RLIMIT_NPROC"), Some((300, 400)), "RLIMIT_NPROC");
    ensure_eq!(
        r.rlimit("RLIMIT_MSGQUEUE"),
        Some((8192, 8192)),
        "RLIMIT_MSGQUEUE"
    );
    Ok(())
}

fn nnp(ctx: &mut Ctx, on: bool) -> R {
    let own = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if !on
        && own
            .lines()
            .any(|l| l.starts_with("NoNewPrivs:") && l.ends_with('1'))
    {
        return skip("the runner itself runs with no_new_privs");
    }
    let mut b = ctx.bundle()?;
    b.config["process"]["noNewPrivileges"] = json!(on);
    let r = ctx.report(&b)?;
    ensure_eq!(
        r.str("no_new_privs"),
        if on { "1" } else { "0" },
        "NoNewPrivs"
    );
    Ok(())
}

fn oom(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.config["process"]["oomScoreAdj"] = json!(345);
    let r = ctx.report(&b)?;
    ensure_eq!(r.str("oom_score_adj"), "345", "oom_score_adj");
    Ok(())
}

fn io_priority(ctx: &mut Ctx) -> R {
    let mut b = ctx.bundle()?;
    b.config["process"]["ioPriority"] = json!({ "class": "IOPRIO_CLASS_BE", "priority": 6 });
    let r = ctx.report(&b)?;
    ensure_eq!(r.0["ioprio"], json!([2, 6]), "ioprio [class, level]");
    Ok(())
}
