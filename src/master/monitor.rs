//! The monitor: what the master knows of each live worker's resources, pulled from /proc
//! every `--monitor-interval`, and what the worker pushed itself (`clutch:monitor`).
//!
//! Pull: one task on the master's runtime reads `/proc/<pid>/stat` (CPU time, threads,
//! RSS) and counts `/proc/<pid>/fd` for the pids in the registry, nothing else. The reads
//! are done directly rather than with the `procfs` crate: four numbers from one file and
//! one directory do not need a crate and its dependencies, and the hand-written parser is
//! the one edge case that matters (a `comm` holding `)` or spaces: fields are read after
//! the *last* `)`). /proc reads do not block on disk, so they run on the master's thread.
//!
//! Push: the reader task hands a validated `data` object to [`Monitor::push`]; the latest
//! one per worker is kept. Both are read with [`Monitor::sample`], never by the hot paths.

use crate::master::registry::Registry;
use crate::master::worker::WorkerId;
use serde::Serialize;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// At most this many keys in a pushed `data` object.
pub const PUSH_MAX_KEYS: usize = 64;
/// At most this many bytes of JSON in a pushed `data` object.
pub const PUSH_MAX_BYTES: usize = 4096;

/// The latest figures for one worker.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sample {
    pub pid: u32,
    /// CPU use between the last two samples, in percent of one core; `None` until two
    /// samples were taken.
    pub cpu_percent: Option<f64>,
    /// User plus system CPU time since the process started.
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    pub threads: u64,
    pub fds: u64,
    /// What the worker last pushed with `clutch:monitor`.
    pub pushed: Option<Map<String, Value>>,
    /// When /proc was last read for it (`None`: never yet).
    #[serde(skip)]
    pub sampled_at: Option<Instant>,
}

/// A live worker and its latest sample (zeros when not sampled yet).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerStats {
    pub role: crate::protocol::Role,
    /// Slot id (0 for the agent).
    pub id: u32,
    pub pid: u32,
    pub ready: bool,
    pub sample: Sample,
}

/// Every worker of `core` that has a process, with its sample.
pub(crate) fn stats(core: &crate::master::core::Core, monitor: &Monitor) -> Vec<WorkerStats> {
    core.workers()
        .filter_map(|w| {
            let pid = w.pid?;
            Some(WorkerStats {
                role: w.role,
                id: w.slot,
                pid,
                ready: w.phase == crate::master::core::Phase::Ready,
                sample: monitor.sample(w.id).unwrap_or(Sample {
                    pid,
                    ..Sample::default()
                }),
            })
        })
        .collect()
}

/// The samples of every live worker, keyed by [`WorkerId`].
#[derive(Default)]
pub struct Monitor {
    samples: RefCell<HashMap<WorkerId, Sample>>,
}

impl Monitor {
    /// The latest sample of `worker`, if it is live and was sampled or pushed something.
    pub fn sample(&self, worker: WorkerId) -> Option<Sample> {
        self.samples.borrow().get(&worker).cloned()
    }

    /// Every live worker's latest sample.
    pub fn samples(&self) -> Vec<(WorkerId, Sample)> {
        let mut v: Vec<_> = self
            .samples
            .borrow()
            .iter()
            .map(|(w, s)| (*w, s.clone()))
            .collect();
        v.sort_by_key(|(w, _)| *w);
        v
    }

    /// Keeps `data` as what `worker` (pid `pid`) pushed last.
    pub fn push(&self, worker: WorkerId, pid: u32, data: Map<String, Value>) {
        let mut samples = self.samples.borrow_mut();
        let s = samples.entry(worker).or_default();
        s.pid = pid;
        s.pushed = Some(data);
    }

    /// Forgets a worker that is gone.
    pub fn forget(&self, worker: WorkerId) {
        self.samples.borrow_mut().remove(&worker);
    }

