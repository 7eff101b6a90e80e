//! Giving freed memory back to the kernel after a burst.
//!
//! Freeing a buffer is not enough for glibc's malloc to return its pages. Once a large
//! block (say a 16 MiB line buffer) is freed, glibc raises its `mmap` threshold to that
//! size and its trim threshold to twice it, so the next blocks of a few MiB come from the
//! heap, and up to 32 MiB freed at the heap's top stay resident: measured, a master at
//! 8 MiB stayed at 36 MiB after a burst of 10 MiB messages, with every buffer already given
//! back. `malloc_trim` releases them. Changing the thresholds with `mallopt` would do it
//! too, but for the whole process of a library user, for good.

/// Asks the allocator to return free memory to the kernel. Called only after a buffer of
/// a MiB or more was released, so its cost (a walk of the free lists) is small beside the
/// work that filled that buffer. Elsewhere than glibc it does nothing.
pub fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only reorganises the allocator's own free memory; it takes the
    // allocator's locks itself and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
