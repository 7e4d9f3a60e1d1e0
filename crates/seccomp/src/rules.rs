//! OCI `linux.seccomp` -> per-ABI rule sets, with the semantics runc gets
//! from libseccomp:
//!
//! - each name of a `syscalls[]` entry is its own rule; a rule whose action
//!   equals the default action is dropped; names no table knows are skipped,
//!   and a name an ABI lacks is skipped for that ABI;
//! - conditions on distinct arguments are ANDed; when several conditions
//!   name the same argument, runc turns each into a rule of its own (ORed);
//! - on 32-bit ABIs (x86, x32, arm) only the low 32 bits are compared;
//!   a MASKED_EQ with an empty mask is no condition at all;
//! - per syscall, an unconditional rule beats every conditional one (the
//!   first unconditional rule wins); identical conditions with another action
//!   are an error (libseccomp: EEXIST), as is a shorter chain with another
//!   action added after a longer one; a longer chain after a shorter one is dropped;
//! - conditional rules are tried in libseccomp's tree order (higher argument
//!   first, then EQ/NE/MASKED_EQ before LE/LT before GE/GT, then by value);
//! - on i386 the socket and SysV IPC calls are also filtered through the
//!   `socketcall`/`ipc` multiplexers (argument 0 is the call number).

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator};

use crate::action::{self, RET_USER_NOTIF};
use crate::arch::TargetArch;
use crate::error::{Error, Result, invalid};
use crate::flags;
use crate::syscalls::{Multiplexed, SyscallNumbers, multiplexed};

/// A comparison operator (`SCMP_CMP_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Ge,
    Gt,
    MaskedEq,
}

impl Op {
    /// libseccomp orders sibling nodes by this first (higher comes first).
    fn priority(self) -> u8 {
        match self {
            Op::Eq | Op::Ne | Op::MaskedEq => 3,
            Op::Lt | Op::Le => 2,
            Op::Ge | Op::Gt => 1,
        }
    }
}

/// One argument comparison: `(arg & mask) <op> datum`, `datum` already masked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Condition {
    pub(crate) arg: u8,
    pub(crate) op: Op,
    pub(crate) mask: u64,
    pub(crate) datum: u64,
}

/// Conditions (sorted by argument, all must hold) and the action when they do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) conditions: Vec<Condition>,
    pub(crate) action: u32,
}

/// What a filter does for one syscall number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SyscallRules {
    /// Always this action.
    Unconditional(u32),
    /// The first matching rule's action, else the default action.
    Conditional(Vec<Rule>),
}

/// The rules of one ABI.
#[derive(Clone, Debug)]
pub(crate) struct AbiRules {
    pub(crate) arch: TargetArch,
    pub(crate) syscalls: BTreeMap<u32, SyscallRules>,
    /// The largest syscall number the profile names on this ABI, when runc's
    /// ENOSYS stub covers it (syscalls above it get ENOSYS).
    pub(crate) enosys_above: Option<u32>,
}

/// A whole profile, resolved for one native architecture.
#[derive(Clone, Debug)]
pub(crate) struct Profile {
    pub(crate) default_action: u32,
    /// The native ABI first, then the compat ABIs the profile lists.
    pub(crate) abis: Vec<AbiRules>,
    /// seccomp(2) flags, including NEW_LISTENER when a rule notifies.
    pub(crate) flags: u32,
    /// Names skipped because no syscall table knows them.
    pub(crate) unknown_names: Vec<String>,
}

