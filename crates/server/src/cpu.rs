//! CPU time, from the kernel's own accounting (`getrusage`): user + system time; and the
//! calling thread's scheduling priority (`setpriority`).

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

/// Lowers the calling thread's scheduling priority to nice `nice` (0–19; Linux applies
/// `setpriority(PRIO_PROCESS, tid)` to that thread alone, and threads it starts inherit it).
/// Errors are the OS's (`EACCES` raising it back is not attempted here).
pub fn set_thread_nice(nice: i32) -> std::io::Result<()> {
    // SAFETY: `gettid` and `setpriority` take plain integers and touch no memory of ours.
    let tid = unsafe { libc::gettid() };
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
