//! Unit properties for a container's scope: the `linux.resources` systemd knows on cgroup v2
//! (systemd.resource-control(5)), and `org.systemd.property.*` annotations.

use std::collections::HashMap;

use oci_spec::runtime::LinuxResources;

use super::SystemdError;
use super::dbus::Value;
use crate::controllers::cpu::shares_to_weight;
use crate::controllers::memory::swap_v2;
use crate::error::Result;

/// systemd's "no limit" for byte and count properties.
const INFINITY: u64 = u64::MAX;

/// A limit where -1 means unlimited.
fn limit(v: i64) -> u64 {
    if v < 0 { INFINITY } else { v as u64 }
}

/// The properties matching `resources`; fields absent or zero are left to systemd's defaults.
pub(crate) fn resource_properties(r: &LinuxResources) -> Result<Vec<(String, Value)>> {
    let mut out: Vec<(String, Value)> = Vec::new();
    let mut put = |k: &str, v: Value| out.push((k.to_string(), v));
    if let Some(m) = r.memory() {
        let mem = m.limit().filter(|&v| v != 0);
        if let Some(v) = mem {
            put("MemoryMax", Value::U64(limit(v)));
        }
        if let Some(v) = m.reservation().filter(|&v| v != 0) {
            put("MemoryLow", Value::U64(limit(v)));
        }
        if let Some(s) = swap_v2(m.swap().unwrap_or(0), mem.unwrap_or(0))? {
            put("MemorySwapMax", Value::U64(limit(s)));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|&s| s != 0) {
            put("CPUWeight", Value::U64(shares_to_weight(s)));
        }
        let period = c.period().filter(|&p| p != 0);
        if let Some(p) = period {
            put("CPUQuotaPeriodUSec", Value::U64(p));
        }
        match c.quota() {
            Some(q) if q > 0 => {
                // systemd keeps the quota as CPU time per second, in steps of 10 ms; round up
                // so that the limit is never tighter than asked.
                let per_sec = (q as u64 * 1_000_000).div_ceil(period.unwrap_or(100_000));
                put(
                    "CPUQuotaPerSecUSec",
                    Value::U64(per_sec.div_ceil(10_000) * 10_000),
                );
            }
            Some(q) if q < 0 => put("CPUQuotaPerSecUSec", Value::U64(INFINITY)),
            _ => {}
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            put("AllowedCPUs", bitmask("linux.resources.cpu.cpus", cpus)?);
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            put(
                "AllowedMemoryNodes",
                bitmask("linux.resources.cpu.mems", mems)?,
            );
        }
    }
    if let Some(p) = r.pids() {
        if p.limit() != 0 {
            put("TasksMax", Value::U64(limit(p.limit())));
        }
    }
    Ok(out)
}

/// A cpuset list ("0-3,6") as systemd's byte mask: bit n of byte n/8 is CPU (or node) n.
fn bitmask(field: &'static str, list: &str) -> Result<Value> {
    let bad = || crate::Error::InvalidResource {
        field,
        reason: format!("{list:?} is not a list of numbers and ranges"),
    };
    let mut bytes: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<usize>(), b.parse::<usize>()),
            None => (part.parse::<usize>(), part.parse::<usize>()),
        };
        let (Ok(lo), Ok(hi)) = (lo, hi) else {
            return Err(bad());
        };
        if lo > hi || hi >= 1 << 16 {
            return Err(bad());
        }
        for n in lo..=hi {
            if bytes.len() <= n / 8 {
                bytes.resize(n / 8 + 1, 0);
            }
            bytes[n / 8] |= 1 << (n % 8);
        }
    }
    Ok(Value::Array(
        "y".into(),
        bytes.into_iter().map(Value::Byte).collect(),
    ))
}

const ANNOTATION_PREFIX: &str = "org.systemd.property.";

/// Properties given as `org.systemd.property.NAME` annotations, their values in GVariant text
/// form: `true`, `false`, numbers (`123` is an int32, `uint64 123` or `@t 123` typed), and
/// quoted strings.
pub(crate) fn annotation_properties(
    annotations: &HashMap<String, String>,
) -> std::result::Result<Vec<(String, Value)>, SystemdError> {
    let mut keys: Vec<&String> = annotations
        .keys()
        .filter(|k| k.starts_with(ANNOTATION_PREFIX))
        .collect();
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        let name = &key[ANNOTATION_PREFIX.len()..];
        let invalid = |reason: String| SystemdError::InvalidProperty {
            key: key.clone(),
            reason,
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid(format!("{name:?} is not a property name")));
        }
        // systemd documents time properties in seconds ("TimeoutStopSec") but takes them over
        // D-Bus in microseconds ("TimeoutStopUSec"); the seconds name would be refused there.
        if name.ends_with("Sec") && !name.ends_with("USec") {
            return Err(invalid(format!(
                "time properties are set in microseconds: use {}USec",
                &name[..name.len() - 3]
            )));
        }
        let value = parse_gvariant(&annotations[key]).map_err(invalid)?;
        out.push((name.to_string(), value));
    }
    Ok(out)
}

