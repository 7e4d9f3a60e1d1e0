//! Device rules: the spec's ordered allow/deny list folded into one state, the way the v1
//! devices controller folds the writes it receives: a default (allow all or deny all) plus
//! exceptions. Type `a` resets everything; a rule with the default's verdict removes access
//! from an exception with the same type/major/minor; any other rule adds an exception.
//! v1 is then written as "reset + exceptions", and the v2 eBPF program checks the same state,
//! so both versions behave alike.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{Error, Result};

/// Access bits, as the eBPF device context encodes them.
pub(crate) const MKNOD: u8 = 1;
pub(crate) const READ: u8 = 2;
pub(crate) const WRITE: u8 = 4;
pub(crate) const ALL_ACCESS: u8 = MKNOD | READ | WRITE;

/// Device type of an exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Block,
    Char,
}

impl Kind {
    pub(crate) fn letter(self) -> char {
        match self {
            Kind::Block => 'b',
            Kind::Char => 'c',
        }
    }
}

/// One exception to the default verdict. `None` is a wildcard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Exception {
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl Exception {
    /// The line the v1 devices.allow/devices.deny files take: "c 1:3 rwm".
    pub(crate) fn v1_line(&self) -> String {
        let num = |n: Option<u32>| n.map_or("*".to_string(), |v| v.to_string());
        let mut access = String::new();
        for (bit, c) in [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(c);
            }
        }
        format!(
            "{} {}:{} {access}",
            self.kind.letter(),
            num(self.major),
            num(self.minor)
        )
    }
}

/// The folded rule list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeviceState {
    pub default_allow: bool,
    pub exceptions: Vec<Exception>,
}

enum Parsed {
    All { allow: bool },
    One { allow: bool, ex: Exception },
}

fn number(v: Option<i64>, what: &str) -> Result<Option<u32>> {
    match v {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| Error::InvalidResource {
                field: "devices",
                reason: format!("{what} {n} is out of range"),
            }),
    }
}

fn parse(rule: &LinuxDeviceCgroup) -> Result<Parsed> {
    let allow = rule.allow();
    let kind = match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => return Ok(Parsed::All { allow }),
        LinuxDeviceType::B => Kind::Block,
        LinuxDeviceType::C | LinuxDeviceType::U => Kind::Char,
        LinuxDeviceType::P => {
            return Err(Error::InvalidResource {
                field: "devices",
                reason: "type \"p\" (FIFO) cannot be controlled by the devices cgroup".into(),
            });
        }
    };
    let mut access = 0;
    for c in rule.access().as_deref().unwrap_or("rwm").chars() {
        access |= match c {
            'r' => READ,
            'w' => WRITE,
            'm' => MKNOD,
            other => {
                return Err(Error::InvalidResource {
                    field: "devices",
                    reason: format!("invalid access {other:?} (expected a subset of \"rwm\")"),
                });
            }
        };
    }
    if access == 0 {
        access = ALL_ACCESS;
    }
    Ok(Parsed::One {
        allow,
        ex: Exception {
            kind,
            major: number(rule.major(), "major")?,
            minor: number(rule.minor(), "minor")?,
            access,
        },
    })
}

impl DeviceState {
    /// Folds `rules` in order, starting from "deny all" as runc does.
    pub(crate) fn from_rules(rules: &[LinuxDeviceCgroup]) -> Result<Self> {
        let mut state = DeviceState {
            default_allow: false,
            exceptions: Vec::new(),
        };
        for rule in rules {
            match parse(rule)? {
                Parsed::All { allow } => {
                    state.default_allow = allow;
                    state.exceptions.clear();
                }
                Parsed::One { allow, ex } => state.add(allow, ex),
            }
        }
        Ok(state)
    }

    fn add(&mut self, allow: bool, ex: Exception) {
        let same = |e: &Exception| e.kind == ex.kind && e.major == ex.major && e.minor == ex.minor;
        if allow == self.default_allow {
            // Same verdict as the default: take that access out of the matching exception.
            for e in self.exceptions.iter_mut().filter(|e| same(e)) {
                e.access &= !ex.access;
            }
            self.exceptions.retain(|e| e.access != 0);
        } else if let Some(e) = self.exceptions.iter_mut().find(|e| same(e)) {
            e.access |= ex.access;
        } else {
            self.exceptions.push(ex);
        }
    }

    /// What the state decides for one access (used by tests to check the eBPF program's logic).
    #[cfg(test)]
    pub(crate) fn decide(&self, kind: Kind, major: u32, minor: u32, access: u8) -> bool {
        let hit = |e: &&Exception| {
            e.kind == kind
                && e.major.is_none_or(|m| m == major)
                && e.minor.is_none_or(|m| m == minor)
        };
        if self.default_allow {
            !self
                .exceptions
                .iter()
                .filter(hit)
                .any(|e| e.access & access != 0)
        } else {
            self.exceptions
                .iter()
                .filter(hit)
                .any(|e| access & !e.access == 0)
        }
    }
}

#[cfg(test)]
pub(crate) fn rule(
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

#[cfg(test)]
mod tests {
    use super::*;
    use LinuxDeviceType::{A, B, C};

    #[test]
    fn deny_all_then_allow() {
        let s =
            DeviceState::from_rules(&[rule(false, A, -1, -1, "rwm"), rule(true, C, 1, 3, "rw")])
                .ok();
        let Some(s) = s else { panic!("rules rejected") };
        assert!(!s.default_allow);
        assert_eq!(s.exceptions.len(), 1);
        assert_eq!(s.exceptions[0].v1_line(), "c 1:3 rw");
        assert!(s.decide(Kind::Char, 1, 3, READ | WRITE));
        assert!(!s.decide(Kind::Char, 1, 3, MKNOD));
        assert!(!s.decide(Kind::Char, 1, 5, READ));
    }

    #[test]
    fn later_deny_removes_access() {
        let s = DeviceState::from_rules(&[rule(true, C, 1, 3, "rwm"), rule(false, C, 1, 3, "w")]);
        let Ok(s) = s else { panic!("rules rejected") };
        assert!(s.decide(Kind::Char, 1, 3, READ));
        assert!(!s.decide(Kind::Char, 1, 3, WRITE));
    }

    #[test]
    fn allow_all_with_deny_exceptions_and_wildcards() {
        let s =
            DeviceState::from_rules(&[rule(true, A, -1, -1, "rwm"), rule(false, B, 8, -1, "rw")]);
        let Ok(s) = s else { panic!("rules rejected") };
        assert!(s.default_allow);
        assert_eq!(s.exceptions[0].v1_line(), "b 8:* rw");
        assert!(!s.decide(Kind::Block, 8, 1, READ));
        assert!(s.decide(Kind::Block, 8, 1, MKNOD));
        assert!(s.decide(Kind::Char, 8, 1, READ));
    }

    #[test]
    fn bad_rules_are_errors() {
        assert!(DeviceState::from_rules(&[rule(true, C, 1, 3, "rx")]).is_err());
        assert!(DeviceState::from_rules(&[rule(true, LinuxDeviceType::P, 1, 3, "r")]).is_err());
        assert!(DeviceState::from_rules(&[rule(true, C, 1 << 40, 3, "r")]).is_err());
    }
}
