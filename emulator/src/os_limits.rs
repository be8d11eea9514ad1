//! Process limits `up` sets for itself.

/// Descriptors `up` asks for: one per MQTT connection (a fleet of 10,000 devices) plus the HTTP APIs' bounded
/// connections, the state files and the functions' pipes.
pub const WANTED_OPEN_FILES: u64 = 65_536;

/// Raises the soft limit on open files towards [`WANTED_OPEN_FILES`], within the hard limit (which needs no
/// privilege). The common soft default, 1,024, is far below what a broker needs: MQTT clients beyond it were
/// refused while the hard limit allowed many more. Returns the soft limit in force afterwards.
#[cfg(target_os = "linux")]
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write to / read from the struct we pass, nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let wanted = WANTED_OPEN_FILES.min(limit.rlim_max);
    if limit.rlim_cur < wanted {
        limit.rlim_cur = wanted;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

#[cfg(not(target_os = "linux"))]
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    Ok(0)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_within_the_hard_limit() {
        let soft = raise_open_file_limit().unwrap();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        assert_eq!(limit.rlim_cur, soft);
        assert!(soft >= WANTED_OPEN_FILES.min(limit.rlim_max), "{soft}");
    }
}
