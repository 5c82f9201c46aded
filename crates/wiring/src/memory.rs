//! Returning freed heap memory to the system: a thread that asks glibc's allocator to release
//! the free pages of every arena at a fixed interval (`memory_trim_secs`).
//!
//! glibc keeps the pages of freed blocks resident unless they sit at the top of an arena, so a
//! server that runs many threads (tokio workers, rayon, blocking tokenization) and allocates
//! buffers of every size grows to the highest mark its traffic ever reached. `malloc_trim`
//! releases the free pages in the middle of the arenas too. The measurements, and the
//! allocators that return memory on their own, are in docs/performance.md ("Memory").

use std::time::Duration;

/// Starts the trimming thread; `every` zero leaves memory alone.
pub(crate) fn trim_memory_every(every: Duration) {
    if every.is_zero() || !available() {
        return;
    }
    let started = std::thread::Builder::new().name("aki-memory-trim".into()).spawn(move || {
        loop {
            std::thread::sleep(every);
            trim();
        }
    });
    match started {
        Ok(_) => tracing::info!(every_secs = every.as_secs(), "returning freed heap pages to the system periodically"),
        Err(e) => tracing::warn!("cannot start the memory trimming thread: {e}"),
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn available() -> bool {
    true
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn available() -> bool {
    false
}

/// Releases the free pages of every arena; true when some were released.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() -> bool {
    // SAFETY: malloc_trim takes no pointer and may be called from any thread at any time; it
    // takes each arena's lock while it walks it.
    #[allow(unsafe_code)]
    let released = unsafe { libc::malloc_trim(0) };
    released == 1
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident memory of this process, in KiB.
    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("proc status");
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
        line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmRSS value")
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn freed_pages_in_the_middle_of_the_heap_go_back_to_the_system() {
        // 64 MiB in blocks below glibc's mmap threshold, touched, then every other one freed:
        // the holes stay resident until trimmed, as a server's freed buffers do.
        let mut blocks: Vec<Vec<u8>> = (0..1024).map(|i| vec![i as u8 | 1; 64 * 1024]).collect();
        let mut kept = Vec::new();
        for (i, block) in blocks.drain(..).enumerate() {
            if i % 2 == 0 {
                kept.push(block);
            }
        }
        let before = rss_kib();
        assert!(trim(), "malloc_trim released nothing");
        let after = rss_kib();
        assert!(before.saturating_sub(after) > 16 * 1024, "resident {before} KiB before the trim, {after} KiB after");
        assert!(kept.iter().all(|b| b[0] != 0));
    }
}
