//! The checker's report, as the runner reads it.

use crate::harness::Fail;
use serde_json::Value;

pub struct Report(pub Value);

impl Report {
    /// Parses the last JSON object line in `text` (a pty may add `\r`).
    pub fn parse(text: &str) -> Result<Report, Fail> {
        text.lines()
            .rev()
            .map(|l| l.trim())
            .find(|l| l.starts_with('{'))
            .and_then(|l| serde_json::from_str(l).ok())
            .map(Report)
            .ok_or_else(|| {
                Fail::Fail(format!(
                    "no checker report in output: {:?}",
                    text.chars().take(300).collect::<String>()
                ))
            })
    }

    pub fn str(&self, key: &str) -> String {
        self.0[key].as_str().unwrap_or_default().to_string()
    }

    pub fn ids(&self, key: &str) -> Vec<u64> {
        self.0[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    }

    pub fn ns(&self, ty: &str) -> Option<u64> {
        self.0["ns"][ty].as_u64()
    }

    pub fn cap(&self, set: &str) -> u64 {
        u64::from_str_radix(self.0["caps"][set].as_str().unwrap_or(""), 16).unwrap_or(u64::MAX)
    }

    pub fn env(&self) -> Vec<String> {
        self.0["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn rlimit(&self, name: &str) -> Option<(u64, u64)> {
        let a = self.0["rlimits"][name].as_array()?;
        Some((a.first()?.as_u64()?, a.get(1)?.as_u64()?))
    }

    /// The mount whose target is `target` (the last one: the one on top).
    pub fn mount(&self, target: &str) -> Option<&Value> {
        self.0["mounts"]
            .as_array()?
            .iter()
            .rev()
            .find(|m| m["target"] == target)
    }

    /// A probe's result for a path.
    pub fn probe(&self, kind: &str, path: &str) -> &Value {
        &self.0["probes"][kind][path]
    }
}

/// The comma-separated options of a mountinfo field as a list.
pub fn opts(m: &Value, field: &str) -> Vec<String> {
    m[field]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .map(String::from)
        .collect()
}
