//! CPU time, from the kernel's own accounting (`getrusage`): user + system time.

use std::time::Duration;

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: `getrusage` only writes the struct we hand it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU time this process has used so far, all threads (finished threads included).
pub fn process() -> Duration {
    rusage(libc::RUSAGE_SELF)
}

/// CPU time the calling thread has used so far.
pub fn thread() -> Duration {
    rusage(libc::RUSAGE_THREAD)
}
