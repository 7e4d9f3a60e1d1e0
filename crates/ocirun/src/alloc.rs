//! The process's memory allocator: blocks up to 64 KiB come from per-size free lists that keep
//! what is freed; larger ones go to the C library's `malloc`.
//!
//! An invocation of the runtime makes a few thousand allocations, nearly all short lived, then
//! exits. musl's allocator hands a group of slots back to the kernel (`munmap`) as soon as its
//! last slot is freed, so that pattern costs a `mmap`, page faults and a `munmap` again and again:
//! about a millisecond of a `run`, in each of its two process images, for blocks up to 4 KiB, and
//! still a fifth of a short command's time for the few dozen blocks of 4 to 64 KiB (the command
//! line parser's tables grow through those sizes). Here a freed block goes on the free list of its
//! size class and the next allocation of that class takes it, so the pages stay mapped until the
//! process exits or execs. Blocks above [`MAX_POOLED`] bytes (rare) are left to `malloc`, which
//! returns them to the kernel when freed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

/// Largest size whose class is found in [`CLASS_OF`].
const MAX_SMALL: usize = 4096;
/// Largest size served from the size classes.
const MAX_POOLED: usize = 64 * 1024;
/// The size classes: multiples of 16, about 25% apart (up to [`MAX_SMALL`]), then fewer.
const CLASSES: [usize; 34] = [
    16, 32, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512, 640, 768, 1024, 1280, 1536, 2048,
    2560, 3072, 3584, 4096, 6144, 8192, 12288, 16384, 20480, 24576, 32768, 40960, 49152, 57344,
    65536,
];
/// Index of the first class above [`MAX_SMALL`].
const FIRST_LARGE: usize = 23;
/// Alignment every block has (its size and its start are multiples of it).
const ALIGN: usize = 16;
/// Size of the regions blocks are cut from. Pages of a region become resident only when a block
/// on them is used.
const REGION: usize = 256 * 1024;

/// Class index for each size in steps of 16 bytes, from 0 to `MAX_SMALL`.
const CLASS_OF: [u8; MAX_SMALL / ALIGN + 1] = {
    let mut table = [0u8; MAX_SMALL / ALIGN + 1];
    let mut i = 0;
    while i < table.len() {
        let size = i * ALIGN;
        let mut c = 0;
        while CLASSES[c] < size {
            c += 1;
        }
        table[i] = c as u8;
        i += 1;
    }
    table
};

/// A free block: the first word holds the next free block of its class.
struct Free {
    next: *mut Free,
}

struct Pools {
    free: [*mut Free; CLASSES.len()],
    /// The unused part of the current region.
    next: *mut u8,
    end: *mut u8,
}

/// The global allocator (see the module documentation).
pub struct Pooled {
    locked: AtomicBool,
    pools: UnsafeCell<Pools>,
}

// SAFETY: `pools` is only touched while `locked` is held (see `with_pools`).
unsafe impl Sync for Pooled {}

impl Pooled {
    pub const fn new() -> Pooled {
        Pooled {
            locked: AtomicBool::new(false),
            pools: UnsafeCell::new(Pools {
                free: [ptr::null_mut(); CLASSES.len()],
                next: ptr::null_mut(),
                end: ptr::null_mut(),
            }),
        }
    }

    /// Runs `f` with the pools locked. The runtime is single-threaded, so the lock is never
    /// contended there; it keeps the allocator sound in multi-threaded test binaries.
    fn with_pools<T>(&self, f: impl FnOnce(&mut Pools) -> T) -> T {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        // SAFETY: the lock is held, so this is the only reference to the pools.
        let out = f(unsafe { &mut *self.pools.get() });
        self.locked.store(false, Ordering::Release);
        out
    }
}

impl Default for Pooled {
    fn default() -> Self {
        Pooled::new()
    }
}

/// The size class of `layout`, when the pools serve it.
fn class(layout: Layout) -> Option<usize> {
    let size = layout.size();
    if size > MAX_POOLED || layout.align() > ALIGN {
        return None;
    }
    if size <= MAX_SMALL {
        return Some(CLASS_OF[size.div_ceil(ALIGN)] as usize);
    }
    (FIRST_LARGE..CLASSES.len()).find(|&c| CLASSES[c] >= size)
}

impl Pools {
    /// A block of class `c`: a freed one, or a new one cut from the current region.
    fn take(&mut self, c: usize) -> *mut u8 {
        let head = self.free[c];
        if !head.is_null() {
            // SAFETY: every pointer on a free list is a block of that class that was handed
            // out by `take` and freed; its first word holds the next link.
            self.free[c] = unsafe { (*head).next };
            return head.cast();
        }
        let size = CLASSES[c];
        if (self.end as usize) - (self.next as usize) < size {
            let Some(region) = new_region() else {
                return ptr::null_mut();
            };
            // What is left of the old region is lost: less than one block of this class, and
            // only its pages already used are resident.
            self.next = region;
            // SAFETY: `region` is the start of a mapping of REGION bytes.
            self.end = unsafe { region.add(REGION) };
        }
        let block = self.next;
        // SAFETY: at least `size` bytes remain between `next` and `end` (checked above).
        self.next = unsafe { block.add(size) };
        block
    }

