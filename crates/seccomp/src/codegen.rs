//! Resolved rules -> a BPF program.
//!
//! Layout (first instruction first):
//!
//! ```text
//!   ld [arch]; jeq AUDIT_ARCH_<native> -> section; jeq <compat> -> section ...; ret KILL (bad arch)
//!   section: ld [nr]; a balanced tree of `jge` over syscall-number intervals -> ret / rule block
//!   rule blocks: argument checks; first matching rule -> its ret, else -> default ret
//!   shared rets
//! ```
//!
//! Each section maps every 32-bit syscall number to a result, and that map
//! is piecewise constant, so it is stored as intervals and searched with
//! `jge` only. It composes runc's ENOSYS stub (numbers above the highest one
//! the profile names get ENOSYS), libseccomp's x32 handling (without x32 in
//! the filter, x32 numbers are a bad arch; -1 gets the default action) and
//! the per-syscall rules. Allowed syscalls reach `ret ALLOW` without reading
//! any argument, so the kernel's constant-action cache (Linux 5.11+) skips
//! the filter entirely for them.

use std::collections::{BTreeMap, BTreeSet};

use crate::action::{RET_BAD_ARCH, RET_ENOSYS};
use crate::arch::{AUDIT_ARCH_X86_64, TargetArch, X32_SYSCALL_BIT};
use crate::bpf::{
    Assembler, BPF_JEQ_K, BPF_JGE_K, BPF_JGT_K, Instruction, Label, MAX_INSTRUCTIONS, OFFSET_ARCH,
    OFFSET_NR, offset_arg_low,
};
use crate::error::{Error, Result};
use crate::rules::{AbiRules, Condition, Op, Profile, Rule, SyscallRules};

/// What a syscall number leads to inside one section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Ret(u32),
    /// The argument checks of this syscall number.
    Rules(u32),
}

/// All ABIs that share one `seccomp_data.arch` value.
struct Section<'a> {
    audit_arch: u32,
    abis: Vec<&'a AbiRules>,
}

impl Section<'_> {
    fn abi(&self, arch: TargetArch) -> Option<&AbiRules> {
        self.abis.iter().copied().find(|abi| abi.arch == arch)
    }

    fn lookup(&self, nr: u32) -> Option<(TargetArch, &SyscallRules)> {
        self.abis
            .iter()
            .find_map(|abi| abi.syscalls.get(&nr).map(|rules| (abi.arch, rules)))
    }

    /// The result for syscall `nr`, before argument checks.
    fn target(&self, nr: u32, default_action: u32) -> Target {
        if self.audit_arch == AUDIT_ARCH_X86_64 {
            // runc's stub tells x32 from x86_64 by bit 30 alone.
            let abi = if nr & X32_SYSCALL_BIT != 0 {
                TargetArch::X32
            } else {
                TargetArch::X86_64
            };
            if let Some(max) = self.abi(abi).and_then(|abi| abi.enosys_above) {
                if nr > max {
                    return Target::Ret(RET_ENOSYS);
                }
            }
            // libseccomp: without x32 in the filter, x32 numbers are a bad arch,
            // except -1, which tracers use to skip a syscall.
            if self.abi(TargetArch::X32).is_none() && nr >= X32_SYSCALL_BIT {
                return Target::Ret(if nr == u32::MAX {
                    default_action
                } else {
                    RET_BAD_ARCH
                });
            }
        } else if let Some(max) = self.abis[0].enosys_above {
            if nr > max {
                return Target::Ret(RET_ENOSYS);
            }
        }
        match self.lookup(nr) {
            Some((_, SyscallRules::Unconditional(action))) => Target::Ret(*action),
            Some((_, SyscallRules::Conditional(_))) => Target::Rules(nr),
            None => Target::Ret(default_action),
        }
    }

    /// The section's number -> target map as sorted, merged intervals
    /// `(first number, target)` covering all of u32.
    fn intervals(&self, default_action: u32) -> Vec<(u32, Target)> {
        let mut starts: Vec<u32> = vec![0, X32_SYSCALL_BIT, 0x8000_0000, 0xc000_0000, u32::MAX];
        for abi in &self.abis {
            for &nr in abi.syscalls.keys() {
                starts.push(nr);
                starts.extend(nr.checked_add(1));
            }
            if let Some(max) = abi.enosys_above {
                starts.extend(max.checked_add(1));
            }
        }
        starts.sort_unstable();
        starts.dedup();
        let mut intervals: Vec<(u32, Target)> = Vec::with_capacity(starts.len());
        for start in starts {
            let target = self.target(start, default_action);
            if intervals.last().is_none_or(|(_, last)| *last != target) {
                intervals.push((start, target));
            }
        }
        intervals
    }
}

