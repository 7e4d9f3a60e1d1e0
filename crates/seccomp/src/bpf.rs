//! Classic BPF instructions and a small assembler for seccomp programs.
//!
//! The assembler emits the program backwards, so every jump target already
//! exists when a jump is written and its distance is known. Conditional jumps
//! only reach 255 instructions ahead; a farther target gets a trampoline right
//! after the jump: a copy of the `ret` when the target is one (cheaper than a
//! jump), a `ja` otherwise.

/// One `struct sock_filter`, laid out exactly as the kernel reads it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Instruction {
    pub(crate) code: u16,
    pub(crate) jt: u8,
    pub(crate) jf: u8,
    pub(crate) k: u32,
}

const _: () = assert!(std::mem::size_of::<Instruction>() == 8);
const _: () = assert!(std::mem::size_of::<libc::sock_filter>() == 8);

// Opcodes (linux/bpf_common.h): class | size/op | mode/source.
// BPF_LD (0x00) | BPF_W (0x00) | BPF_ABS (0x20).
pub(crate) const BPF_LD_W_ABS: u16 = 0x20;
// BPF_ALU (0x04) | BPF_AND (0x50) | BPF_K (0x00).
pub(crate) const BPF_ALU_AND_K: u16 = 0x54;
// BPF_JMP (0x05) | BPF_JA (0x00).
pub(crate) const BPF_JA: u16 = 0x05;
// BPF_JMP | BPF_JEQ (0x10) | BPF_K.
pub(crate) const BPF_JEQ_K: u16 = 0x15;
// BPF_JMP | BPF_JGT (0x20) | BPF_K.
pub(crate) const BPF_JGT_K: u16 = 0x25;
// BPF_JMP | BPF_JGE (0x30) | BPF_K.
pub(crate) const BPF_JGE_K: u16 = 0x35;
// BPF_RET (0x06) | BPF_K.
pub(crate) const BPF_RET_K: u16 = 0x06;

/// The kernel's BPF_MAXINSNS.
pub(crate) const MAX_INSTRUCTIONS: usize = 4096;

// Offsets in struct seccomp_data.
pub(crate) const OFFSET_NR: u32 = 0;
pub(crate) const OFFSET_ARCH: u32 = 4;
/// Offset of the low 32-bit word of argument `index` (little-endian ABIs only).
pub(crate) fn offset_arg_low(index: u8) -> u32 {
    16 + 8 * u32::from(index)
}

/// A place in the program a jump can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Label {
    /// Number of instructions emitted up to and including the target; the
    /// distance from a new instruction is `emitted - position`.
    position: usize,
    /// The value the target returns, when it is a `ret`.
    ret: Option<u32>,
}

/// Builds a program from its end to its start.
#[derive(Default)]
pub(crate) struct Assembler {
    reversed: Vec<Instruction>,
}

impl Assembler {
    fn push(&mut self, code: u16, jt: u8, jf: u8, k: u32, ret: Option<u32>) -> Label {
        self.reversed.push(Instruction { code, jt, jf, k });
        Label {
            position: self.reversed.len(),
            ret,
        }
    }

    fn distance(&self, target: Label) -> usize {
        self.reversed.len() - target.position
    }

    /// `ret k`.
    pub(crate) fn ret(&mut self, k: u32) -> Label {
        self.push(BPF_RET_K, 0, 0, k, Some(k))
    }

    /// `ld [offset]` (a 32-bit word of seccomp_data).
    pub(crate) fn load(&mut self, offset: u32) -> Label {
        self.push(BPF_LD_W_ABS, 0, 0, offset, None)
    }

    /// `and #mask`.
    pub(crate) fn and(&mut self, mask: u32) -> Label {
        self.push(BPF_ALU_AND_K, 0, 0, mask, None)
    }

    /// A way to reach `target` from the next instruction: the target itself
    /// if it is near, or a trampoline emitted now.
    fn trampoline(&mut self, target: Label) -> Label {
        match target.ret {
            Some(k) => self.ret(k),
            None => {
                let distance = u32::try_from(self.distance(target)).unwrap_or(u32::MAX);
                self.push(BPF_JA, 0, 0, distance, None)
            }
        }
    }

    /// A conditional jump `code #k` to `on_true` / `on_false`.
    pub(crate) fn jump(&mut self, code: u16, k: u32, on_true: Label, on_false: Label) -> Label {
        let (mut on_true, mut on_false) = (on_true, on_false);
        loop {
            let (jt, jf) = (self.distance(on_true), self.distance(on_false));
            if let (Ok(jt), Ok(jf)) = (u8::try_from(jt), u8::try_from(jf)) {
                return self.push(code, jt, jf, k, None);
            }
            // Bring the far target near; both may share it.
            let far = if jt > usize::from(u8::MAX) {
                on_true
            } else {
                on_false
            };
            let near = self.trampoline(far);
            if on_true == far {
                on_true = near;
            }
            if on_false == far {
                on_false = near;
            }
        }
    }

    /// The finished program, first instruction first.
    pub(crate) fn finish(mut self) -> Vec<Instruction> {
        self.reversed.reverse();
        self.reversed
    }
}

/// Runs `program` on one seccomp_data, as the kernel would. Used by tests
/// to check compiled filters without installing them.
#[cfg(test)]
pub(crate) fn run(program: &[Instruction], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let word = |offset: u32| -> u32 {
        match offset {
            OFFSET_NR => nr,
            OFFSET_ARCH => arch,
            o if (16..64).contains(&o) => {
                let arg = args[((o - 16) / 8) as usize];
                if (o - 16) % 8 == 0 {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
            o => panic!("load of unexpected offset {o}"),
        }
    };
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let insn = program[pc];
        let branch = |taken: bool| pc + 1 + usize::from(if taken { insn.jt } else { insn.jf });
        pc = match insn.code {
            BPF_LD_W_ABS => {
                acc = word(insn.k);
                pc + 1
            }
            BPF_ALU_AND_K => {
                acc &= insn.k;
                pc + 1
            }
            BPF_JA => pc + 1 + insn.k as usize,
            BPF_JEQ_K => branch(acc == insn.k),
            BPF_JGT_K => branch(acc > insn.k),
            BPF_JGE_K => branch(acc >= insn.k),
            BPF_RET_K => return insn.k,
            code => panic!("unexpected opcode {code:#x}"),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_targets_get_trampolines() {
        let mut asm = Assembler::default();
        let allow = asm.ret(1);
        let mut other = asm.load(0);
        let deny = asm.ret(2);
        for _ in 0..300 {
            other = asm.load(0);
        }
        // `allow` is a ret, so it is copied; `other` is near.
        let jump = asm.jump(BPF_JEQ_K, 7, allow, other);
        let _ = (jump, deny);
        let program = asm.finish();
        assert_eq!(program[0].code, BPF_JEQ_K);
        assert_eq!(program[0].jt, 0);
        assert_eq!(
            program[1],
            Instruction {
                code: BPF_RET_K,
                jt: 0,
                jf: 0,
                k: 1
            }
        );
        assert_eq!(program[0].jf, 1);

        let mut asm = Assembler::default();
        let target = asm.load(0);
        for _ in 0..300 {
            asm.load(0);
        }
        asm.jump(BPF_JEQ_K, 7, target, target);
        let program = asm.finish();
        assert_eq!((program[0].jt, program[0].jf), (0, 0));
        assert_eq!(program[1].code, BPF_JA);
        assert_eq!(program[1].k as usize, 300);
    }
}
