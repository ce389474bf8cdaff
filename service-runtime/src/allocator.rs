//! How the services' allocators (mimalloc, SQLite's included; glibc's malloc for librdkafka)
//! hand freed memory back to the system.
//!
//! With mimalloc's defaults a service kept memory it no longer used: its arenas are committed
//! up front, so freed pages are only marked reusable and stay in the resident set, and what it
//! does give back waits ten seconds or more. user-service, which hashes the admin's password at
//! start (a 19 MiB argon2 block), sat at 29 MiB of anonymous memory for ten seconds and 14 MiB
//! after; with arenas committed on demand and purges after 100 ms it sits at 5 MiB within a
//! second. Purging at once (0 ms) saved another 2 MiB but returns and refetches pages on every
//! burst.

use libmimalloc_sys::{mi_collect, mi_option_set, mi_option_t};

/// mimalloc's option numbers (`mi_option_e` in its `mimalloc.h`). Retired options keep their
/// numbers there, so these stay put across versions.
const ARENA_EAGER_COMMIT: mi_option_t = 4;
const PURGE_DELAY: mi_option_t = 15;

/// How long freed memory waits before it goes back to the system, in milliseconds (arenas wait
/// ten times this).
const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// Commits arena memory as it is used and returns freed memory after [`PURGE_DELAY_MS`]. Call
/// once, early; a binary with another global allocator is unaffected.
#[allow(unsafe_code, reason = "mimalloc's options are set through its C interface only")]
pub fn return_freed_memory_promptly() {
    // SAFETY: `mi_option_set` stores a number in mimalloc's option table (with its own
    // synchronisation); it reads no pointer and accepts any option number and value.
    unsafe {
        mi_option_set(ARENA_EAGER_COMMIT, 0);
        mi_option_set(PURGE_DELAY, PURGE_DELAY_MS);
    }
}

/// Frees the pages of the calling thread's heap that hold nothing any more, and schedules them
/// to go back to the system. Each runtime worker calls it before it parks (see
/// [`crate::process::block_on`]).
///
/// mimalloc finds a page empty, and purges what is freed, only when the thread that owns the
/// heap allocates again: memory freed by another thread (which, with work stealing, is most of
/// a request's) waits on the owner. A worker that goes idle after a burst therefore kept the
/// burst's memory: the gateway held 73 MiB after the overload scenario with 3 MiB of it live.
/// Collected on park it held 28 MiB, at no measurable cost in throughput. A forced collection
/// (purging at once) cost a third of `userOrders`' throughput, as did a purge delay of 0.
#[allow(unsafe_code, reason = "mimalloc's collection is reached through its C interface only")]
pub fn collect_before_park() {
    // SAFETY: `mi_collect` works on the calling thread's own heap and reads no pointer of ours.
    unsafe { mi_collect(false) }
}

/// Returns what the calling thread's heap has freed to the system now, without the purge delay.
/// For a thread that has just freed a large block it may not need again soon: user-service
/// calls it after each password hash (a 7 MiB block), and a hashing thread then holds nothing
/// between hashes; with the delay, two hashing threads kept 20 MiB and peaked at 27. It costs
/// the next hash its page faults (about a tenth of the hash's time).
#[allow(unsafe_code, reason = "mimalloc's collection is reached through its C interface only")]
pub fn return_freed_memory_now() {
    // SAFETY: as in `collect_before_park`; forcing only purges at once.
    unsafe { mi_collect(true) }
}

/// Runs [`return_freed_memory_promptly`] before `main`: mimalloc creates its first arena on its
/// first allocation, which Rust's start-up code makes before `main`, and an option set after
/// that does not reach the arena (set only in `main`, user-service still held 14 MiB). Linked
/// in by [`crate::process::run_service`], which names it.
#[cfg(target_os = "linux")]
#[allow(unsafe_code, reason = "a function placed in .init_array runs before main")]
#[used]
#[unsafe(link_section = ".init_array")]
pub static CONFIGURE_BEFORE_MAIN: extern "C" fn() = configure_before_main;

