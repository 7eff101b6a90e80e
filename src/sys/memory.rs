//! Giving freed memory back to the kernel after a burst.
//!
//! Freeing a buffer is not enough for glibc's malloc to return its pages. Once a large
//! block (say a 16 MiB line buffer) is freed, glibc raises its `mmap` threshold to that
//! size and its trim threshold to twice it, so the next blocks of a few MiB come from the
//! heap, and up to 32 MiB freed at the heap's top stay resident: measured, a master at
//! 8 MiB stayed at 36 MiB after a burst of 10 MiB messages, with every buffer already given
//! back. `malloc_trim` releases them. (`mallopt` could pin the thresholds instead, but for
//! the whole process of a library user, for good.)
//!
//! A trim costs about half a millisecond (measured: 0.5 to 1 ms, most of it unmapping what
//! it gives back), too much after every large message of a steady stream, so there is at
//! most one a second: a release within a second of the last trim schedules one for the end
//! of that second, which also covers the end of a burst.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Milliseconds since [`epoch`] of the last trim, plus one (0: never).
static LAST_TRIM: AtomicU64 = AtomicU64::new(0);
/// When the scheduled trim is due, in the same unit (0: none). A schedule long past its due
/// time was lost with its runtime (a `Master` dropped meanwhile) and no longer counts.
static SCHEDULED: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64 + 1
}

/// Says that a buffer of a MiB or more was just released: the allocator is asked to give
/// free memory back to the kernel now, or within a second if it was asked less than a
/// second ago. Elsewhere than glibc it does nothing.
pub fn released_a_large_buffer() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    let now = now_ms();
    let last = LAST_TRIM.load(Ordering::Relaxed);
    let interval = MIN_INTERVAL.as_millis() as u64;
    if last == 0 || now >= last + interval {
        trim();
        return;
    }
    let scheduled = SCHEDULED.load(Ordering::Relaxed);
    if scheduled != 0 && now <= scheduled + interval {
        return;
    }
    let due = last + interval;
    if SCHEDULED
        .compare_exchange(scheduled, due, Ordering::Relaxed, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(async move {
                tokio::time::sleep(Duration::from_millis(due - now)).await;
                let _ = SCHEDULED.compare_exchange(due, 0, Ordering::Relaxed, Ordering::Relaxed);
                trim();
            });
        }
        Err(_) => {
            SCHEDULED.store(0, Ordering::Relaxed);
            trim();
        }
    }
}

fn trim() {
    LAST_TRIM.store(now_ms(), Ordering::Relaxed);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only reorganises the allocator's own free memory; it takes the
    // allocator's locks itself and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
