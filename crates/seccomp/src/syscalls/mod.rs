//! Syscall name -> number tables, one per ABI, generated from the kernel's
//! UAPI headers by `tools/gen_syscall_tables.py`.

mod table;

use crate::arch::TargetArch;

/// The number of syscall `name` on `arch`, or `None` when that ABI has no such syscall.
///
/// x32 numbers include `__X32_SYSCALL_BIT`; ARM's private syscalls
/// (`breakpoint`, `cacheflush`, `usr26`, `usr32`, `set_tls`, `get_tls`) are
/// at `0x0f0000 + n` as the kernel defines them.
pub fn syscall_number(arch: TargetArch, name: &str) -> Option<u32> {
    SyscallNumbers::of(name)?.on(arch)
}

/// The numbers of one syscall name on every ABI we have a table for.
#[derive(Clone, Copy)]
pub(crate) struct SyscallNumbers(&'static [u32; 5]);

impl SyscallNumbers {
    /// The numbers of `name`, or `None` when no table knows it (runc skips
    /// such names, as libseccomp cannot resolve them).
    pub(crate) fn of(name: &str) -> Option<SyscallNumbers> {
        let index = table::SYSCALLS
            .binary_search_by(|(entry, _)| (*entry).cmp(name))
            .ok()?;
        Some(SyscallNumbers(&table::SYSCALLS[index].1))
    }

    /// The number on `arch`, if that ABI has the syscall.
    pub(crate) fn on(self, arch: TargetArch) -> Option<u32> {
        let column = match arch {
            TargetArch::X86_64 => 0,
            TargetArch::X86 => 1,
            TargetArch::X32 => 2,
            TargetArch::Aarch64 => 3,
            TargetArch::Arm => 4,
        };
        Some(self.0[column]).filter(|n| *n != table::NONE)
    }
}

/// i386 reaches the socket and SysV IPC calls through two multiplexers as
/// well as (since Linux 4.3 and 5.1) through direct syscalls. libseccomp
/// filters both paths for a rule on such a name, so we do too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Multiplexed {
    /// `socketcall` or `ipc` on i386.
    pub(crate) multiplexer: u32,
    /// The call number the multiplexer takes in its first argument.
    pub(crate) call: u64,
}

/// Which multiplexer reaches a call on i386.
#[derive(Clone, Copy)]
enum Via {
    Socketcall,
    Ipc,
}

/// Call numbers of `socketcall(2)` (`SYS_*` in include/uapi/linux/net.h)
/// and `ipc(2)` (include/uapi/linux/ipc.h), sorted by name.
const MULTIPLEXED_CALLS: [(&str, Via, u64); 32] = [
    ("accept", Via::Socketcall, 5),
    ("accept4", Via::Socketcall, 18),
    ("bind", Via::Socketcall, 2),
    ("connect", Via::Socketcall, 3),
    ("getpeername", Via::Socketcall, 7),
    ("getsockname", Via::Socketcall, 6),
    ("getsockopt", Via::Socketcall, 15),
    ("listen", Via::Socketcall, 4),
    ("msgctl", Via::Ipc, 14),
    ("msgget", Via::Ipc, 13),
    ("msgrcv", Via::Ipc, 12),
    ("msgsnd", Via::Ipc, 11),
    ("recv", Via::Socketcall, 10),
    ("recvfrom", Via::Socketcall, 12),
    ("recvmmsg", Via::Socketcall, 19),
    ("recvmsg", Via::Socketcall, 17),
    ("semctl", Via::Ipc, 3),
    ("semget", Via::Ipc, 2),
    ("semop", Via::Ipc, 1),
    ("semtimedop", Via::Ipc, 4),
    ("send", Via::Socketcall, 9),
    ("sendmmsg", Via::Socketcall, 20),
    ("sendmsg", Via::Socketcall, 16),
    ("sendto", Via::Socketcall, 11),
    ("setsockopt", Via::Socketcall, 14),
    ("shmat", Via::Ipc, 21),
    ("shmctl", Via::Ipc, 24),
    ("shmdt", Via::Ipc, 22),
    ("shmget", Via::Ipc, 23),
    ("shutdown", Via::Socketcall, 13),
    ("socket", Via::Socketcall, 1),
    ("socketpair", Via::Socketcall, 8),
];

/// i386's `socketcall` and `ipc` syscall numbers (fixed by the i386 ABI).
const I386_SOCKETCALL: u32 = 102;
const I386_IPC: u32 = 117;

/// How `name` is reached through a multiplexer on `arch`, if it is.
pub(crate) fn multiplexed(arch: TargetArch, name: &str) -> Option<Multiplexed> {
    if arch != TargetArch::X86 {
        return None;
    }
    let index = MULTIPLEXED_CALLS
        .binary_search_by(|(n, _, _)| (*n).cmp(name))
        .ok()?;
    let (_, via, call) = MULTIPLEXED_CALLS[index];
    let multiplexer = match via {
        Via::Socketcall => I386_SOCKETCALL,
        Via::Ipc => I386_IPC,
    };
    Some(Multiplexed { multiplexer, call })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(table::SYSCALLS.windows(2).all(|w| w[0].0 < w[1].0));
        for arch in TargetArch::ALL {
            let count = table::SYSCALLS
                .iter()
                .filter(|(name, _)| syscall_number(arch, name).is_some())
                .count();
            assert!(count > 250, "{arch:?} table too small");
        }
    }

    #[test]
    fn known_numbers() {
        assert_eq!(syscall_number(TargetArch::X86_64, "getppid"), Some(110));
        assert_eq!(syscall_number(TargetArch::X86, "getppid"), Some(64));
        assert_eq!(
            syscall_number(TargetArch::X32, "getppid"),
            Some(0x4000_0000 + 110)
        );
        assert_eq!(
            syscall_number(TargetArch::X32, "execve"),
            Some(0x4000_0000 + 520)
        );
        assert_eq!(syscall_number(TargetArch::Aarch64, "getppid"), Some(173));
        assert_eq!(syscall_number(TargetArch::Arm, "getppid"), Some(64));
        assert_eq!(
            syscall_number(TargetArch::Arm, "breakpoint"),
            Some(0x0f_0001)
        );
        assert_eq!(syscall_number(TargetArch::X86_64, "socketcall"), None);
        assert_eq!(syscall_number(TargetArch::Aarch64, "open"), None);
        assert!(SyscallNumbers::of("no_such_syscall").is_none());
    }

    #[test]
    fn i386_multiplexers() {
        assert!(MULTIPLEXED_CALLS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(
            syscall_number(TargetArch::X86, "socketcall"),
            Some(I386_SOCKETCALL)
        );
        assert_eq!(syscall_number(TargetArch::X86, "ipc"), Some(I386_IPC));
        let socket = multiplexed(TargetArch::X86, "socket").unwrap();
        assert_eq!((socket.multiplexer, socket.call), (102, 1));
        let shmget = multiplexed(TargetArch::X86, "shmget").unwrap();
        assert_eq!((shmget.multiplexer, shmget.call), (117, 23));
        assert_eq!(multiplexed(TargetArch::X86_64, "socket"), None);
        assert_eq!(multiplexed(TargetArch::X86, "getpid"), None);
    }
}
