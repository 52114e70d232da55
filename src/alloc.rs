//! The program's allocator: the system's (glibc's malloc), except that large blocks get
//! mappings of their own with transparent huge pages advised.
//!
//! Why: a full-range capture or scan holds a few large arrays — the tracker's slots
//! (65,535 attempts of 128 bytes), a target's verdicts (65,535 of 144 bytes) — that are
//! written once, front to back, right after they are allocated. With 4 KiB pages each of
//! those arrays costs the kernel a page fault per 4 KiB (about 2 µs each on the project's
//! machine: a fifth of a replay's time went to page faults). A 2 MiB page is one fault.
//! glibc can do this itself (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`), but only when the
//! variable is set before the program starts; no crate offers it for the large blocks
//! alone (mimalloc's large pages commit eagerly and raised the peak memory past the
//! project's bound).
//!
//! Small blocks are glibc's, unchanged. A large block is a private anonymous mapping of
//! whole 4 KiB pages advised with `MADV_HUGEPAGE`: the kernel backs each 2 MiB-aligned
//! stretch inside it with one huge page when it is first touched, and the ends (less than
//! 2 MiB each) with small pages, so a block never holds more memory than it touches
//! (rounding blocks up to whole huge pages had cost 2 MB of a full-range scan's peak).
//! The kernel still backs it lazily and falls back to small pages when no huge page is
//! free: this changes speed only, never what a program may allocate. Growing a large block
//! moves its mapping (`mremap`), without copying.
//!
//! A replay gives the small blocks' heap the same advice ([`advise_heap_huge_pages`], as
//! it starts): a full-range replay allocates 65,535 packet lists of 160 bytes there, 11 MB
//! whose 2,800 small-page faults were a fifth of the matching thread's time (replay's
//! median went from 29 to 22.5 ms). glibc's own `glibc.malloc.hugetlb=1` tunable advises
//! its heap the same way, but is read only from the environment, before `main`. The heap
//! is first made 32 MiB large (untouched, so it holds no memory yet) and advised whole:
//! advice given to a heap of 132 KiB did not reach what it grew into later, a mapping of
//! its own. It costs a full-range replay about 3 MB of peak memory (huge pages are backed
//! whole when first touched). A live scan does without: it cost its full-range scan 4 MB
//! of peak (56 → 60 MB, of 64 allowed) and gained no speed (its time is the kernel's).

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

/// Blocks of at least this many bytes get their own mapping: one huge page (a smaller
/// block cannot hold an aligned one). At 8 MiB, the line had left blocks between 2 and 8
/// MiB on small pages and copied when they grew (a full-range capture's slots grow
/// through 4 MiB; with their own mapping they grow by `mremap`, in place).
const LARGE: usize = 2 << 20;

/// The unit of a mapping.
const PAGE: usize = 4096;

/// The allocator; `main.rs` installs it with `#[global_allocator]`.
pub struct Allocator;

fn is_large(size: usize, align: usize) -> bool {
    // mmap gives page alignment; anything stricter stays with the system allocator.
    size >= LARGE && align <= PAGE
}

fn mapped_len(size: usize) -> usize {
    size.div_ceil(PAGE) * PAGE
}

fn map(size: usize) -> *mut u8 {
    let len = mapped_len(size);
    // SAFETY: a new private anonymous mapping: no existing memory is touched; failure is
    // MAP_FAILED, reported as a null pointer (allocation failure).
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    // SAFETY: advice on the mapping just made; it changes how it is backed, not its
    // contents. Refused advice (THP disabled) leaves ordinary pages.
    unsafe { libc::madvise(p, len, libc::MADV_HUGEPAGE) };
    p.cast()
}

// SAFETY: every large block comes from `map` and goes back through `munmap`/`mremap` with
// the same rounded length (the layout's size, which Rust passes back unchanged); all
// other blocks are the system allocator's, passed through as they are.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size(), layout.align()) {
            map(layout.size())
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size(), layout.align()) {
            // A fresh anonymous mapping reads as zeros.
            map(layout.size())
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if is_large(layout.size(), layout.align()) {
            // SAFETY: `p` is a mapping of this length made by `map` (or `realloc`).
            unsafe { libc::munmap(p.cast(), mapped_len(layout.size())) };
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { System.dealloc(p, layout) }
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        match (is_large(layout.size(), align), is_large(new_size, align)) {
            (true, true) => {
                // SAFETY: `p` is a mapping of the old rounded length; mremap moves or
                // resizes it whole (contents and advice kept) or fails leaving it as it is.
                let q = unsafe {
                    libc::mremap(
                        p.cast(),
                        mapped_len(layout.size()),
                        mapped_len(new_size),
                        libc::MREMAP_MAYMOVE,
                    )
                };
                if q == libc::MAP_FAILED {
                    ptr::null_mut()
                } else {
                    q.cast()
                }
            }
            (false, false) => {
                // SAFETY: the caller's contract, passed on.
                unsafe { System.realloc(p, layout, new_size) }
            }
            _ => {
                // Crossing the line: a new block, the contents copied, the old one freed.
                // SAFETY: the new layout is valid (same alignment, a size the caller
                // vouches for); both blocks are live and do not overlap.
                unsafe {
                    let new_layout = Layout::from_size_align_unchecked(new_size, align);
                    let q = self.alloc(new_layout);
                    if !q.is_null() {
                        ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                        self.dealloc(p, layout);
                    }
                    q
                }
            }
        }
    }
}