/// Resolves `spec` for a kernel whose native ABI is `native`.
pub(crate) fn resolve(spec: &LinuxSeccomp, native: TargetArch) -> Result<Profile> {
    let default_action =
        action::ret_value(spec.default_action(), spec.default_errno_ret(), || {
            "linux.seccomp.defaultErrnoRet".to_string()
        })?;
    if default_action == RET_USER_NOTIF {
        // The runtime must still talk to its parent after installing the filter.
        return Err(invalid(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }

    let (filter_abis, listed_abis) = abis(spec, native);
    let mut abis: Vec<AbiRules> = filter_abis
        .iter()
        .map(|&arch| AbiRules {
            arch,
            syscalls: BTreeMap::new(),
            enosys_above: None,
        })
        .collect();
    let mut unknown_names = Vec::new();
    let mut uses_notify = false;

    for (index, entry) in spec.syscalls().iter().flatten().enumerate() {
        let field = |suffix: &str| format!("linux.seccomp.syscalls[{index}]{suffix}");
        let action = action::ret_value(entry.action(), entry.errno_ret(), || field(".errnoRet"))?;
        let groups = condition_groups(entry.args().as_deref().unwrap_or_default(), &field)?;
        if entry.action() == LinuxSeccompAction::ScmpActNotify {
            uses_notify = true;
        }
        for (name_index, name) in entry.names().iter().enumerate() {
            if name.is_empty() {
                return Err(invalid(
                    field(&format!(".names[{name_index}]")),
                    "empty syscall name",
                ));
            }
            if action == RET_USER_NOTIF && name == "write" {
                // As in runc: the runtime writes the notify fd to its parent
                // after installing the filter, so notifying `write` would hang.
                return Err(invalid(
                    field(&format!(".names[{name_index}]")),
                    "SCMP_ACT_NOTIFY cannot be used for the write syscall",
                ));
            }
            let Some(numbers) = SyscallNumbers::of(name) else {
                if action != default_action {
                    unknown_names.push(name.clone());
                }
                continue;
            };
            // Resolve once per ABI: (number, multiplexer) on each.
            let resolved: Vec<(Option<u32>, Option<Multiplexed>)> = abis
                .iter()
                .map(|abi| (numbers.on(abi.arch), multiplexed(abi.arch, name)))
                .collect();
            // runc's ENOSYS stub counts every name of the profile; libseccomp
            // resolves the i386 multiplexed names to pseudo numbers, which never count.
            for (abi, (number, mux)) in abis.iter_mut().zip(&resolved) {
                if let (Some(number), None, true) = (number, mux, listed_abis.contains(&abi.arch)) {
                    abi.enosys_above = Some(abi.enosys_above.map_or(*number, |m| m.max(*number)));
                }
            }
            if action == default_action {
                continue;
            }
            for (abi, (number, mux)) in abis.iter_mut().zip(&resolved) {
                for conditions in &groups {
                    add_rule(abi, *number, *mux, name, conditions, action, index)?;
                }
            }
        }
    }

    let mut flags = flags::from_spec(spec.flags().as_deref().unwrap_or_default());
    if uses_notify {
        flags |= flags::NEW_LISTENER;
    }
    flags = flags::normalize(flags);
    if action::is_permissive(default_action) {
        abis.iter_mut().for_each(|abi| abi.enosys_above = None);
    }
    Ok(Profile {
        default_action,
        abis,
        flags,
        unknown_names,
    })
}

/// The ABIs the filter covers (native first, then listed compat ABIs) and
/// the ABIs the profile lists. Listed ABIs this kernel cannot run (another
/// architecture family, or one we have no table for) would be dead code in
/// the filter and are left out.
fn abis(spec: &LinuxSeccomp, native: TargetArch) -> (Vec<TargetArch>, Vec<TargetArch>) {
    let runnable = |arch: &TargetArch| *arch == native || native.compat().contains(arch);
    let mut listed: Vec<TargetArch> = spec
        .architectures()
        .iter()
        .flatten()
        .filter_map(|arch| TargetArch::from_oci(*arch, native))
        .filter(runnable)
        .collect();
    listed.dedup();
    let mut filter = vec![native];
    for arch in native.compat() {
        if listed.contains(arch) {
            filter.push(*arch);
        }
    }
    (filter, listed)
}

/// The condition sets of one `syscalls[]` entry: one set, or one set per
/// condition when two conditions name the same argument (runc's rule).
fn condition_groups(
    args: &[LinuxSeccompArg],
    field: &dyn Fn(&str) -> String,
) -> Result<Vec<Vec<Condition>>> {
    let mut conditions = Vec::with_capacity(args.len());
    for (index, arg) in args.iter().enumerate() {
        let arg_index = u8::try_from(arg.index())
            .ok()
            .filter(|i| *i < 6)
            .ok_or_else(|| {
                invalid(
                    field(&format!(".args[{index}].index")),
                    format!("{} is not a syscall argument (0 to 5)", arg.index()),
                )
            })?;
        let (op, mask, datum) = match arg.op() {
            LinuxSeccompOperator::ScmpCmpNe => (Op::Ne, u64::MAX, arg.value()),
            LinuxSeccompOperator::ScmpCmpLt => (Op::Lt, u64::MAX, arg.value()),
            LinuxSeccompOperator::ScmpCmpLe => (Op::Le, u64::MAX, arg.value()),
            LinuxSeccompOperator::ScmpCmpEq => (Op::Eq, u64::MAX, arg.value()),
            LinuxSeccompOperator::ScmpCmpGe => (Op::Ge, u64::MAX, arg.value()),
            LinuxSeccompOperator::ScmpCmpGt => (Op::Gt, u64::MAX, arg.value()),
            // For MASKED_EQ, `value` is the mask and `valueTwo` the expected value.
            LinuxSeccompOperator::ScmpCmpMaskedEq => {
                (Op::MaskedEq, arg.value(), arg.value_two().unwrap_or(0))
            }
        };
        conditions.push(Condition {
            arg: arg_index,
            op,
            mask,
            datum: datum & mask,
        });
    }
    let shares_an_argument = conditions
        .iter()
        .enumerate()
        .any(|(i, a)| conditions[..i].iter().any(|b| b.arg == a.arg));
    if shares_an_argument {
        Ok(conditions.into_iter().map(|c| vec![c]).collect())
    } else {
        conditions.sort_by_key(|c| c.arg);
        Ok(vec![conditions])
    }
}

/// Adapts conditions to `arch`: 32-bit ABIs compare the low word only, and
/// comparisons that cannot fail are dropped (as libseccomp does).
fn for_abi(arch: TargetArch, conditions: &[Condition]) -> Vec<Condition> {
    let width_mask = if arch.has_64bit_args() {
        u64::MAX
    } else {
        u64::from(u32::MAX)
    };
    conditions
        .iter()
        .map(|c| Condition {
            mask: c.mask & width_mask,
            datum: c.datum & width_mask,
            ..*c
        })
        .filter(|c| !(c.op == Op::MaskedEq && c.mask == 0))
        .collect()
}

/// Adds one rule for `name` (syscall `number` and/or reached through `mux` on this ABI).
fn add_rule(
    abi: &mut AbiRules,
    number: Option<u32>,
    mux: Option<Multiplexed>,
    name: &str,
    conditions: &[Condition],
    action: u32,
    index: usize,
) -> Result<()> {
    if let Some(mux) = mux {
        // The multiplexed path: argument 0 becomes the call number.
        let mut via_mux: Vec<Condition> =
            conditions.iter().filter(|c| c.arg != 0).copied().collect();
        via_mux.insert(
            0,
            Condition {
                arg: 0,
                op: Op::Eq,
                mask: u64::MAX,
                datum: mux.call,
            },
        );
        let rule = Rule {
            conditions: for_abi(abi.arch, &via_mux),
            action,
        };
        insert(abi, mux.multiplexer, rule, name, index)?;
    }
    if let Some(number) = number {
        let rule = Rule {
            conditions: for_abi(abi.arch, conditions),
            action,
        };
        insert(abi, number, rule, name, index)?;
    }
    Ok(())
}

/// Adds `rule` for syscall `number` the way libseccomp's database does.
fn insert(abi: &mut AbiRules, number: u32, rule: Rule, name: &str, index: usize) -> Result<()> {
    let conflict = |reason: &str| Error::ConflictingRules {
        rule: index,
        syscall: name.to_string(),
        reason: reason.to_string(),
    };
    let arch = abi.arch;
    let entry = abi.syscalls.entry(number);
    let existing = match entry {
        std::collections::btree_map::Entry::Vacant(vacant) => {
            vacant.insert(if rule.conditions.is_empty() {
                SyscallRules::Unconditional(rule.action)
            } else {
                SyscallRules::Conditional(vec![rule])
            });
            return Ok(());
        }
        std::collections::btree_map::Entry::Occupied(occupied) => occupied.into_mut(),
    };
    let rules = match existing {
        SyscallRules::Unconditional(_) => return Ok(()),
        SyscallRules::Conditional(_) if rule.conditions.is_empty() => {
            *existing = SyscallRules::Unconditional(rule.action);
            return Ok(());
        }
        SyscallRules::Conditional(rules) => rules,
    };
    let mut position = 0;
    while position < rules.len() {
        let old = &rules[position];
        if old.conditions.starts_with(&rule.conditions) {
            if old.action != rule.action {
                let reason = if old.conditions.len() == rule.conditions.len() {
                    "another rule matches the same arguments with a different action"
                } else {
                    "a rule with fewer conditions and a different action follows a rule it overlaps"
                };
                return Err(conflict(reason));
            }
            if old.conditions.len() == rule.conditions.len() {
                return Ok(());
            }
            // The new, shorter chain covers the old one.
            rules.remove(position);
            continue;
        }
        if rule.conditions.starts_with(&old.conditions) {
            // An earlier, shorter chain already covers this one.
            return Ok(());
        }
        position += 1;
    }
    let at = rules
        .iter()
        .position(|old| tree_less(arch, &old.conditions, &rule.conditions))
        .unwrap_or(rules.len());
    rules.insert(at, rule);
    Ok(())
}

/// One node of libseccomp's argument tree: a 32-bit comparison.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Node {
    /// `arg * 2`, plus one for the high word.
    level: u32,
    /// The operator of the condition the node comes from.
    op: Op,
    datum: u32,
    mask: u32,
}

/// The nodes a condition becomes: high word then low word on 64-bit ABIs.
fn nodes(arch: TargetArch, c: &Condition) -> impl Iterator<Item = Node> {
    let level = u32::from(c.arg) * 2;
    let low = Node {
        level,
        op: c.op,
        datum: c.datum as u32,
        mask: c.mask as u32,
    };
    let high = arch.has_64bit_args().then_some(Node {
        level: level + 1,
        op: c.op,
        datum: (c.datum >> 32) as u32,
        mask: (c.mask >> 32) as u32,
    });
    high.into_iter().chain(std::iter::once(low))
}

/// libseccomp's sibling order: is `a` "less" than `b` (so `b` goes first)?
fn node_less(a: &Node, b: &Node) -> bool {
    if a.level != b.level {
        return a.level < b.level;
    }
    if a.op.priority() != b.op.priority() {
        return a.op.priority() < b.op.priority();
    }
    match a.op {
        // Smaller values first for LT/LE.
        Op::Lt | Op::Le => a.datum > b.datum,
        _ => a.datum < b.datum,
    }
}

/// Whether the rule with conditions `a` sorts after the rule with `b` in
/// libseccomp's tree (decided by the first node where they differ).
fn tree_less(arch: TargetArch, a: &[Condition], b: &[Condition]) -> bool {
    let a_nodes = a.iter().flat_map(|c| nodes(arch, c));
    let mut b_nodes = b.iter().flat_map(|c| nodes(arch, c));
    for a_node in a_nodes {
        let Some(b_node) = b_nodes.next() else {
            return false;
        };
        if a_node != b_node {
            return node_less(&a_node, &b_node);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{RET_ALLOW, RET_ERRNO};

    fn profile(json: &str) -> Result<Profile> {
        let spec: LinuxSeccomp = serde_json::from_str(json).unwrap();
        resolve(&spec, TargetArch::X86_64)
    }

    fn rules(p: &Profile, arch: TargetArch, name: &str) -> Option<SyscallRules> {
        let abi = p.abis.iter().find(|a| a.arch == arch)?;
        abi.syscalls
            .get(&crate::syscall_number(arch, name)?)
            .cloned()
    }

    #[test]
    fn rule_with_default_action_is_dropped() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["getpid"],"action":"SCMP_ACT_ERRNO"},
                {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
                {"names":["gettid"],"action":"SCMP_ACT_ERRNO","errnoRet":2}]}"#,
        )
        .unwrap();
        assert_eq!(rules(&p, TargetArch::X86_64, "getpid"), None);
        assert_eq!(rules(&p, TargetArch::X86_64, "getppid"), None);
        assert_eq!(
            rules(&p, TargetArch::X86_64, "gettid"),
            Some(SyscallRules::Unconditional(RET_ERRNO | 2))
        );
    }

    #[test]
    fn unconditional_beats_conditional_and_first_unconditional_wins() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":5,"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
                {"names":["getpid"],"action":"SCMP_ACT_ALLOW"},
                {"names":["getpid"],"action":"SCMP_ACT_LOG"}]}"#,
        )
        .unwrap();
        assert_eq!(
            rules(&p, TargetArch::X86_64, "getpid"),
            Some(SyscallRules::Unconditional(RET_ALLOW))
        );
    }

    #[test]
    fn same_argument_twice_means_separate_rules() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["getpid"],"action":"SCMP_ACT_ALLOW","args":[
                    {"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]}]}"#,
        )
        .unwrap();
        let Some(SyscallRules::Conditional(r)) = rules(&p, TargetArch::X86_64, "getpid") else {
            panic!()
        };
        assert_eq!(r.len(), 2);
        // Larger value first, as libseccomp orders EQ siblings.
        assert_eq!(r[0].conditions[0].datum, 2);
    }

    #[test]
    fn identical_conditions_with_other_action_conflict() {
        let err = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["getpid"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
                {"names":["getpid"],"action":"SCMP_ACT_LOG","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("syscalls[1]: syscall getpid"),
            "{err}"
        );
    }

    #[test]
    fn x86_socket_rules_cover_socketcall() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"syscalls":[
                {"names":["socket"],"action":"SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        assert_eq!(
            rules(&p, TargetArch::X86, "socket"),
            Some(SyscallRules::Unconditional(RET_ERRNO | 1))
        );
        let Some(SyscallRules::Conditional(r)) = rules(&p, TargetArch::X86, "socketcall") else {
            panic!()
        };
        assert_eq!(
            r[0].conditions,
            vec![Condition {
                arg: 0,
                op: Op::Eq,
                mask: 0xffff_ffff,
                datum: 1
            }]
        );
    }

    #[test]
    fn bad_arguments_name_the_field() {
        let err = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["getpid"],"action":"SCMP_ACT_ALLOW"},
                {"names":["getpid"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.seccomp.syscalls[1].args[0].index: 6 is not a syscall argument (0 to 5)"
        );
        let err = profile(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#).unwrap_err();
        assert!(
            err.to_string().starts_with("linux.seccomp.defaultAction:"),
            "{err}"
        );
    }

    #[test]
    fn enosys_bound_uses_listed_abis_only() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86"],"syscalls":[
                {"names":["getpid","clone3","socket"],"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        assert_eq!(p.abis[0].enosys_above, None);
        assert_eq!(p.abis[1].arch, TargetArch::X86);
        assert_eq!(p.abis[1].enosys_above, Some(435));
    }
}
