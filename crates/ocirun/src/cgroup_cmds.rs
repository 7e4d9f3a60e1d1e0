//! Commands on a container's cgroup: pause, resume, ps, update, events.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use libsandbox::Runtime;
use oci_spec::runtime::LinuxResources;

use crate::Failure;
use crate::cli::{EventsArgs, IdArg, ListFormat, PsArgs, UpdateArgs};

type Outcome = Result<i32, Failure>;

fn fail(cmd: &str, id: &str, e: impl std::fmt::Display) -> Failure {
    Failure::new(format!("{cmd} {id}: {e}"))
}

pub fn pause(rt: &Runtime, args: IdArg) -> Outcome {
    rt.pause(&args.id).map_err(|e| fail("pause", &args.id, e))?;
    Ok(0)
}

pub fn resume(rt: &Runtime, args: IdArg) -> Outcome {
    rt.resume(&args.id)
        .map_err(|e| fail("resume", &args.id, e))?;
    Ok(0)
}

pub fn ps(rt: &Runtime, args: PsArgs) -> Outcome {
    let mut words = args.id_and_ps_args.into_iter();
    let id = words.next().unwrap_or_default();
    let ps_args: Vec<String> = words.collect();
    let pids = rt.pids(&id).map_err(|e| fail("ps", &id, e))?;
    if args.format == ListFormat::Json {
        crate::out!("{}", serde_json::to_string(&pids).unwrap_or_default());
        return Ok(0);
    }
    let ps_args = if ps_args.is_empty() {
        vec!["-ef".to_owned()]
    } else {
        ps_args
    };
    let out = std::process::Command::new("ps")
        .args(&ps_args)
        .output()
        .map_err(|e| fail("ps", &id, format!("run ps: {e}")))?;
    if !out.status.success() {
        return Err(fail(
            "ps",
            &id,
            format!(
                "ps {}: {}",
                ps_args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| fail("ps", &id, "ps output has no PID column"))?;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            let _ = writeln!(stdout, "{line}");
        }
    }
    Ok(0)
}

pub fn update(rt: &Runtime, args: UpdateArgs) -> Outcome {
    let id = args.id.clone();
    let mut res: LinuxResources = match &args.resources {
        Some(path) => {
            let mut bytes = Vec::new();
            if path.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_end(&mut bytes)
                    .map_err(|e| fail("update", &id, format!("read stdin: {e}")))?;
            } else {
                bytes = std::fs::read(path)
                    .map_err(|e| fail("update", &id, format!("read {}: {e}", path.display())))?;
            }
            let mut de = serde_json::Deserializer::from_slice(&bytes);
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                fail(
                    "update",
                    &id,
                    format!("parse resources: {}: {}", e.path(), e.inner()),
                )
            })?
        }
        None => LinuxResources::default(),
    };
    apply_flags(&mut res, &args).map_err(|e| fail("update", &id, e))?;
    rt.update(&id, &res).map_err(|e| fail("update", &id, e))?;
    Ok(0)
}

