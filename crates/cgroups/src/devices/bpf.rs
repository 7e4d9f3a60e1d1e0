//! The v2 device controller: a BPF_PROG_TYPE_CGROUP_DEVICE program, emitted instruction by
//! instruction from the folded rules (no compiler, no object file), loaded with bpf(2) and
//! attached to the container's cgroup.
//!
//! Program shape: load type, access, major and minor from the context; then one block per
//! exception that jumps to the next block on any mismatch and otherwise returns the
//! exception's verdict; the last instruction returns the default verdict. 32-bit compares
//! (BPF_JMP32) keep major/minor numbers above 2^31 exact.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::rules::{ALL_ACCESS, DeviceState, Exception, Kind};
use crate::error::{Errno, Error, Result};

/// One eBPF instruction (struct bpf_insn).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

// Opcodes used here (see linux/bpf_common.h and linux/bpf.h).
const LDX_MEM_W: u8 = 0x61;
const MOV64_REG: u8 = 0xbf;
const MOV64_IMM: u8 = 0xb7;
const AND64_IMM: u8 = 0x57;
const RSH64_IMM: u8 = 0x77;
const JMP32_JNE_IMM: u8 = 0x56;
const JMP32_JEQ_IMM: u8 = 0x16;
const EXIT: u8 = 0x95;

// Registers: R1 = context on entry (then scratch), R0 = return value.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2; // access bits
const R3: u8 = 3; // device type
const R4: u8 = 4; // major
const R5: u8 = 5; // minor

// bpf_cgroup_dev_ctx type codes.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// The instructions of one exception; every mismatch jumps past the block's end.
fn exception_block(e: &Exception, default_allow: bool) -> Vec<Insn> {
    // Checks first, each as (opcode, register, imm); the jump offsets are filled in after.
    let mut checks: Vec<Vec<Insn>> = Vec::new();
    let kind = match e.kind {
        Kind::Block => DEV_BLOCK,
        Kind::Char => DEV_CHAR,
    };
    checks.push(vec![insn(JMP32_JNE_IMM, R3, 0, 0, kind)]);
    if let Some(major) = e.major {
        checks.push(vec![insn(JMP32_JNE_IMM, R4, 0, 0, major as i32)]);
    }
    if let Some(minor) = e.minor {
        checks.push(vec![insn(JMP32_JNE_IMM, R5, 0, 0, minor as i32)]);
    }
    if default_allow {
        // A deny exception hits when any requested access is in it.
        checks.push(vec![
            insn(MOV64_REG, R1, R2, 0, 0),
            insn(AND64_IMM, R1, 0, 0, i32::from(e.access)),
            insn(JMP32_JEQ_IMM, R1, 0, 0, 0),
        ]);
    } else if e.access != ALL_ACCESS {
        // An allow exception hits when every requested access is in it.
        checks.push(vec![
            insn(MOV64_REG, R1, R2, 0, 0),
            insn(AND64_IMM, R1, 0, 0, i32::from(!e.access & ALL_ACCESS)),
            insn(JMP32_JNE_IMM, R1, 0, 0, 0),
        ]);
    }
    let verdict = if default_allow { 0 } else { 1 };
    let tail = [insn(MOV64_IMM, R0, 0, 0, verdict), insn(EXIT, 0, 0, 0, 0)];
    let mut out: Vec<Insn> = checks.into_iter().flatten().collect();
    let len = out.len() + tail.len();
    for (i, ins) in out.iter_mut().enumerate() {
        if ins.code == JMP32_JNE_IMM || ins.code == JMP32_JEQ_IMM {
            // Offsets count from the next instruction to the first one after the block.
            ins.off = (len - i - 1) as i16;
        }
    }
    out.extend(tail);
    out
}

/// Emits the whole program for `state`.
pub(crate) fn program(state: &DeviceState) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, R2, R1, 0, 0), // access_type
        insn(MOV64_REG, R3, R2, 0, 0),
        insn(AND64_IMM, R3, 0, 0, 0xffff), // low 16 bits: device type
        insn(RSH64_IMM, R2, 0, 0, 16),     // high 16 bits: access
        insn(LDX_MEM_W, R4, R1, 4, 0),     // major
        insn(LDX_MEM_W, R5, R1, 8, 0),     // minor
    ];
    for e in &state.exceptions {
        p.extend(exception_block(e, state.default_allow));
    }
    p.push(insn(MOV64_IMM, R0, 0, 0, i32::from(state.default_allow)));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

// bpf(2) commands, program and attach types, flags.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
const BPF_F_REPLACE: u32 = 4;

#[repr(C)]
#[derive(Default)]
struct LoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// bpf(2) with an attribute struct.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> libc::c_long {
    // SAFETY: attr points to a live, initialised #[repr(C)] struct laid out like the matching
    // member of union bpf_attr, and its exact size is passed; the kernel reads (and for some
    // commands writes) only within that size.
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the caller checked that bpf(2) returned a new file descriptor (>= 0) that
    // nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Loads the program; on failure loads it again with a log to report the verifier's words.