/// How much of the heap is made and advised at start: more than a full-range replay's
/// small blocks (about 20 MB). Past it the heap grows as usual, on small pages.
const HEAP_RESERVE: usize = 32 << 20;

/// Advises the heap of glibc's main arena (where the main thread's small blocks live)
/// `MADV_HUGEPAGE`, first made [`HEAP_RESERVE`] large. Call once, on the main thread,
/// before much is allocated.
/// Blocks of [`LARGE`] or more are this allocator's own, so glibc's own mappings start
/// there too (`M_MMAP_THRESHOLD`; its default, 128 KiB, would put blocks between the two
/// outside the advised heap), and glibc gives the heap back to the system only past
/// twice the reserve (`M_TRIM_THRESHOLD`): a heap shrunk and grown again would be a new
/// mapping, without the advice. Where the heap cannot be made or advised, nothing
/// changes: speed only, never what may be allocated.
pub fn advise_heap_huge_pages() {
    // SAFETY: mallopt changes tuning values only. The block is allocated and freed right
    // here; its address only locates the heap (it is never read or written). sbrk(0) only
    // reads the heap's end. madvise advises pages of the heap's own mapping, from the page
    // that holds the block to the heap's end: how they are backed, not their contents.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, (2 * HEAP_RESERVE) as libc::c_int);
        // (The reserve is made as one block, below the largest threshold glibc takes.)
        libc::mallopt(libc::M_MMAP_THRESHOLD, HEAP_RESERVE as libc::c_int);
        let p = libc::malloc(HEAP_RESERVE - LARGE);
        libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE as libc::c_int);
        if p.is_null() {
            return;
        }
        let start = (p as usize) & !(PAGE - 1);
        let end = libc::sbrk(0) as usize;
        // A block not on the brk heap (glibc could not grow it) is not advised.
        if end > start && end - start <= 2 * HEAP_RESERVE {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
        libc::free(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(p: *mut u8, len: usize) {
        for i in (0..len).step_by(4093) {
            // SAFETY: i < len, within the block.
            unsafe { p.add(i).write(i as u8 ^ 0x5a) };
        }
    }

    fn check(p: *const u8, len: usize) {
        for i in (0..len).step_by(4093) {
            // SAFETY: i < len, within the block.
            assert_eq!(unsafe { p.add(i).read() }, i as u8 ^ 0x5a, "byte {i}");
        }
    }

    /// A block keeps its contents through every kind of growing and shrinking: small to
    /// small (glibc), small to large (copied into a mapping), large to larger (mremap),
    /// large to small (copied back).
    #[test]
    fn contents_survive_growing_and_shrinking_across_the_line() {
        let a = Allocator;
        let small = 1 << 16;
        let sizes = [small, 2 * small, LARGE + 1, 3 * LARGE + 12_345, small / 2];
        let layout = |n| Layout::from_size_align(n, 8).unwrap();
        // SAFETY: each realloc gets the block the previous call returned, with the layout
        // it was made with; the block is freed once, with its last layout.
        unsafe {
            let mut p = a.alloc(layout(sizes[0]));
            assert!(!p.is_null());
            fill(p, sizes[0]);
            for w in sizes.windows(2) {
                let (old, new) = (w[0], w[1]);
                p = a.realloc(p, layout(old), new);
                assert!(!p.is_null());
                check(p, old.min(new));
                fill(p, new);
            }
            a.dealloc(p, layout(*sizes.last().unwrap()));
        }
    }

    /// A large zeroed block reads as zeros, all of it.
    #[test]
    fn large_zeroed_blocks_are_zero() {
        let a = Allocator;
        let layout = Layout::from_size_align(LARGE + 100, 64).unwrap();
        // SAFETY: the block is read within its size and freed with its layout.
        unsafe {
            let p = a.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert!(
                (0..layout.size())
                    .step_by(511)
                    .all(|i| p.add(i).read() == 0)
            );
            a.dealloc(p, layout);
        }
    }

    /// Alignments stricter than a page stay with the system allocator, and are honoured.
    #[test]
    fn strict_alignment_is_honoured() {
        let a = Allocator;
        let layout = Layout::from_size_align(LARGE, 1 << 16).unwrap();
        // SAFETY: allocated and freed with the same layout.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % (1 << 16), 0);
            a.dealloc(p, layout);
        }
    }
}