#[cfg(target_os = "linux")]
extern "C" fn configure_before_main() {
    return_freed_memory_promptly();
    GLIBC_ARENAS_LIMITED.store(limit_glibc_arenas(), std::sync::atomic::Ordering::Relaxed);
    SQLITE_ON_MIMALLOC.store(sqlite_allocates_through_mimalloc(), std::sync::atomic::Ordering::Relaxed);
}

/// Whether SQLite took mimalloc as its allocator (for the test; SQLite reads its configuration
/// back only before it starts).
#[cfg(target_os = "linux")]
static SQLITE_ON_MIMALLOC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Hands SQLite's allocations to mimalloc and turns off SQLite's memory statistics; must run
/// before SQLite's first use (it refuses afterwards, and keeps its defaults then).
///
/// By default SQLite allocates through glibc's malloc and counts every allocation under one
/// process-wide mutex. Listing 20 orders with their items, order-service spent ~10 % of its CPU
/// there (`malloc_consolidate`, `_int_malloc`, `_int_free`, the statistics mutex and its futex
/// waits), and what SQLite freed stayed in glibc's arenas after a burst. Through mimalloc it is
/// returned like the rest of the process's memory (see [`return_freed_memory_promptly`]).
#[cfg(target_os = "linux")]
#[allow(unsafe_code, reason = "SQLite is configured through its C interface only")]
fn sqlite_allocates_through_mimalloc() -> bool {
    use libsqlite3_sys::{SQLITE_CONFIG_MALLOC, SQLITE_CONFIG_MEMSTATUS, SQLITE_OK, sqlite3_config};

    let methods = sqlite_mimalloc::methods();
    // SAFETY: called before main, before any SQLite call, so before SQLite initialises (the only
    // time it accepts these options). SQLite copies `methods`; its functions are valid for the
    // life of the process and follow the contract of `sqlite3_mem_methods` (see
    // `sqlite_mimalloc`). `SQLITE_CONFIG_MEMSTATUS` takes one `int`.
    unsafe {
        sqlite3_config(SQLITE_CONFIG_MALLOC, &raw const methods) == SQLITE_OK
            && sqlite3_config(SQLITE_CONFIG_MEMSTATUS, std::ffi::c_int::from(false)) == SQLITE_OK
    }
}

/// SQLite's allocator interface (`sqlite3_mem_methods`) over mimalloc.
#[cfg(target_os = "linux")]
#[allow(unsafe_code, reason = "functions SQLite calls through its C allocator interface")]
mod sqlite_mimalloc {
    use std::ffi::{c_int, c_void};

    use libmimalloc_sys::{mi_free, mi_good_size, mi_malloc, mi_realloc, mi_usable_size};
    use libsqlite3_sys::{SQLITE_OK, sqlite3_mem_methods};

    /// The table SQLite copies.
    pub(super) fn methods() -> sqlite3_mem_methods {
        sqlite3_mem_methods {
            xMalloc: Some(allocate),
            xFree: Some(free),
            xRealloc: Some(reallocate),
            xSize: Some(size),
            xRoundup: Some(round_up),
            xInit: Some(init),
            xShutdown: Some(shutdown),
            pAppData: std::ptr::null_mut(),
        }
    }

    /// A size SQLite asks for, or `None` for a negative one (which it never sends).
    fn bytes(size: c_int) -> Option<usize> {
        usize::try_from(size).ok()
    }

    /// A size SQLite is told, capped at what its `int` holds.
    fn int(size: usize) -> c_int {
        c_int::try_from(size).unwrap_or(c_int::MAX)
    }

    unsafe extern "C" fn allocate(size: c_int) -> *mut c_void {
        // SAFETY: mimalloc accepts any size (null when it cannot allocate, as SQLite expects).
        bytes(size).map_or(std::ptr::null_mut(), |size| unsafe { mi_malloc(size) })
    }

    unsafe extern "C" fn free(pointer: *mut c_void) {
        // SAFETY: SQLite frees only what `allocate` or `reallocate` returned (or null).
        unsafe { mi_free(pointer) }
    }

