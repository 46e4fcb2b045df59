//! The allocator of every binary that runs the engine, and its tuning:
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: duff_alloc::Allocator = duff_alloc::Allocator;
//!
//! fn main() {
//!     duff_alloc::tune();
//!     let v: Vec<u64> = (0..1000).collect();
//!     assert_eq!(v.iter().sum::<u64>(), 499_500);
//! }
//! ```

pub use mimalloc::MiMalloc as Allocator;

/// Settings measured on the 1 GiB benchmark (`benches/README.md`, "Current figures"); call first thing in `main`.
///
/// - mimalloc hands memory back to the OS a moment after it is freed, and the engine frees and
///   allocates column buffers for every range, so the next ranges faulted it back in zeroed:
///   ~1 GiB per GiB of input. Keeping it costs ~25 MiB of peak RSS.
/// - Transparent huge pages made the kernel compact memory and zero 2 MiB pages on first touch:
///   up to 1.5 s of system time per GiB of input on a machine whose memory is fragmented, for
///   ~3% less user time (fewer TLB misses in the dedup tables).
pub fn tune() {
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15; // mimalloc.h (v2 and v3)
    // SAFETY: sets a process-wide allocator option, which is valid at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    #[cfg(target_os = "linux")]
    // SAFETY: integer arguments only; if it fails, THP stays as the system configures it.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tune_keeps_freed_memory_and_turns_off_huge_pages() {
        super::tune();
        // SAFETY: reads an allocator option.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(15) }, -1);
        #[cfg(target_os = "linux")]
        {
            // SAFETY: integer arguments only.
            let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
            assert_eq!(disabled, 1);
        }
    }
}