/// Compiles `profile` (resolved for `native`) to a program.
pub(crate) fn generate(profile: &Profile, native: TargetArch) -> Result<Vec<Instruction>> {
    let sections = sections(profile, native);
    let mut asm = Assembler::default();

    // Shared returns, emitted first so that they end the program.
    let mut actions: BTreeSet<u32> = [profile.default_action, RET_BAD_ARCH].into();
    for abi in &profile.abis {
        if abi.enosys_above.is_some() {
            actions.insert(RET_ENOSYS);
        }
        for rules in abi.syscalls.values() {
            match rules {
                SyscallRules::Unconditional(action) => {
                    actions.insert(*action);
                }
                SyscallRules::Conditional(rules) => actions.extend(rules.iter().map(|r| r.action)),
            }
        }
    }
    let rets: BTreeMap<u32, Label> = actions.into_iter().map(|a| (a, asm.ret(a))).collect();
    let ret = |action: u32| rets[&action];
    let default = ret(profile.default_action);

    let mut section_starts = Vec::with_capacity(sections.len());
    for section in sections.iter().rev() {
        // Argument checks of every conditional syscall in the section.
        let mut blocks: BTreeMap<u32, Label> = BTreeMap::new();
        for abi in &section.abis {
            for (&nr, rules) in abi.syscalls.iter().rev() {
                if let SyscallRules::Conditional(rules) = rules {
                    let mut next = default;
                    for rule in rules.iter().rev() {
                        next = emit_rule(&mut asm, abi.arch, rule, ret(rule.action), next);
                    }
                    blocks.insert(nr, next);
                }
            }
        }
        let labels: Vec<(u32, Label)> = section
            .intervals(profile.default_action)
            .into_iter()
            .map(|(start, target)| {
                let label = match target {
                    Target::Ret(action) => ret(action),
                    Target::Rules(nr) => blocks[&nr],
                };
                (start, label)
            })
            .collect();
        emit_search(&mut asm, &labels);
        section_starts.push((section.audit_arch, asm.load(OFFSET_NR)));
    }

    // Architecture dispatch; anything else is a bad arch.
    let mut next = ret(RET_BAD_ARCH);
    for (audit_arch, start) in section_starts {
        next = asm.jump(BPF_JEQ_K, audit_arch, start, next);
    }
    asm.load(OFFSET_ARCH);

    let program = asm.finish();
    if program.len() > MAX_INSTRUCTIONS {
        return Err(Error::ProgramTooLarge(program.len()));
    }
    Ok(program)
}

/// Groups the profile's ABIs by the arch value the kernel reports, native first.
fn sections(profile: &Profile, native: TargetArch) -> Vec<Section<'_>> {
    let mut sections: Vec<Section<'_>> = Vec::new();
    for abi in &profile.abis {
        let audit_arch = abi.arch.audit_arch();
        match sections.iter_mut().find(|s| s.audit_arch == audit_arch) {
            Some(section) => section.abis.push(abi),
            None => sections.push(Section {
                audit_arch,
                abis: vec![abi],
            }),
        }
    }
    sections.sort_by_key(|s| s.audit_arch != native.audit_arch());
    sections
}

/// A balanced binary search over `intervals` (sorted by start, covering u32).
fn emit_search(asm: &mut Assembler, intervals: &[(u32, Label)]) -> Label {
    match intervals {
        [] => unreachable_label(asm),
        [(_, only)] => *only,
        _ => {
            let middle = intervals.len() / 2;
            let upper = emit_search(asm, &intervals[middle..]);
            let lower = emit_search(asm, &intervals[..middle]);
            asm.jump(BPF_JGE_K, intervals[middle].0, upper, lower)
        }
    }
}

/// Intervals always cover u32, so this is never reached; kill rather than panic.
fn unreachable_label(asm: &mut Assembler) -> Label {
    asm.ret(RET_BAD_ARCH)
}

/// One rule: all conditions must hold to reach `on_match`, else `on_miss`.
fn emit_rule(
    asm: &mut Assembler,
    arch: TargetArch,
    rule: &Rule,
    on_match: Label,
    on_miss: Label,
) -> Label {
    let mut next = on_match;
    for condition in rule.conditions.iter().rev() {
        next = if arch.has_64bit_args() {
            emit_condition_64(asm, condition, next, on_miss)
        } else {
            emit_condition_32(asm, condition, next, on_miss)
        };
    }
    next
}