    /// Samples every worker in `registry` now.
    pub fn sample_all(&self, registry: &Registry, clock: &Clock) {
        let mut live = Vec::new();
        registry.each(|e| live.push((e.worker, e.name.pid)));
        let now = Instant::now();
        let mut buf = String::new();
        let mut samples = self.samples.borrow_mut();
        // Workers that left the registry (channel closed) are not sampled any more.
        samples.retain(|w, _| live.iter().any(|(l, _)| l == w));
        for (worker, pid) in live {
            let Some(stat) = read_stat(pid, &mut buf, clock) else {
                continue;
            };
            let s = samples.entry(worker).or_default();
            s.cpu_percent = match s.sampled_at {
                Some(then) if s.pid == pid => {
                    let secs = now.duration_since(then).as_secs_f64();
                    (secs > 0.0)
                        .then(|| ((stat.cpu_seconds - s.cpu_seconds).max(0.0) / secs) * 100.0)
                }
                _ => None,
            };
            s.pid = pid;
            s.cpu_seconds = stat.cpu_seconds;
            s.rss_bytes = stat.rss_bytes;
            s.threads = stat.threads;
            s.fds = count_fds(pid);
            s.sampled_at = Some(now);
        }
    }
}

/// Samples every `interval` for as long as the master runs (zero: never).
pub async fn run(monitor: Rc<Monitor>, registry: Rc<Registry>, interval: Duration) {
    if interval.is_zero() {
        return;
    }
    let clock = Clock::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        monitor.sample_all(&registry, &clock);
    }
}

/// The kernel's units for /proc figures.
pub struct Clock {
    ticks_per_second: f64,
    page_size: u64,
}

