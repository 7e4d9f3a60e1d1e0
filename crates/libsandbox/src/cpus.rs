//! Keeping the runtime and a new container init on different CPUs while both work.
//!
//! On pure v1 hosts the runtime makes the container's cgroups while the init makes its network
//! namespace, about a millisecond each. The scheduler often puts a new process on its parent's
//! CPU, and then the two take turns: the init starts only when the runtime blocks, and nothing is
//! gained. When the init was placed on the runtime's CPU and another CPU is allowed, the runtime
//! moves itself away for that phase and restores its own affinity after it. The init's affinity
//! is never changed.

use std::mem::{size_of, zeroed};

/// The runtime's affinity as it was before [`MovedAway::from`], restored on drop.
pub(crate) struct MovedAway {
    original: libc::cpu_set_t,
}

impl MovedAway {
    /// Moves this process off `busy` (the CPU the init runs on) when it is running there and may
    /// run elsewhere; None when there is nothing to do (or the kernel refuses).
    pub(crate) fn from(busy: u32) -> Option<MovedAway> {
        // SAFETY: sched_getcpu has no arguments.
        let here = unsafe { libc::sched_getcpu() };
        if here < 0 || here as u32 != busy || here as usize >= libc::CPU_SETSIZE as usize {
            return None;
        }
        // SAFETY: an all-zero cpu_set_t is a valid empty set.
        let mut original: libc::cpu_set_t = unsafe { zeroed() };
        // SAFETY: sched_getaffinity writes at most size_of::<cpu_set_t>() bytes into `original`.
        if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut original) } != 0 {
            return None; // more CPUs than a cpu_set_t holds: leave it to the scheduler
        }
        let mut elsewhere = original;
        // SAFETY: `here` is below CPU_SETSIZE (checked above).
        unsafe { libc::CPU_CLR(here as usize, &mut elsewhere) };
        // SAFETY: counts bits of a valid set.
        if unsafe { libc::CPU_COUNT(&elsewhere) } == 0 {
            return None;
        }
        // SAFETY: sets this process's affinity from a valid cpu_set_t; the kernel migrates it.
        if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &elsewhere) } != 0 {
            return None;
        }
        Some(MovedAway { original })
    }
}

impl Drop for MovedAway {
    fn drop(&mut self) {
        // SAFETY: restores the affinity read in `from` (the process stays where it is).
        unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &self.original) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affinity() -> libc::cpu_set_t {
        // SAFETY: as in `from`.
        let mut set: libc::cpu_set_t = unsafe { zeroed() };
        // SAFETY: as in `from`.
        let got = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
        assert_eq!(got, 0);
        set
    }

    #[test]
    fn moves_off_its_cpu_and_restores_the_affinity() {
        let before = affinity();
        // SAFETY: as in `from`.
        let here = unsafe { libc::sched_getcpu() } as u32;
        let Some(moved) = MovedAway::from(here) else {
            // One allowed CPU (or it moved between the two calls): nothing to move to.
            return;
        };
        let during = affinity();
        // SAFETY: reads a bit below CPU_SETSIZE of a valid set.
        assert!(!unsafe { libc::CPU_ISSET(here as usize, &during) });
        // SAFETY: no arguments.
        assert_ne!(unsafe { libc::sched_getcpu() } as u32, here);
        drop(moved);
        // SAFETY: compares two valid sets.
        assert!(unsafe { libc::CPU_EQUAL(&before, &affinity()) });
        // Not on the init's CPU: nothing to do.
        // SAFETY: no arguments.
        let now = unsafe { libc::sched_getcpu() } as u32;
        assert!(MovedAway::from(now + 1).is_none());
    }
}