/// A comparison of the low word only (32-bit ABIs).
fn emit_condition_32(asm: &mut Assembler, c: &Condition, pass: Label, fail: Label) -> Label {
    let datum = c.datum as u32;
    match c.op {
        Op::Eq | Op::MaskedEq => asm.jump(BPF_JEQ_K, datum, pass, fail),
        Op::Ne => asm.jump(BPF_JEQ_K, datum, fail, pass),
        Op::Gt => asm.jump(BPF_JGT_K, datum, pass, fail),
        Op::Ge => asm.jump(BPF_JGE_K, datum, pass, fail),
        Op::Lt => asm.jump(BPF_JGE_K, datum, fail, pass),
        Op::Le => asm.jump(BPF_JGT_K, datum, fail, pass),
    };
    load_masked(asm, offset_arg_low(c.arg), c.mask as u32)
}

/// A 64-bit comparison made of 32-bit ones, high word first, the way libseccomp splits it:
/// GT/GE: `hi > H` passes; `hi == H && lo >(=) L` passes. LT/LE: the mirror image.
fn emit_condition_64(asm: &mut Assembler, c: &Condition, pass: Label, fail: Label) -> Label {
    let (high, low) = ((c.datum >> 32) as u32, c.datum as u32);
    let (high_mask, low_mask) = ((c.mask >> 32) as u32, c.mask as u32);
    let low_offset = offset_arg_low(c.arg);
    let high_offset = low_offset + 4;
    match c.op {
        Op::Eq | Op::MaskedEq => {
            // A masked half with an empty mask always matches.
            let after_high = if low_mask == 0 {
                pass
            } else {
                asm.jump(BPF_JEQ_K, low, pass, fail);
                load_masked(asm, low_offset, low_mask)
            };
            if high_mask == 0 {
                return after_high;
            }
            asm.jump(BPF_JEQ_K, high, after_high, fail);
            load_masked(asm, high_offset, high_mask)
        }
        Op::Ne => {
            asm.jump(BPF_JEQ_K, low, fail, pass);
            let check_low = asm.load(low_offset);
            asm.jump(BPF_JEQ_K, high, check_low, pass);
            asm.load(high_offset)
        }
        Op::Gt | Op::Ge => {
            let code = if c.op == Op::Gt { BPF_JGT_K } else { BPF_JGE_K };
            asm.jump(code, low, pass, fail);
            let check_low = asm.load(low_offset);
            let high_equal = asm.jump(BPF_JEQ_K, high, check_low, fail);
            asm.jump(BPF_JGT_K, high, pass, high_equal);
            asm.load(high_offset)
        }
        Op::Lt | Op::Le => {
            let code = if c.op == Op::Lt { BPF_JGE_K } else { BPF_JGT_K };
            asm.jump(code, low, fail, pass);
            let check_low = asm.load(low_offset);
            let high_equal = asm.jump(BPF_JEQ_K, high, check_low, pass);
            asm.jump(BPF_JGT_K, high, fail, high_equal);
            asm.load(high_offset)
        }
    }
}