impl Clock {
    pub fn new() -> Clock {
        // SAFETY: sysconf only reads a constant of the running system.
        let (tck, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        Clock {
            ticks_per_second: if tck > 0 { tck as f64 } else { 100.0 },
            page_size: if page > 0 { page as u64 } else { 4096 },
        }
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}

#[derive(Debug, PartialEq)]
struct Stat {
    cpu_seconds: f64,
    threads: u64,
    rss_bytes: u64,
}

fn read_stat(pid: u32, buf: &mut String, clock: &Clock) -> Option<Stat> {
    buf.clear();
    std::fs::File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .read_to_string(buf)
        .ok()?;
    parse_stat(buf, clock)
}

/// Reads `/proc/<pid>/stat` (proc(5)): after `pid (comm) `, field 3 is the state, so
/// utime (14) and stime (15) are the 12th and 13th after `)`, num_threads (20) the 18th,
/// rss (24, in pages) the 22nd.
fn parse_stat(text: &str, clock: &Clock) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let mut nth = |skip: usize| -> Option<u64> { fields.nth(skip)?.parse().ok() };
    let utime = nth(11)?;
    let stime = nth(0)?;
    let threads = nth(4)?;
    let rss_pages = nth(3)?;
    Some(Stat {
        cpu_seconds: (utime + stime) as f64 / clock.ticks_per_second,
        threads,
        rss_bytes: rss_pages.saturating_mul(clock.page_size),
    })
}

/// Since Linux 6.2 the size of `/proc/<pid>/fd` is the number of open fds: one `stat`
/// instead of reading the directory; older kernels say 0, and the directory is counted.
fn count_fds(pid: u32) -> u64 {
    let dir = format!("/proc/{pid}/fd");
    match std::fs::metadata(&dir) {
        Ok(m) if m.len() > 0 => m.len(),
        Ok(_) => std::fs::read_dir(&dir).map_or(0, |d| d.count() as u64),
        Err(_) => 0,
    }
}

/// Checks a `clutch:monitor` line and returns its `data`: a flat object of at most
/// [`PUSH_MAX_KEYS`] numbers and strings in at most [`PUSH_MAX_BYTES`] of JSON.
pub fn validate_push(line: &str) -> Result<Map<String, Value>, String> {
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        #[serde(borrow)]
        data: Option<&'a serde_json::value::RawValue>,
    }
    let l: Line<'_> = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let Some(raw) = l.data else {
        return Err("`clutch:monitor` without `data`".into());
    };
    let len = raw.get().len();
    if len > PUSH_MAX_BYTES {
        return Err(format!(
            "`clutch:monitor` data of {len} bytes (at most {PUSH_MAX_BYTES})"
        ));
    }
    let data: Map<String, Value> = serde_json::from_str(raw.get())
        .map_err(|_| "`clutch:monitor` data must be a JSON object".to_string())?;
    if data.len() > PUSH_MAX_KEYS {
        return Err(format!(
            "`clutch:monitor` data with {} keys (at most {PUSH_MAX_KEYS})",
            data.len()
        ));
    }
    if let Some((k, _)) = data
        .iter()
        .find(|(_, v)| !matches!(v, Value::Number(_) | Value::String(_)))
    {
        return Err(format!(
            "`clutch:monitor` data key `{k}` is not a number or a string (the object must be flat)"
        ));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_the_last_parenthesis() {
        let clock = Clock {
            ticks_per_second: 100.0,
            page_size: 4096,
        };
        let line = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 \
                    12345 9999999 300 18446744073709551615";
        assert_eq!(
            parse_stat(line, &clock),
            Some(Stat {
                cpu_seconds: 3.0,
                threads: 7,
                rss_bytes: 300 * 4096,
            })
        );
        assert_eq!(parse_stat("42 (x) S 1", &clock), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let clock = Clock::new();
        let mut buf = String::new();
        let s = read_stat(std::process::id(), &mut buf, &clock).unwrap();
        assert!(s.rss_bytes > 0 && s.threads >= 1);
        assert!(count_fds(std::process::id()) >= 3);
    }

    #[test]
    fn a_flat_object_is_kept() {
        let d =
            validate_push(r#"{"action":"clutch:monitor","data":{"qps":12.5,"name":"w","n":-3}}"#)
                .unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d["name"], "w");
    }

    #[test]
    fn anything_else_is_refused() {
        for (line, why) in [
            (r#"{"action":"clutch:monitor"}"#, "without `data`"),
            (
                r#"{"action":"clutch:monitor","data":[1]}"#,
                "must be a JSON object",
            ),
            (
                r#"{"action":"clutch:monitor","data":5}"#,
                "must be a JSON object",
            ),
            (
                r#"{"action":"clutch:monitor","data":{"a":{"b":1}}}"#,
                "key `a` is not a number",
            ),
            (
                r#"{"action":"clutch:monitor","data":{"a":null}}"#,
                "key `a`",
            ),
            (
                r#"{"action":"clutch:monitor","data":{"a":true}}"#,
                "key `a`",
            ),
            (r#"{"action":"clutch:monitor","data":{"a":[1]}}"#, "key `a`"),
        ] {
            let e = validate_push(line).unwrap_err();
            assert!(e.contains(why), "{line}: {e}");
        }
    }

    #[test]
    fn size_and_key_bounds_hold() {
        let keys: Map<String, Value> = (0..PUSH_MAX_KEYS)
            .map(|i| (format!("k{i}"), 1.into()))
            .collect();
        let line = serde_json::json!({"action": "clutch:monitor", "data": keys}).to_string();
        assert!(validate_push(&line).is_ok());
        let keys: Map<String, Value> = (0..=PUSH_MAX_KEYS)
            .map(|i| (format!("k{i}"), 1.into()))
            .collect();
        let line = serde_json::json!({"action": "clutch:monitor", "data": keys}).to_string();
        assert!(validate_push(&line).unwrap_err().contains("65 keys"));
        let big = "x".repeat(PUSH_MAX_BYTES);
        let line = serde_json::json!({"action": "clutch:monitor", "data": {"s": big}}).to_string();
        assert!(validate_push(&line).unwrap_err().contains("at most 4096"));
    }
}
