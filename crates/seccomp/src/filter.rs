//! The compiled filter: a BPF program plus the seccomp(2) flags to install it
//! with, and its byte form for caching.

use crate::arch::TargetArch;
use crate::bpf::{Instruction, MAX_INSTRUCTIONS};
use crate::error::{Error, Result};
use crate::flags;

/// A compiled seccomp filter, ready for [`install`](crate::install).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub(crate) program: Vec<Instruction>,
    pub(crate) flags: u32,
    pub(crate) arch: TargetArch,
    pub(crate) unknown_syscalls: Vec<String>,
}

/// Magic and version of the byte form.
const MAGIC: &[u8; 8] = b"OCISECF1";
const HEADER_LEN: usize = 8 + 4 + 4 + 4;

impl Filter {
    /// The architecture the filter was compiled for (its native ABI).
    pub fn arch(&self) -> TargetArch {
        self.arch
    }

    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.program.len()
    }

    /// Always false: a compiled filter has at least one instruction.
    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }

    /// Whether installing returns a notify fd (a rule uses SCMP_ACT_NOTIFY),
    /// which the runtime must then send to `listenerPath`.
    pub fn uses_notify(&self) -> bool {
        self.flags & flags::NEW_LISTENER != 0
    }

    /// The seccomp(2) flags [`install`](crate::install) passes.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Syscall names the profile lists that no syscall table knows; they were
    /// skipped, as runc skips names libseccomp cannot resolve. Empty for a
    /// filter read back with [`Filter::from_bytes`].
    pub fn unknown_syscalls(&self) -> &[String] {
        &self.unknown_syscalls
    }

    /// The program as raw `struct sock_filter` bytes (native endianness),
    /// the form `seccomp_export_bpf` writes.
    pub fn program_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.program.len() * 8);
        for insn in &self.program {
            bytes.extend_from_slice(&insn.code.to_ne_bytes());
            bytes.push(insn.jt);
            bytes.push(insn.jf);
            bytes.extend_from_slice(&insn.k.to_ne_bytes());
        }
        bytes
    }

    /// A self-describing byte form (magic, arch, flags, program) that
    /// [`Filter::from_bytes`] reads back, e.g. to cache the filter in the
    /// container's state dir for `exec`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(HEADER_LEN + self.program.len() * 8);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&self.arch.serial_tag().to_le_bytes());
        bytes.extend_from_slice(&self.flags.to_le_bytes());
        bytes.extend_from_slice(&(self.program.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&self.program_bytes());
        bytes
    }

    /// Reads a filter written by [`Filter::to_bytes`] on this machine.
    pub fn from_bytes(bytes: &[u8]) -> Result<Filter> {
        let bad = Error::InvalidSerializedFilter;
        let header = bytes
            .get(..HEADER_LEN)
            .ok_or(bad("shorter than its header"))?;
        if &header[..8] != MAGIC {
            return Err(bad("wrong magic or version"));
        }
        let word = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let arch = TargetArch::from_serial_tag(word(8)).ok_or(bad("unknown architecture"))?;
        let flags = word(12);
        if flags & !flags::ALL != 0 {
            return Err(bad("unknown seccomp flags"));
        }
        let count = word(16) as usize;
        if count == 0 || count > MAX_INSTRUCTIONS {
            return Err(bad("instruction count out of range"));
        }
        let body = &bytes[HEADER_LEN..];
        if body.len() != count * 8 {
            return Err(bad("length does not match the instruction count"));
        }
        let program = body
            .chunks_exact(8)
            .map(|c| Instruction {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Ok(Filter {
            program,
            flags,
            arch,
            unknown_syscalls: Vec::new(),
        })
    }
}

impl TargetArch {
    /// A stable tag for the byte form.
    fn serial_tag(self) -> u32 {
        match self {
            TargetArch::X86_64 => 1,
            TargetArch::X86 => 2,
            TargetArch::X32 => 3,
            TargetArch::Aarch64 => 4,
            TargetArch::Arm => 5,
        }
    }

    fn from_serial_tag(tag: u32) -> Option<TargetArch> {
        TargetArch::ALL.into_iter().find(|a| a.serial_tag() == tag)
    }
}