/// `ld [offset]`, then `and #mask` unless the mask keeps every bit
/// (emitted backwards: the `and` first).
fn load_masked(asm: &mut Assembler, offset: u32, mask: u32) -> Label {
    if mask != u32::MAX {
        asm.and(mask);
    }
    asm.load(offset)
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::LinuxSeccomp;

    use super::*;
    use crate::action::{RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS, RET_LOG, RET_TRAP};
    use crate::arch::{AUDIT_ARCH_AARCH64, AUDIT_ARCH_ARM, AUDIT_ARCH_I386};
    use crate::bpf::run;
    use crate::syscalls::syscall_number;

    const EPERM: u32 = RET_ERRNO | 1;

    fn compile(json: &str, native: TargetArch) -> Vec<Instruction> {
        let spec: LinuxSeccomp = serde_json::from_str(json).unwrap();
        crate::compile_for(&spec, native).unwrap().program
    }

    fn nr(arch: TargetArch, name: &str) -> u32 {
        syscall_number(arch, name).unwrap()
    }

    fn docker() -> LinuxSeccomp {
        let config: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../fixtures/docker-20.10-default.json"
            ))
            .unwrap(),
        )
        .unwrap();
        serde_json::from_value(config["linux"]["seccomp"].clone()).unwrap()
    }

    #[test]
    fn docker_profile_semantics() {
        let program = crate::compile_for(&docker(), TargetArch::X86_64)
            .unwrap()
            .program;
        let x64 = |name: &str, args: [u64; 6]| {
            run(
                &program,
                AUDIT_ARCH_X86_64,
                nr(TargetArch::X86_64, name),
                args,
            )
        };
        assert_eq!(x64("getppid", [0; 6]), RET_ALLOW);
        assert_eq!(x64("mount", [0; 6]), EPERM);
        assert_eq!(x64("clone3", [0; 6]), RET_ERRNO | 38);
        assert_eq!(x64("personality", [0xffff_ffff, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(x64("personality", [0x1_ffff_ffff, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(x64("personality", [4, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(x64("clone", [0x11, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(x64("clone", [0x1000_0000 | 0x11, 0, 0, 0, 0, 0]), EPERM);
        // Above every syscall the profile names: runc's ENOSYS.
        assert_eq!(run(&program, AUDIT_ARCH_X86_64, 1000, [0; 6]), RET_ENOSYS);
        // x32 is listed: x32 numbers are filtered, -1 is above x32's maximum.
        assert_eq!(
            run(
                &program,
                AUDIT_ARCH_X86_64,
                nr(TargetArch::X32, "getppid"),
                [0; 6]
            ),
            RET_ALLOW
        );
        assert_eq!(
            run(
                &program,
                AUDIT_ARCH_X86_64,
                nr(TargetArch::X32, "mount"),
                [0; 6]
            ),
            EPERM
        );
        assert_eq!(
            run(&program, AUDIT_ARCH_X86_64, u32::MAX, [0; 6]),
            RET_ENOSYS
        );
        // i386: 32-bit argument compare; socket calls through socketcall.
        let i386 = |name: &str, args: [u64; 6]| {
            run(&program, AUDIT_ARCH_I386, nr(TargetArch::X86, name), args)
        };
        assert_eq!(i386("getppid", [0; 6]), RET_ALLOW);
        assert_eq!(
            i386("personality", [0x1_ffff_ffff, 0, 0, 0, 0, 0]),
            RET_ALLOW
        );
        assert_eq!(i386("socketcall", [1, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(i386("mount", [0; 6]), EPERM);
        // Unknown architecture: killed.
        assert_eq!(run(&program, AUDIT_ARCH_AARCH64, 1, [0; 6]), RET_BAD_ARCH);
    }

    #[test]
    fn x32_without_x32_in_the_filter_is_a_bad_arch() {
        let program = compile(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#, TargetArch::X86_64);
        assert_eq!(run(&program, AUDIT_ARCH_X86_64, 39, [0; 6]), RET_ALLOW);
        assert_eq!(
            run(&program, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 39, [0; 6]),
            RET_BAD_ARCH
        );
        assert_eq!(
            run(&program, AUDIT_ARCH_X86_64, u32::MAX, [0; 6]),
            RET_ALLOW
        );
        assert_eq!(run(&program, AUDIT_ARCH_I386, 20, [0; 6]), RET_BAD_ARCH);
    }

    /// Every operator, on both sides of its boundary, on a 64-bit and a 32-bit ABI.
    #[test]
    fn operators_64_and_32_bit() {
        let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],"syscalls":[
            {"names":["getuid"],"action":"SCMP_ACT_ERRNO","errnoRet":10,"args":[{"index":0,"value":4294967301,"op":"SCMP_CMP_EQ"}]},
            {"names":["geteuid"],"action":"SCMP_ACT_ERRNO","errnoRet":11,"args":[{"index":1,"value":4294967301,"op":"SCMP_CMP_NE"}]},
            {"names":["getgid"],"action":"SCMP_ACT_ERRNO","errnoRet":12,"args":[{"index":2,"value":4294967296,"op":"SCMP_CMP_GT"}]},
            {"names":["getegid"],"action":"SCMP_ACT_ERRNO","errnoRet":13,"args":[{"index":3,"value":4294967296,"op":"SCMP_CMP_GE"}]},
            {"names":["getpgrp"],"action":"SCMP_ACT_ERRNO","errnoRet":14,"args":[{"index":4,"value":4294967296,"op":"SCMP_CMP_LT"}]},
            {"names":["gettid"],"action":"SCMP_ACT_ERRNO","errnoRet":15,"args":[{"index":5,"value":4294967296,"op":"SCMP_CMP_LE"}]},
            {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":16,"args":[{"index":0,"value":1095216660735,"valueTwo":78383153152,"op":"SCMP_CMP_MASKED_EQ"}]}
        ]}"#;
        let program = compile(json, TargetArch::X86_64);
        let check = |arch: TargetArch, name: &str, index: usize, value: u64| {
            let mut args = [0u64; 6];
            args[index] = value;
            let result = run(&program, arch.audit_arch(), nr(arch, name), args);
            if result == RET_ALLOW {
                None
            } else {
                Some(result & 0xffff)
            }
        };
        let x = TargetArch::X86_64;
        let big: u64 = 1 << 32;
        assert_eq!(check(x, "getuid", 0, big + 5), Some(10));
        assert_eq!(check(x, "getuid", 0, 5), None);
        assert_eq!(check(x, "geteuid", 1, big + 5), None);
        assert_eq!(check(x, "geteuid", 1, 5), Some(11));
        assert_eq!(check(x, "getgid", 2, big), None);
        assert_eq!(check(x, "getgid", 2, big + 1), Some(12));
        assert_eq!(check(x, "getgid", 2, 2 * big), Some(12));
        assert_eq!(check(x, "getegid", 3, big), Some(13));
        assert_eq!(check(x, "getegid", 3, big - 1), None);
        assert_eq!(check(x, "getpgrp", 4, big - 1), Some(14));
        assert_eq!(check(x, "getpgrp", 4, big), None);
        assert_eq!(check(x, "gettid", 5, big), Some(15));
        assert_eq!(check(x, "gettid", 5, big + 1), None);
        // mask 0xff_0000_00ff, value 0x12_0000_0000: high byte 0x12, low byte 0.
        assert_eq!(check(x, "getpid", 0, 0x12_3456_7800), Some(16));
        assert_eq!(check(x, "getpid", 0, 0x12_3456_7801), None);
        assert_eq!(check(x, "getpid", 0, 0x13_0000_0000), None);
        // i386: only the low word (value truncated the same way).
        let i = TargetArch::X86;
        assert_eq!(check(i, "getuid", 0, 5), Some(10));
        assert_eq!(check(i, "geteuid", 1, 5), None);
        assert_eq!(check(i, "getgid", 2, 1), Some(12));
        assert_eq!(check(i, "getgid", 2, 0), None);
        assert_eq!(check(i, "getpgrp", 4, 0), None);
        assert_eq!(check(i, "gettid", 5, 0), Some(15));
        assert_eq!(check(i, "getpid", 0, 0x7800), Some(16));
    }

    #[test]
    fn actions_and_aarch64() {
        let json = r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"architectures":["SCMP_ARCH_AARCH64","SCMP_ARCH_ARM"],"syscalls":[
            {"names":["getppid","read","write","exit_group"],"action":"SCMP_ACT_ALLOW"},
            {"names":["getpid"],"action":"SCMP_ACT_KILL_PROCESS"},
            {"names":["gettid"],"action":"SCMP_ACT_TRAP"},
            {"names":["getuid"],"action":"SCMP_ACT_LOG"},
            {"names":["getgid"],"action":"SCMP_ACT_NOTIFY"},
            {"names":["open"],"action":"SCMP_ACT_ALLOW"}
        ]}"#;
        let spec: LinuxSeccomp = serde_json::from_str(json).unwrap();
        let filter = crate::compile_for(&spec, TargetArch::Aarch64).unwrap();
        assert!(filter.uses_notify());
        let a = |arch: TargetArch, name: &str| {
            run(&filter.program, arch.audit_arch(), nr(arch, name), [0; 6])
        };
        assert_eq!(a(TargetArch::Aarch64, "getppid"), RET_ALLOW);
        assert_eq!(a(TargetArch::Aarch64, "getpid"), RET_KILL_PROCESS);
        assert_eq!(a(TargetArch::Aarch64, "gettid"), RET_TRAP);
        assert_eq!(a(TargetArch::Aarch64, "getuid"), RET_LOG);
        assert_eq!(
            a(TargetArch::Aarch64, "getgid"),
            crate::action::RET_USER_NOTIF
        );
        assert_eq!(a(TargetArch::Aarch64, "mount"), RET_ERRNO | 38);
        assert_eq!(a(TargetArch::Arm, "open"), RET_ALLOW);
        assert_eq!(
            run(&filter.program, AUDIT_ARCH_ARM, 0x0f_0005, [0; 6]),
            RET_ERRNO | 38
        );
        assert_eq!(
            run(&filter.program, AUDIT_ARCH_X86_64, 1, [0; 6]),
            RET_BAD_ARCH
        );
    }

    #[test]
    fn serialized_filter_round_trips() {
        let filter = crate::compile_for(&docker(), TargetArch::X86_64).unwrap();
        let bytes = filter.to_bytes();
        let back = crate::Filter::from_bytes(&bytes).unwrap();
        assert_eq!(back.program, filter.program);
        assert_eq!(back.flags, filter.flags);
        assert!(crate::Filter::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(crate::Filter::from_bytes(b"garbage").is_err());
    }
}
