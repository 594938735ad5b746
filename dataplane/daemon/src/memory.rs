//! Handing the start-up peak back to the kernel.

/// Reading and compiling the first full state allocates far more than it keeps (every parsed
/// document, every intermediate list), and glibc keeps what was freed in its arenas, so the
/// daemon's RSS would stay at that peak for its whole life. This returns the free pages.
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    #[expect(
        unsafe_code,
        reason = "malloc_trim is the only way to ask glibc to return free arena pages"
    )]
    // SAFETY: malloc_trim takes no pointers; it only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
