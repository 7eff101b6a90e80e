//! The master's own `process_*` figures, from `/proc/self`, read at each scrape (one small
//! file, one `stat`): the four of Prometheus's process collector that matter here.
//! prometheus-client has no process collector, and the monitor's /proc reader reads other
//! fields (it has no start time), hence this one.

use std::io::Read;

/// The figures Prometheus's process collector names `process_*`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ProcessFigures {
    pub(crate) cpu_seconds: f64,
    pub(crate) resident_bytes: u64,
    pub(crate) open_fds: u64,
    /// Seconds since the Unix epoch.
    pub(crate) start_time: f64,
}

/// The kernel's units, and the boot time that start times count from.
struct Units {
    ticks_per_second: f64,
    page_size: u64,
    boot_time: f64,
}

fn units() -> &'static Units {
    static UNITS: std::sync::OnceLock<Units> = std::sync::OnceLock::new();
    UNITS.get_or_init(|| {
        // SAFETY: sysconf only reads a constant of the running system.
        let (tck, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<f64>().ok())
            })
            .unwrap_or(0.0);
        Units {
            ticks_per_second: if tck > 0 { tck as f64 } else { 100.0 },
            page_size: if page > 0 { page as u64 } else { 4096 },
            boot_time,
        }
    })
}

/// This process's figures now; `None` when /proc cannot be read.
pub(crate) fn read() -> Option<ProcessFigures> {
    let mut text = String::new();
    std::fs::File::open("/proc/self/stat")
        .ok()?
        .read_to_string(&mut text)
        .ok()?;
    let u = units();
    let mut f = parse_stat(&text, u.ticks_per_second, u.page_size)?;
    f.start_time += u.boot_time;
    f.open_fds = open_fds();
    Some(f)
}

/// Reads `/proc/<pid>/stat` (proc(5)), fields after the *last* `)` (a `comm` may hold
/// one): utime (14), stime (15), starttime (22, ticks after boot), rss (24, pages). The
/// start time is since boot here.
fn parse_stat(text: &str, ticks: f64, page: u64) -> Option<ProcessFigures> {
    let rest = &text[text.rfind(')')? + 1..];
    // Field 3 (the state) is the first after `)`: field N is at index N - 3.
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    Some(ProcessFigures {
        cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
        resident_bytes: field(24)?.saturating_mul(page),
        open_fds: 0,
        start_time: field(22)? as f64 / ticks,
    })
}

/// Since Linux 6.2 the size of `/proc/self/fd` is the number of open fds; older kernels
/// say 0, and the directory is counted (its own fd included, as every reader does).
fn open_fds() -> u64 {
    match std::fs::metadata("/proc/self/fd") {
        Ok(m) if m.len() > 0 => m.len(),
        _ => std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_the_last_parenthesis() {
        let line = "42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 \
                    12345 9999999 300 18446744073709551615";
        let f = parse_stat(line, 100.0, 4096).unwrap();
        assert_eq!(f.cpu_seconds, 3.0);
        assert_eq!(f.resident_bytes, 300 * 4096);
        assert_eq!(f.start_time, 123.45);
        assert_eq!(parse_stat("42 (x) S 1", 100.0, 4096), None);
    }

    #[test]
    fn this_process_reads_as_started_in_the_past_with_memory_and_fds() {
        let f = read().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(f.start_time > 1e9 && f.start_time <= now + 1.0, "{f:?}");
        assert!(f.resident_bytes > 0 && f.open_fds >= 3, "{f:?}");
    }
}
