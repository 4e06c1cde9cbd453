//! How the process's C allocator treats freed memory.
//!
//! libtorch allocates CPU tensors with the C allocator, and glibc's malloc hands
//! a large freed block back to the kernel (`munmap`, or `brk` trimming the heap),
//! so the next tensor of that size costs a fresh page fault and a zeroed page for
//! every 4 KiB. A CVAE epoch or a latent-prior fit allocates such blocks
//! thousands of times (the kernel time it cost: report/DECISIONS.md, "Keep freed memory").

use std::sync::OnceLock;

/// Largest block (bytes) malloc serves from its heap; larger ones are mapped
/// and returned on free. 32 MiB is glibc's own upper bound for its adaptive threshold.
pub const MMAP_THRESHOLD: i32 = 32 << 20;

/// Free memory at the top of the heap (bytes) kept for reuse instead of
/// returned to the kernel.
pub const TRIM_THRESHOLD: i32 = 1 << 30;

/// Extra heap (bytes) requested whenever the heap grows, so it grows rarely
/// (address space only: a page costs memory once touched).
pub const TOP_PAD: i32 = 256 << 20;

/// Makes malloc keep freed memory for the next tensor (see the module
/// documentation). Called by [`crate::default_device`], so every training,
/// evaluation and notebook gets it; idempotent. Returns whether the allocator
/// took every setting (false off glibc, where nothing is changed).
pub fn keep_freed_memory() -> bool {
    static ACCEPTED: OnceLock<bool> = OnceLock::new();
    *ACCEPTED.get_or_init(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes malloc's tuning parameters, and every
        // value is within glibc's documented range; it returns 1 on success.
        {
            let settings = [
                (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                (libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                (libc::M_TOP_PAD, TOP_PAD),
            ];
            // Every setting is made, even after one is refused.
            let accepted = settings.map(|(parameter, value)| unsafe { libc::mallopt(parameter, value) } == 1);
            accepted.iter().all(|&ok| ok)
        }
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        false
    })
}