/// The GVariant text forms that unit properties use.
fn parse_gvariant(text: &str) -> std::result::Result<Value, String> {
    let t = text.trim();
    match t {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    for quote in ['\'', '"'] {
        if let Some(inner) = t
            .strip_prefix(quote)
            .and_then(|s| s.strip_suffix(quote))
            .filter(|_| t.len() >= 2)
        {
            if inner.contains(quote) || inner.contains('\\') {
                return Err(format!("{text:?}: escapes in strings are not supported"));
            }
            return Ok(Value::Str(inner.to_string()));
        }
    }
    let (ty, num) = match t.split_once(char::is_whitespace) {
        Some((ty, num)) => (ty, num.trim()),
        None => ("int32", t),
    };
    let bad = || format!("{text:?} is not a GVariant boolean, number or quoted string");
    Ok(match ty {
        "byte" | "@y" => Value::Byte(num.parse().map_err(|_| bad())?),
        "int16" | "@n" => Value::I16(num.parse().map_err(|_| bad())?),
        "uint16" | "@q" => Value::U16(num.parse().map_err(|_| bad())?),
        "int32" | "@i" => Value::I32(num.parse().map_err(|_| bad())?),
        "uint32" | "@u" => Value::U32(num.parse().map_err(|_| bad())?),
        "int64" | "@x" => Value::I64(num.parse().map_err(|_| bad())?),
        "uint64" | "@t" => Value::U64(num.parse().map_err(|_| bad())?),
        "double" | "@d" => Value::F64(num.parse().map_err(|_| bad())?),
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(json: &str) -> Vec<(String, Value)> {
        let r: LinuxResources = serde_json::from_str(json).unwrap_or_default();
        resource_properties(&r).unwrap_or_default()
    }

    fn get<'a>(p: &'a [(String, Value)], k: &str) -> Option<&'a Value> {
        p.iter().find(|(n, _)| n == k).map(|(_, v)| v)
    }

    #[test]
    fn resources_become_properties() {
        let p = props(
            r#"{"memory":{"limit":1073741824,"reservation":-1,"swap":2147483648},
                "cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0-1,9"},
                "pids":{"limit":-1}}"#,
        );
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(1 << 30)));
        assert_eq!(get(&p, "MemoryLow"), Some(&Value::U64(INFINITY)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&Value::U64(1 << 30)));
        assert_eq!(get(&p, "CPUWeight"), Some(&Value::U64(39)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(500_000)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(100_000)));
        assert_eq!(
            get(&p, "AllowedCPUs"),
            Some(&Value::Array(
                "y".into(),
                vec![Value::Byte(0b11), Value::Byte(0b10)]
            ))
        );
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(INFINITY)));
    }

    #[test]
    fn quota_rounds_up_to_ten_milliseconds() {
        let p = props(r#"{"cpu":{"quota":12345,"period":100000}}"#);
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(130_000)));
        let p = props(r#"{"cpu":{"quota":-1}}"#);
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(INFINITY)));
    }

    #[test]
    fn bad_cpu_lists_name_the_field() {
        let r: LinuxResources =
            serde_json::from_str(r#"{"cpu":{"cpus":"1-x"}}"#).unwrap_or_default();
        let err = resource_properties(&r).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("linux.resources.cpu.cpus")),
            "{err:?}"
        );
    }

    #[test]
    fn annotations_in_gvariant_text() {
        let mut a = HashMap::new();
        a.insert(
            "org.systemd.property.TimeoutStopUSec".to_string(),
            "uint64 123456789".to_string(),
        );
        a.insert(
            "org.systemd.property.CollectMode".to_string(),
            "'inactive-or-failed'".to_string(),
        );
        a.insert(
            "org.systemd.property.SendSIGHUP".to_string(),
            "true".to_string(),
        );
        a.insert("unrelated".to_string(), "x".to_string());
        let p = annotation_properties(&a).unwrap_or_default();
        assert_eq!(p.len(), 3);
        assert_eq!(get(&p, "TimeoutStopUSec"), Some(&Value::U64(123_456_789)));
        assert_eq!(
            get(&p, "CollectMode"),
            Some(&Value::Str("inactive-or-failed".into()))
        );
        assert_eq!(get(&p, "SendSIGHUP"), Some(&Value::Bool(true)));
    }

    #[test]
    fn bad_annotations_say_why() {
        for (k, v, why) in [
            (
                "org.systemd.property.TimeoutStopSec",
                "uint64 1",
                "TimeoutStopUSec",
            ),
            ("org.systemd.property.X", "[1, 2]", "not a GVariant"),
            ("org.systemd.property.X", "uint64 -1", "not a GVariant"),
            ("org.systemd.property.A/B", "1", "not a property name"),
        ] {
            let mut a = HashMap::new();
            a.insert(k.to_string(), v.to_string());
            let err = annotation_properties(&a).err().map(|e| e.to_string());
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.contains(why) && e.contains(k)),
                "{k}={v}: {err:?}"
            );
        }
    }
}
