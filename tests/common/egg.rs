//! egg.js for the tests: egg@3 and egg-cluster@2 installed from the npm registry once into
//! a cache under the target directory, and the fixture app (fixtures/egg-app) copied below
//! it per test, so Node finds the packages in a parent's node_modules.

use super::{Clutch, DEADLINE, clutch_bin, wait_until};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The cache: `node_modules` with egg and egg-cluster, installed on first use. Concurrent
/// tests (and test binaries) wait on a file lock while one installs.
pub fn egg_cache() -> PathBuf {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("egg-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let done = cache.join(".installed");
    if done.exists() {
        return cache;
    }
    let lock = std::fs::File::create(cache.join(".lock")).unwrap();
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("lock the egg cache");
    if !done.exists() {
        assert!(
            super::net::have("npm"),
            "the egg tests need `npm` on PATH (Debian: apt-get install npm) to install egg"
        );
        std::fs::write(
            cache.join("package.json"),
            r#"{"name": "clutch-egg-cache", "private": true}"#,
        )
        .unwrap();
        let out = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "egg@3",
                "egg-cluster@2",
            ])
            .current_dir(&cache)
            .output()
            .expect("run npm");
        assert!(
            out.status.success(),
            "npm install egg@3 egg-cluster@2 failed in {}:\n{}",
            cache.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&done, "").unwrap();
    }
    cache
}

/// A copy of fixtures/egg-app in a temp dir below the cache, and the file its processes
/// record what they saw in.
pub struct EggApp {
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
}

impl EggApp {
    pub fn new() -> EggApp {
        let apps = egg_cache().join("apps");
        std::fs::create_dir_all(&apps).unwrap();
        let dir = tempfile::tempdir_in(&apps).unwrap();
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/egg-app"),
            dir.path(),
        );
        let log = dir.path().join("recorded.ndjson");
        EggApp { dir, log }
    }

    /// `clutch egg DIR ARGS`, logging at info, recording into [`EggApp::log`], with a
    /// parent channel.
    pub fn start(&self, args: &[&str]) -> Clutch {
        let mut cmd = Command::new(clutch_bin());
        cmd.arg("egg")
            .arg(self.dir.path())
            .args(args)
            .current_dir(self.dir.path())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env("EGG_TEST_LOG", &self.log)
            .env_remove("CLUTCH_CHANNEL_FD")
            .env_remove("NODE_CHANNEL_FD");
        Clutch::spawn_with_parent(cmd)
    }

    /// Every record so far: `{who, pid, event, data}`.
    pub fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The pids of `who` (agent, app) that recorded `event`.
    pub fn pids_with(&self, who: &str, event: &str) -> Vec<u64> {
        let mut pids: Vec<u64> = self
            .records()
            .iter()
            .filter(|r| r["who"] == who && r["event"] == event)
            .filter_map(|r| r["pid"].as_u64())
            .collect();
        pids.sort();
        pids.dedup();
        pids
    }

    /// Waits until `cond` holds of the records, or panics naming `what` with what was
    /// recorded and clutch's stderr.
    pub fn wait_for(&self, c: &Clutch, what: &str, cond: impl Fn(&EggApp) -> bool) {
        let ok = wait_until(Duration::from_secs(30), || cond(self));
        assert!(
            ok,
            "no {what}; recorded:\n{}\nstderr:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            c.stderr.text()
        );
    }
}

/// Waits for `egg-ready` on the parent channel (the cluster is ready); returns its data.
pub fn expect_egg_ready(c: &mut Clutch) -> Value {
    // egg apps load for seconds on a busy machine.
    c.expect("egg-ready", DEADLINE * 6, |m| m["action"] == "egg-ready")["data"].clone()
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