    /// Puts a block of class `c` back on its free list.
    fn give(&mut self, c: usize, block: *mut u8) {
        let block = block.cast::<Free>();
        // SAFETY: `block` is a block of class `c` (at least 16 bytes, 16-aligned) that the caller
        // no longer uses.
        unsafe { block.write(Free { next: self.free[c] }) };
        self.free[c] = block;
    }
}

/// A new region of `REGION` bytes from the kernel (pages are touched only when used).
fn new_region() -> Option<*mut u8> {
    // SAFETY: an anonymous private mapping at an address the kernel picks.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            REGION,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p.cast())
}

// SAFETY: blocks of a class are CLASSES[c] >= size bytes, 16-aligned (regions are page-aligned
// and every class size is a multiple of 16), and handed out once until freed; everything else is
// System's.
unsafe impl GlobalAlloc for Pooled {
    // Out of line: inlined into every allocation site, it would grow the binary by a sixth.
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class(layout) {
            Some(c) => self.with_pools(|p| p.take(c)),
            // SAFETY: the caller's layout has a non-zero size (GlobalAlloc contract).
            None => unsafe { System.alloc(layout) },
        }
    }

    // Out of line: inlined into every allocation site, it would grow the binary by a sixth.
    #[inline(never)]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class(layout) {
            Some(c) => self.with_pools(|p| p.give(c, block)),
            // SAFETY: `block` came from System.alloc with this layout (class() decided alike).
            None => unsafe { System.dealloc(block, layout) },
        }
    }

    // Out of line: inlined into every allocation site, it would grow the binary by a sixth.
    #[inline(never)]
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees new_size, rounded up to align, does not overflow.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class(layout), class(new_layout)) {
            (Some(a), Some(b)) if a == b => block,
            // SAFETY: both layouts are System's; the caller's contract carries over.
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            _ => {
                // SAFETY: new_layout is valid and non-zero (caller's contract).
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    // SAFETY: both blocks are valid for the smaller of the two sizes and are
                    // distinct allocations.
                    unsafe {
                        ptr::copy_nonoverlapping(block, new, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_has_a_class_that_fits() {
        for size in 1..=MAX_POOLED {
            let layout = Layout::from_size_align(size, 8).unwrap();
            let c = class(layout).unwrap();
            assert!(CLASSES[c] >= size, "size {size} in class {}", CLASSES[c]);
            assert_eq!(CLASSES[c] % ALIGN, 0);
            if c > 0 {
                assert!(CLASSES[c - 1] < size, "size {size} fits a smaller class");
            }
        }
        assert!(class(Layout::from_size_align(MAX_POOLED + 1, 8).unwrap()).is_none());
        assert_eq!(CLASSES[FIRST_LARGE - 1], MAX_SMALL);
        assert_eq!(CLASSES[CLASSES.len() - 1], MAX_POOLED);
        assert!(class(Layout::from_size_align(64, 64).unwrap()).is_none());
    }

    #[test]
    fn blocks_are_reused_and_kept_apart() {
        let pools = Pooled::new();
        let layout = Layout::from_size_align(100, 8).unwrap();
        // SAFETY: matched alloc/dealloc pairs with the same layout.
        unsafe {
            let a = pools.alloc(layout);
            let b = pools.alloc(layout);
            assert!(!a.is_null() && !b.is_null() && a != b);
            assert_eq!(a as usize % ALIGN, 0);
            a.write_bytes(0xaa, 100);
            b.write_bytes(0xbb, 100);
            assert_eq!(*a.add(99), 0xaa);
            pools.dealloc(a, layout);
            let c = pools.alloc(layout);
            assert_eq!(c, a);
            // Grown through a large class (kept on its list when freed) to malloc's sizes.
            let large = Layout::from_size_align(MAX_SMALL * 4, 8).unwrap();
            let grown = pools.realloc(c, layout, large.size());
            assert!(!grown.is_null());
            assert_eq!(*grown.add(99), 0xaa);
            let big = Layout::from_size_align(MAX_POOLED * 2, 8).unwrap();
            let grown2 = pools.realloc(grown, large, big.size());
            assert!(!grown2.is_null());
            assert_eq!(*grown2.add(99), 0xaa);
            assert_eq!(pools.alloc(large), grown);
            pools.dealloc(grown, large);
            pools.dealloc(grown2, big);
            pools.dealloc(b, layout);
        }
    }
}