/// Parses a byte size like runc does (`100m`, `1G`, `-1` for unlimited).
fn bytes(flag: &str, s: &str) -> Result<i64, String> {
    let t = s.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let lower = t.to_ascii_lowercase();
    let lower = lower.trim_end_matches('b').trim_end_matches('i');
    let (num, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1i64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        Some('t') => (&lower[..lower.len() - 1], 1 << 40),
        _ => (lower, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("--{flag} {s:?}: not a size (like 512m or 1G)"))?;
    Ok((n * mult as f64) as i64)
}

fn apply_flags(res: &mut LinuxResources, a: &UpdateArgs) -> Result<(), String> {
    if a.memory.is_some()
        || a.memory_reservation.is_some()
        || a.memory_swap.is_some()
        || a.kernel_memory_tcp.is_some()
    {
        let mut m = (*res.memory()).unwrap_or_default();
        if let Some(v) = &a.memory {
            m.set_limit(Some(bytes("memory", v)?));
        }
        if let Some(v) = &a.memory_reservation {
            m.set_reservation(Some(bytes("memory-reservation", v)?));
        }
        if let Some(v) = &a.memory_swap {
            m.set_swap(Some(bytes("memory-swap", v)?));
        }
        if let Some(v) = &a.kernel_memory_tcp {
            m.set_kernel_tcp(Some(bytes("kernel-memory-tcp", v)?));
        }
        res.set_memory(Some(m));
    }
    if a.cpu_period.is_some()
        || a.cpu_quota.is_some()
        || a.cpu_burst.is_some()
        || a.cpu_rt_period.is_some()
        || a.cpu_rt_runtime.is_some()
        || a.cpu_share.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some()
    {
        let mut c = res.cpu().clone().unwrap_or_default();
        if let Some(v) = a.cpu_period {
            c.set_period(Some(v));
        }
        if let Some(v) = a.cpu_quota {
            c.set_quota(Some(v));
        }
        if let Some(v) = a.cpu_burst {
            c.set_burst(Some(v));
        }
        if let Some(v) = a.cpu_rt_period {
            c.set_realtime_period(Some(v));
        }
        if let Some(v) = a.cpu_rt_runtime {
            c.set_realtime_runtime(Some(v));
        }
        if let Some(v) = a.cpu_share {
            c.set_shares(Some(v));
        }
        if let Some(v) = &a.cpuset_cpus {
            c.set_cpus(Some(v.clone()));
        }
        if let Some(v) = &a.cpuset_mems {
            c.set_mems(Some(v.clone()));
        }
        res.set_cpu(Some(c));
    }
    if let Some(v) = a.pids_limit {
        let mut p = (*res.pids()).unwrap_or_default();
        p.set_limit(v);
        res.set_pids(Some(p));
    }
    if let Some(w) = a.blkio_weight {
        let mut b = res.block_io().clone().unwrap_or_default();
        b.set_weight(Some(w));
        res.set_block_io(Some(b));
    }
    if a.kernel_memory.is_some() {
        return Err(
            "--kernel-memory: kernel memory limits are not supported by the kernel any more".into(),
        );
    }
    Ok(())
}

/// Parses `5s`, `500ms`, `1m`, `2h` or a bare number of seconds.
fn duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, unit) = t
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| (&t[..i], &t[i..]))
        .unwrap_or((t, "s"));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("--interval {s:?}: not a duration"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("--interval {s:?}: unknown unit {unit:?}")),
    };
    if secs <= 0.0 {
        return Err(format!("--interval {s:?}: must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn events(rt: &Runtime, args: EventsArgs) -> Outcome {
    let id = args.id.clone();
    if args.stats {
        let ev = rt.stats(&id).map_err(|e| fail("events", &id, e))?;
        crate::out!("{}", serde_json::to_string(&ev).unwrap_or_default());
        return Ok(0);
    }
    let interval = duration(&args.interval).map_err(|e| fail("events", &id, e))?;
    let mut oom = rt.oom_events(&id).ok();
    let mut next = std::time::Instant::now();
    loop {
        let now = std::time::Instant::now();
        if now >= next {
            match rt.stats(&id) {
                Ok(ev) => {
                    if !emit(&serde_json::to_string(&ev).unwrap_or_default()) {
                        return Ok(0);
                    }
                }
                // The container is gone: the stream ends, as runc's does.
                Err(_) => return Ok(0),
            }
            next = now + interval;
        }
        let wait = next.saturating_duration_since(std::time::Instant::now());
        match oom.as_mut() {
            Some(events) => {
                let mut pfd = libc::pollfd {
                    fd: events.as_raw_fd_for_poll(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                let n = unsafe {
                    libc::poll(&mut pfd, 1, wait.as_millis().min(i32::MAX as u128) as i32)
                };
                if n > 0 {
                    match events.take() {
                        Ok(Some(0)) => {}
                        Ok(Some(_)) => {
                            let ev = serde_json::to_string(&cgroups::Event::oom(&id));
                            if !emit(&ev.unwrap_or_default()) {
                                return Ok(0);
                            }
                        }
                        Ok(None) => return Ok(0),
                        Err(_) => oom = None,
                    }
                }
            }
            None => std::thread::sleep(wait),
        }
    }
}

/// Writes one event line; false once nobody reads the stream.
fn emit(line: &str) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
}

trait PollFd {
    fn as_raw_fd_for_poll(&self) -> i32;
}

impl PollFd for cgroups::OomEvents {
    fn as_raw_fd_for_poll(&self) -> i32 {
        use std::os::fd::AsFd;
        self.as_fd().as_raw_fd()
    }
}
