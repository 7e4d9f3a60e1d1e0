//! Resource usage in the JSON shape of `runc events --stats` (runc's types/events.go), so tools
//! that parse runc's output parse ours. Field names and omit-when-empty rules follow runc:
//! zero numbers and empty lists are left out, nested objects always appear.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::fs;
use crate::layout::Version;
use crate::manager::Manager;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One line of `runc events`: `{"type":"stats","id":"c1","data":{...}}` or `{"type":"oom",...}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

impl Event {
    /// A stats event for container `id`.
    pub fn stats(id: &str, stats: Stats) -> Self {
        Event {
            kind: "stats".into(),
            id: id.into(),
            data: Some(stats),
        }
    }

    /// An OOM event for container `id`.
    pub fn oom(id: &str) -> Self {
        Event {
            kind: "oom".into(),
            id: id.into(),
            data: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    /// Always null: network statistics belong to the network namespace, not the cgroup.
    pub network_interfaces: Option<Vec<serde_json::Value>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty", rename = "ioQueueRecursive")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// CPU time in nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// Intel RDT is not a cgroup; the object is kept (empty) for the shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IntelRdt {}

/// Parses a cpuset list ("0-3,7") into numbers.
pub(crate) fn parse_cpu_list(text: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u16>().ok()),
        }
    }
    out
}

fn u64_list(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

pub(crate) fn collect(m: &Manager) -> Result<Stats> {
    let mut s = Stats::default();
    if let Ok((dir, v)) = m.target("cpu").get("cpu") {
        cpu_throttling(dir, v, &mut s.cpu)?;
        if v == Version::V2 {
            let st = fs::read_flat_keyed(dir, "cpu.stat")?;
            let us = |k: &str| st.get(k).copied().unwrap_or(0) * 1000;
            s.cpu.usage.total = us("usage_usec");
            s.cpu.usage.user = us("user_usec");
            s.cpu.usage.kernel = us("system_usec");
        }
    }
    if let Ok((dir, Version::V1)) = m.target("cpuacct").get("cpuacct") {
        cpuacct_v1(dir, &mut s.cpu.usage)?;
    }
    if let Ok((dir, v)) = m.target("cpuset").get("cpuset") {
        cpuset(dir, v, &mut s.cpuset)?;
    }
    if let Ok((dir, v)) = m.target("memory").get("memory") {
        match v {
            Version::V1 => memory_v1(dir, &mut s.memory)?,
            Version::V2 => memory_v2(dir, &mut s.memory)?,
        }
    }
    if let Ok((dir, _)) = m.target("pids").get("pids") {
        s.pids.current = fs::read_u64_or_zero(dir, "pids.current")?;
        s.pids.limit = match fs::read_u64_or_zero(dir, "pids.max")? {
            u64::MAX => 0,
            n => n,
        };
    }
    if let Ok((dir, v)) = m.target("blkio").get("blkio") {
        match v {
            Version::V1 => blkio_v1(dir, &mut s.blkio)?,
            Version::V2 => io_v2(dir, &mut s.blkio)?,
        }
    }
    if let Ok((dir, v)) = m.target("hugetlb").get("hugetlb") {
        s.hugetlb = hugetlb(dir, v)?;
    }
    Ok(s)
}

fn cpu_throttling(dir: &Path, v: Version, cpu: &mut Cpu) -> Result<()> {
    let st = fs::read_flat_keyed(dir, "cpu.stat")?;
    let get = |k: &str| st.get(k).copied().unwrap_or(0);
    cpu.throttling.periods = get("nr_periods");
    cpu.throttling.throttled_periods = get("nr_throttled");
    cpu.throttling.throttled_time = match v {
        Version::V1 => get("throttled_time"),
        Version::V2 => get("throttled_usec") * 1000,
    };
    Ok(())
}

fn cpuacct_v1(dir: &Path, usage: &mut CpuUsage) -> Result<()> {
    usage.total = fs::read_u64_or_zero(dir, "cpuacct.usage")?;
    let list = |f: &str| -> Result<Vec<u64>> {
        Ok(fs::read_optional(dir, f)?
            .map(|t| u64_list(&t))
            .unwrap_or_default())
    };
    usage.percpu = list("cpuacct.usage_percpu")?;
    usage.percpu_kernel = list("cpuacct.usage_percpu_sys")?;
    usage.percpu_user = list("cpuacct.usage_percpu_user")?;
    // cpuacct.stat counts clock ticks.
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let st = fs::read_flat_keyed(dir, "cpuacct.stat")?;
    let ns = |k: &str| st.get(k).copied().unwrap_or(0) * (1_000_000_000 / hz);
    usage.user = ns("user");
    usage.kernel = ns("system");
    Ok(())
}

fn cpuset(dir: &Path, v: Version, c: &mut CpuSet) -> Result<()> {
    let (cpus, mems) = match v {
        Version::V1 => ("cpuset.cpus", "cpuset.mems"),
        Version::V2 => ("cpuset.cpus.effective", "cpuset.mems.effective"),
    };
    c.cpus = parse_cpu_list(&fs::read_optional(dir, cpus)?.unwrap_or_default());
    c.mems = parse_cpu_list(&fs::read_optional(dir, mems)?.unwrap_or_default());
    if v == Version::V1 {
        let n = |f: &str| fs::read_u64_or_zero(dir, f);
        c.cpu_exclusive = n("cpuset.cpu_exclusive")?;
        c.mem_hardwall = n("cpuset.mem_hardwall")?;
        c.mem_exclusive = n("cpuset.mem_exclusive")?;
        c.memory_migrate = n("cpuset.memory_migrate")?;
        c.memory_spread_page = n("cpuset.memory_spread_page")?;
        c.memory_spread_slab = n("cpuset.memory_spread_slab")?;
        c.memory_pressure = n("cpuset.memory_pressure")?;
        c.sched_load_balance = n("cpuset.sched_load_balance")?;
        c.sched_relax_domain_level = fs::read_optional(dir, "cpuset.sched_relax_domain_level")?
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
    }
    Ok(())
}

fn memory_entry_v1(dir: &Path, prefix: &str) -> Result<MemoryEntry> {
    let n = |suffix: &str| fs::read_u64_or_zero(dir, &format!("{prefix}.{suffix}"));
    Ok(MemoryEntry {
        limit: n("limit_in_bytes")?,
        usage: n("usage_in_bytes")?,
        max: n("max_usage_in_bytes")?,
        failcnt: n("failcnt")?,
    })
}

fn memory_v1(dir: &Path, mem: &mut Memory) -> Result<()> {
    mem.raw = fs::read_flat_keyed(dir, "memory.stat")?;
    mem.cache = mem
        .raw
        .get("total_cache")
        .or_else(|| mem.raw.get("cache"))
        .copied()
        .unwrap_or(0);
    mem.usage = memory_entry_v1(dir, "memory")?;
    mem.swap = memory_entry_v1(dir, "memory.memsw")?;
    mem.kernel = memory_entry_v1(dir, "memory.kmem")?;
    mem.kernel_tcp = memory_entry_v1(dir, "memory.kmem.tcp")?;
    Ok(())
}

fn memory_v2(dir: &Path, mem: &mut Memory) -> Result<()> {
    mem.raw = fs::read_flat_keyed(dir, "memory.stat")?;
    mem.cache = mem.raw.get("file").copied().unwrap_or(0);
    let events = fs::read_flat_keyed(dir, "memory.events")?;
    mem.usage = MemoryEntry {
        limit: fs::read_u64_or_zero(dir, "memory.max")?,
        usage: fs::read_u64_or_zero(dir, "memory.current")?,
        max: fs::read_u64_or_zero(dir, "memory.peak")?,
        failcnt: events.get("max").copied().unwrap_or(0),
    };
    // v1 reports memory+swap; add memory to swap so consumers see the same meaning.
    if let Some(swap) = fs::read_optional(dir, "memory.swap.current")? {
        let swap_path = dir.join("memory.swap.current");
        let swap_limit = fs::read_u64_or_zero(dir, "memory.swap.max")?;
        mem.swap = MemoryEntry {
            limit: swap_limit.saturating_add(mem.usage.limit),
            usage: fs::parse_u64(&swap_path, &swap)?.saturating_add(mem.usage.usage),
            max: 0,
            failcnt: 0,
        };
    }
    Ok(())
}

/// Parses v1 blkio "MAJ:MIN Op value" lines (the "Total" summary line is skipped).
fn blkio_entries(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let dev = it.next()?;
            let (maj, min) = dev.split_once(':')?;
            let (op, value) = match (it.next(), it.next()) {
                (Some(op), Some(v)) => (op.to_string(), v.parse().ok()?),
                (Some(v), None) => (String::new(), v.parse().ok()?),
                _ => return None,
            };
            Some(BlkioEntry {
                major: maj.parse().ok()?,
                minor: min.parse().ok()?,
                op,
                value,
            })
        })
        .collect()
}

fn blkio_v1(dir: &Path, b: &mut Blkio) -> Result<()> {
    // Prefer the scheduler's numbers (CFQ, then BFQ), else the throttle layer's, as runc does.
    for prefix in ["blkio.", "blkio.bfq.", "blkio.throttle."] {
        if let Some(t) = fs::read_optional(dir, &format!("{prefix}io_service_bytes_recursive"))? {
            b.io_service_bytes_recursive = blkio_entries(&t);
            b.io_serviced_recursive = blkio_entries(
                &fs::read_optional(dir, &format!("{prefix}io_serviced_recursive"))?
                    .unwrap_or_default(),
            );
            break;
        }
    }
    Ok(())
}

fn io_v2(dir: &Path, b: &mut Blkio) -> Result<()> {
    let Some(text) = fs::read_optional(dir, "io.stat")? else {
        return Ok(());
    };
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let Some((maj, min)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (maj.parse(), min.parse()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut b.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut b.io_service_bytes_recursive, "Write"),
                "rios" => (&mut b.io_serviced_recursive, "Read"),
                "wios" => (&mut b.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    Ok(())
}

/// The host's huge page sizes in the cgroup files' spelling ("2MB", "1GB").
pub(crate) fn hugepage_sizes() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut out: Vec<(u64, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            let text = match kb {
                k if k >= 1 << 20 && k % (1 << 20) == 0 => format!("{}GB", k >> 20),
                k if k >= 1 << 10 && k % (1 << 10) == 0 => format!("{}MB", k >> 10),
                k => format!("{k}KB"),
            };
            Some((kb, text))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, s)| s).collect()
}

fn hugetlb(dir: &Path, v: Version) -> Result<BTreeMap<String, Hugetlb>> {
    let mut out = BTreeMap::new();
    for size in hugepage_sizes() {
        let entry = match v {
            Version::V1 => Hugetlb {
                usage: fs::read_u64_or_zero(dir, &format!("hugetlb.{size}.usage_in_bytes"))?,
                max: fs::read_u64_or_zero(dir, &format!("hugetlb.{size}.max_usage_in_bytes"))?,
                failcnt: fs::read_u64_or_zero(dir, &format!("hugetlb.{size}.failcnt"))?,
            },
            Version::V2 => {
                let Some(cur) = fs::read_optional(dir, &format!("hugetlb.{size}.current"))? else {
                    continue;
                };
                let events = fs::read_flat_keyed(dir, &format!("hugetlb.{size}.events"))?;
                Hugetlb {
                    usage: fs::parse_u64(&dir.join(format!("hugetlb.{size}.current")), &cur)?,
                    max: 0,
                    failcnt: events.get("max").copied().unwrap_or(0),
                }
            }
        };
        out.insert(size, entry);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,7\n"), vec![0, 1, 2, 3, 7]);
        assert_eq!(parse_cpu_list(""), Vec::<u16>::new());
    }

    #[test]
    fn blkio_lines() {
        let e = blkio_entries("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].op, "Read");
        assert_eq!(e[0].value, 4096);
    }

    #[test]
    fn json_shape_matches_runc() {
        let mut s = Stats::default();
        s.pids.current = 3;
        s.memory.usage.limit = 10;
        let text = serde_json::to_string(&Event::stats("c1", s)).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(v["type"], "stats");
        assert_eq!(v["id"], "c1");
        let d = &v["data"];
        for key in [
            "cpu",
            "cpuset",
            "memory",
            "pids",
            "blkio",
            "hugetlb",
            "intel_rdt",
        ] {
            assert!(d.get(key).is_some(), "missing {key} in {text}");
        }
        assert!(d["network_interfaces"].is_null());
        assert_eq!(d["pids"]["current"], 3);
        assert!(d["pids"].get("limit").is_none());
        assert_eq!(d["memory"]["usage"]["limit"], 10);
        assert_eq!(d["memory"]["usage"]["failcnt"], 0);
        assert!(d["memory"].get("kernelTCP").is_some());
        assert_eq!(d["cpu"]["usage"]["kernel"], 0);
        assert!(d["cpu"]["throttling"].is_object());
        let oom = serde_json::to_string(&Event::oom("c1")).unwrap_or_default();
        assert_eq!(oom, r#"{"type":"oom","id":"c1"}"#);
    }
}
