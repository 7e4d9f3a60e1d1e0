//! Keeping the runtime and a new container init on different CPUs while both work.
//!
//! On v1 and hybrid hosts the runtime makes the container's v1 cgroups while the init makes its
//! network namespace, a few hundred microseconds each. The scheduler puts a new process on its
//! parent's CPU, and then the two take turns: the init starts only when the runtime blocks, and
//! nothing is gained. Moving the runtime away does not help either: a running task is moved by
//! that CPU's stopper thread, which waits until the init leaves the kernel, that is until its
//! network namespace is made (traced: the runtime's `sched_setaffinity` took as long as the
//! init's `unshare`). So the runtime moves the init instead, right after the clone, while it
//! still waits in this CPU's run queue: a cheap move that does not block the runtime. The init's
//! affinity is put back before the runtime hands it its cgroups, which the init awaits before it
//! creates device nodes, runs hooks or starts anything, so nothing it runs ever sees the change.

use std::mem::{size_of, zeroed};

/// A process kept off one CPU, whose affinity is restored on drop.
pub(crate) struct KeptOff {
    pid: libc::pid_t,
    original: libc::cpu_set_t,
}

impl KeptOff {
    /// Keeps `pid` off the CPU this process runs on, when another CPU is allowed; None when
    /// there is nothing to do (or the kernel refuses). A new process is queued on its parent's
    /// CPU unless the scheduler chose another one, where this changes nothing.
    pub(crate) fn from_our_cpu(pid: libc::pid_t) -> Option<KeptOff> {
        // SAFETY: sched_getcpu has no arguments.
        let here = unsafe { libc::sched_getcpu() };
        if here < 0 || here as usize >= libc::CPU_SETSIZE as usize {
            return None;
        }
        // SAFETY: an all-zero cpu_set_t is a valid empty set.
        let mut original: libc::cpu_set_t = unsafe { zeroed() };
        // SAFETY: sched_getaffinity writes at most size_of::<cpu_set_t>() bytes into `original`.
        if unsafe { libc::sched_getaffinity(pid, size_of::<libc::cpu_set_t>(), &mut original) } != 0
        {
            return None; // gone, or more CPUs than a cpu_set_t holds: leave it to the scheduler
        }
        let mut elsewhere = original;
        // SAFETY: `here` is below CPU_SETSIZE (checked above).
        unsafe { libc::CPU_CLR(here as usize, &mut elsewhere) };
        // SAFETY: counts bits of a valid set.
        if unsafe { libc::CPU_COUNT(&elsewhere) } == 0 {
            return None;
        }
        // SAFETY: sets the affinity of `pid` from a valid cpu_set_t.
        if unsafe { libc::sched_setaffinity(pid, size_of::<libc::cpu_set_t>(), &elsewhere) } != 0 {
            return None;
        }
        Some(KeptOff { pid, original })
    }
}

impl Drop for KeptOff {
    fn drop(&mut self) {
        // SAFETY: restores the affinity read in `from_our_cpu` (a process that has gone
        // makes this fail, which is fine).
        unsafe { libc::sched_setaffinity(self.pid, size_of::<libc::cpu_set_t>(), &self.original) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affinity(pid: libc::pid_t) -> libc::cpu_set_t {
        // SAFETY: as in `from_our_cpu`.
        let mut set: libc::cpu_set_t = unsafe { zeroed() };
        // SAFETY: as in `from_our_cpu`.
        let got = unsafe { libc::sched_getaffinity(pid, size_of::<libc::cpu_set_t>(), &mut set) };
        assert_eq!(got, 0);
        set
    }

    #[test]
    fn keeps_a_process_off_our_cpu_and_restores_its_affinity() {
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let pid = child.id() as libc::pid_t;
        let before = affinity(pid);
        // SAFETY: no arguments.
        let here = unsafe { libc::sched_getcpu() } as u32;
        if let Some(kept) = KeptOff::from_our_cpu(pid) {
            let during = affinity(pid);
            // SAFETY: reads a bit below CPU_SETSIZE of a valid set.
            assert!(!unsafe { libc::CPU_ISSET(here as usize, &during) });
            drop(kept);
            // SAFETY: compares two valid sets.
            assert!(unsafe { libc::CPU_EQUAL(&before, &affinity(pid)) });
        } else {
            // Only allowed on one CPU (or we moved between the two calls): nothing to move to.
            // SAFETY: counts bits of a valid set.
            let only_one = unsafe { libc::CPU_COUNT(&before) } == 1;
            // SAFETY: no arguments.
            let moved = unsafe { libc::sched_getcpu() } as u32 != here;
            assert!(only_one || moved);
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