pub(crate) fn load(insns: &[Insn]) -> Result<OwnedFd> {
    let license = c"Apache";
    let mut name = [0u8; 16];
    name[..12].copy_from_slice(b"ocirun_devcg");
    let mut attr = LoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    let fd = bpf(BPF_PROG_LOAD, &mut attr);
    if fd >= 0 {
        return Ok(owned(fd));
    }
    let errno = Errno::last();
    let mut log = vec![0u8; 64 * 1024];
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    let fd = bpf(BPF_PROG_LOAD, &mut attr);
    if fd >= 0 {
        return Ok(owned(fd));
    }
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]);
    let tail: Vec<&str> = text.lines().rev().take(3).collect();
    Err(Error::Bpf {
        op: "load device program",
        errno,
        log: tail.into_iter().rev().collect::<Vec<_>>().join("; "),
    })
}

fn fail(op: &'static str) -> Error {
    Error::Bpf {
        op,
        errno: Errno::last(),
        log: String::new(),
    }
}

/// Ids of the device programs attached directly to the cgroup `cgroup_fd`.
fn attached(cgroup_fd: &OwnedFd) -> Result<Vec<u32>> {
    let mut ids = [0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cgroup_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    if bpf(BPF_PROG_QUERY, &mut attr) < 0 {
        return Err(fail("query device programs"));
    }
    Ok(ids[..(attr.prog_cnt as usize).min(ids.len())].to_vec())
}

fn prog_fd_by_id(id: u32) -> Result<OwnedFd> {
    let mut attr = GetFdAttr {
        prog_id: id,
        ..Default::default()
    };
    let fd = bpf(BPF_PROG_GET_FD_BY_ID, &mut attr);
    if fd < 0 {
        return Err(fail("open attached device program"));
    }
    Ok(owned(fd))
}

/// Makes `prog` the cgroup's only device program of ours: replaces the one attached (atomically,
/// so there is no moment without a filter) or attaches it and then detaches the old ones.
pub(crate) fn attach(cgroup_fd: &OwnedFd, prog: &OwnedFd) -> Result<()> {
    let old = attached(cgroup_fd)?;
    let mut attr = AttachAttr {
        target_fd: cgroup_fd.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    if let [id] = old[..] {
        let old_fd = prog_fd_by_id(id)?;
        attr.attach_flags |= BPF_F_REPLACE;
        attr.replace_bpf_fd = old_fd.as_raw_fd() as u32;
        if bpf(BPF_PROG_ATTACH, &mut attr) == 0 {
            return Ok(());
        }
        // Kernels before 5.6 lack BPF_F_REPLACE: fall back to attach + detach.
        attr.attach_flags = BPF_F_ALLOW_MULTI;
        attr.replace_bpf_fd = 0;
    }
    if bpf(BPF_PROG_ATTACH, &mut attr) < 0 {
        return Err(fail("attach device program"));
    }
    for id in old {
        let old_fd = prog_fd_by_id(id)?;
        let mut detach = AttachAttr {
            target_fd: cgroup_fd.as_raw_fd() as u32,
            attach_bpf_fd: old_fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        if bpf(BPF_PROG_DETACH, &mut detach) < 0 {
            return Err(fail("detach old device program"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::rules::{MKNOD, READ, WRITE, rule};
    use oci_spec::runtime::LinuxDeviceType::{A, C};

    /// A tiny interpreter for exactly the opcodes `program` emits, to check the jump offsets
    /// and the logic against `DeviceState::decide` without a kernel.
    fn run(p: &[Insn], ctx: [u32; 3]) -> u64 {
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = u64::from(ctx[(i.off / 4) as usize]),
                MOV64_REG => r[dst] = r[src],
                MOV64_IMM => r[dst] = i.imm as i64 as u64,
                AND64_IMM => r[dst] &= i.imm as i64 as u64,
                RSH64_IMM => r[dst] >>= i.imm,
                JMP32_JNE_IMM if r[dst] as u32 != i.imm as u32 => pc += i.off as usize,
                JMP32_JEQ_IMM if r[dst] as u32 == i.imm as u32 => pc += i.off as usize,
                JMP32_JNE_IMM | JMP32_JEQ_IMM => {}
                EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn program_agrees_with_rules() {
        let sets = [
            vec![rule(false, A, -1, -1, "rwm"), rule(true, C, 1, 3, "rw")],
            vec![
                rule(false, A, -1, -1, "rwm"),
                rule(true, C, -1, -1, "m"),
                rule(true, C, 136, -1, "rwm"),
                rule(true, C, 1, 5, "r"),
            ],
            vec![rule(true, A, -1, -1, ""), rule(false, C, 1, 3, "w")],
        ];
        for rules in sets {
            let Ok(state) = DeviceState::from_rules(&rules) else {
                panic!("rules rejected")
            };
            let p = program(&state);
            for (kind, code) in [(Kind::Block, 1), (Kind::Char, 2)] {
                for (major, minor) in [(1, 3), (1, 5), (136, 7), (5, 1), (u32::MAX, 1)] {
                    for access in [READ, WRITE, MKNOD, READ | WRITE] {
                        let want = state.decide(kind, major, minor, access);
                        let ctx = [u32::from(access) << 16 | code, major, minor];
                        assert_eq!(run(&p, ctx) == 1, want, "{state:?} {ctx:?}");
                    }
                }
            }
        }
    }
}
