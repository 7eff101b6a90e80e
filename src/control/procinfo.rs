//! What /proc says of a worker: CPU, memory, open fds, environment. Read on demand (a
//! `list` or an `inspect`), nothing sampled in the background.

use std::time::Duration;

/// CPU and memory of one process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// CPU time over the process's life, in percent of one CPU.
    pub cpu_percent: f64,
    pub rss_bytes: u64,
}

/// Seconds since boot (`/proc/uptime`), read once per `list` for every worker's CPU %.
pub fn system_uptime() -> Option<f64> {
    std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Reads `/proc/PID/stat` and `/proc/PID/statm`; `None` when the process is gone.
/// `uptime` is [`system_uptime`].
pub fn usage(pid: u32, uptime: f64) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // Field 14 (utime) is at index 11 here: index 0 is field 3 (state).
    let (utime, stime, start) = (num(11)?, num(12)?, num(19)?);
    let tck = ticks_per_second();
    let alive = (uptime - start as f64 / tck).max(0.001);
    let cpu_percent = ((utime + stime) as f64 / tck) / alive * 100.0;
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(Usage {
        cpu_percent: (cpu_percent * 10.0).round() / 10.0,
        rss_bytes: pages * page_size(),
    })
}

/// How many fds the process has open.
pub fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// The process's environment, values of keys that look secret replaced.
pub fn environment(pid: u32) -> Option<Vec<(String, String)>> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let kv = String::from_utf8_lossy(kv);
                let (k, v) = kv.split_once('=').unwrap_or((&kv, ""));
                let v = if looks_secret(k) { "<redacted>" } else { v };
                (k.to_string(), v.to_string())
            })
            .collect(),
    )
}

/// Whether an environment key names something to keep out of `inspect`.
pub fn looks_secret(key: &str) -> bool {
    const WORDS: [&str; 8] = [
        "KEY",
        "SECRET",
        "TOKEN",
        "PASSWORD",
        "PASS",
        "CREDENTIAL",
        "AUTH",
        "PRIVATE",
    ];
    let k = key.to_ascii_uppercase();
    WORDS.iter().any(|w| k.contains(w))
}

fn ticks_per_second() -> f64 {
    use nix::unistd::{SysconfVar, sysconf};
    sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64
}

fn page_size() -> u64 {
    use nix::unistd::{SysconfVar, sysconf};
    sysconf(SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64
}

/// Milliseconds, for JSON.
pub fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_recognised_and_our_own_process_is_read() {
        for k in [
            "AWS_SECRET_ACCESS_KEY",
            "github_token",
            "DB_PASS",
            "Authorization",
        ] {
            assert!(looks_secret(k), "{k}");
        }
        for k in ["PATH", "HOME", "CLUTCH_NAME"] {
            assert!(!looks_secret(k), "{k}");
        }
        let me = std::process::id();
        let u = usage(me, system_uptime().unwrap()).unwrap();
        assert!(u.rss_bytes > 0 && u.cpu_percent >= 0.0);
        assert!(open_fds(me).unwrap() >= 3);
        assert!(environment(me).unwrap().iter().any(|(k, _)| k == "PATH"));
    }
}
