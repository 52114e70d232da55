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
//! Small blocks are glibc's, unchanged. A large block is a private anonymous mapping
//! rounded up to whole 2 MiB pages (the kernel places such mappings on 2 MiB boundaries),
//! advised with `MADV_HUGEPAGE`; the kernel still backs it lazily and falls back to small
//! pages when no huge page is free, so this changes speed only, never what a program may
//! allocate. Growing a large block moves its mapping (`mremap`), without copying.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

/// Blocks of at least this many bytes get their own mapping.
const LARGE: usize = 4 << 20;

/// A transparent huge page (x86-64 and arm64 with 4 KiB pages).
const HUGE_PAGE: usize = 2 << 20;

/// The allocator; `main.rs` installs it with `#[global_allocator]`.
pub struct Allocator;

fn is_large(size: usize, align: usize) -> bool {
    // mmap gives page alignment; anything stricter stays with the system allocator.
    size >= LARGE && align <= 4096
}

fn mapped_len(size: usize) -> usize {
    size.div_ceil(HUGE_PAGE) * HUGE_PAGE
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