    unsafe extern "C" fn reallocate(pointer: *mut c_void, size: c_int) -> *mut c_void {
        // SAFETY: as in `free`; on failure the old block stays valid, as SQLite expects.
        bytes(size).map_or(std::ptr::null_mut(), |size| unsafe { mi_realloc(pointer, size) })
    }

    unsafe extern "C" fn size(pointer: *mut c_void) -> c_int {
        // SAFETY: as in `free`.
        int(unsafe { mi_usable_size(pointer) })
    }

    unsafe extern "C" fn round_up(size: c_int) -> c_int {
        // SAFETY: a pure function of its argument.
        bytes(size).map_or(size, |size| int(unsafe { mi_good_size(size) }))
    }

    unsafe extern "C" fn init(_: *mut c_void) -> c_int {
        SQLITE_OK
    }

    unsafe extern "C" fn shutdown(_: *mut c_void) {}
}

/// How many arenas glibc's malloc may keep. Rust code and SQLite allocate through mimalloc, but
/// librdkafka allocates through glibc, which gives each thread that allocates an arena of its own
/// (up to 8 per core). Measured when SQLite still allocated through glibc too: a service ran
/// 15, each holding free memory of its own (product-service: 4.3 MB held for 2.0 MB in use
/// after the bench's order runs). With 2, product-service's RSS after the same runs went
/// 20.1 -> 19.6 MB and order-service's 22.0 -> 21.4 MB, and throughput did not drop
/// (userOrders 3,051 -> 3,478/s, the order overload 653 -> 712/s in those runs).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const GLIBC_ARENAS: std::ffi::c_int = 2;

/// Whether [`GLIBC_ARENAS`] took effect (for the test; glibc has no getter).
#[cfg(target_os = "linux")]
static GLIBC_ARENAS_LIMITED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code, reason = "glibc's malloc is tuned through its C interface only")]
fn limit_glibc_arenas() -> bool {
    // SAFETY: `mallopt` sets a number in glibc's malloc parameters; called before main, when no
    // other thread can be allocating.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, GLIBC_ARENAS) == 1 }
}

#[cfg(all(target_os = "linux", not(target_env = "gnu")))]
fn limit_glibc_arenas() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use libmimalloc_sys::mi_option_get;

    use super::*;

    /// The options are set before `main` (this test binary links the constructor too). That the
    /// numbers name the options meant was checked against their defaults before the constructor
    /// existed: `arena_eager_commit` read 2 and `purge_delay` 1000, as `mimalloc.h` documents.
    #[test]
    #[allow(unsafe_code, reason = "reading mimalloc's options back")]
    fn the_options_are_set_before_main() {
        // SAFETY: `mi_option_get` reads a number from mimalloc's option table.
        let read = |option| unsafe { mi_option_get(option) };
        if cfg!(target_os = "linux") {
            assert_eq!(read(ARENA_EAGER_COMMIT), 0);
            assert_eq!(read(PURGE_DELAY), PURGE_DELAY_MS);
        }
        return_freed_memory_promptly();
        assert_eq!(read(ARENA_EAGER_COMMIT), 0);
        assert_eq!(read(PURGE_DELAY), PURGE_DELAY_MS);
    }

    /// SQLite took the allocator before main, and what it allocates comes from mimalloc.
    #[test]
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code, reason = "allocating through SQLite's C interface")]
    fn sqlite_allocates_from_mimalloc() {
        assert!(SQLITE_ON_MIMALLOC.load(std::sync::atomic::Ordering::Relaxed), "sqlite3_config refused");
        // SAFETY: a block from `sqlite3_malloc` is freed with `sqlite3_free`, once.
        unsafe {
            let block = libsqlite3_sys::sqlite3_malloc(100);
            assert!(!block.is_null());
            assert!(libmimalloc_sys::mi_is_in_heap_region(block), "SQLite's block is not mimalloc's");
            libsqlite3_sys::sqlite3_free(block);
        }
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_arenas_are_limited_before_main() {
        assert!(GLIBC_ARENAS_LIMITED.load(std::sync::atomic::Ordering::Relaxed), "mallopt(M_ARENA_MAX) refused");
    }
}
