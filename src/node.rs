//! The listen preload for Node app workers: a small CommonJS file clutch ships
//! (`node/listen_preload.js`) and injects with `NODE_OPTIONS=--require PATH` when the master
//! owns the port in shared mode. It makes `server.listen(CLUTCH_PORT)` in any Node server
//! listen on the inherited socket (fd 3) instead of binding, so N unmodified workers share
//! the port (Node has no `SO_REUSEPORT`, and outside Node's own cluster the second bind
//! fails with `EADDRINUSE`).
//!
//! The file is written once per process, on the first spawn that needs it, to a private
//! runtime directory: `$XDG_RUNTIME_DIR/clutch/`, else `$TMPDIR/clutch-UID/` (made 0700 and
//! checked to be ours, as it sits in a shared directory). Its name holds a hash of its
//! content, so masters of different versions share the directory without clashing and
//! nothing needs removing: a temporary directory removed at exit would be left behind by a
//! master that is SIGKILLed, while this leaves at most one small file per clutch version.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The preload's source.
pub const LISTEN_PRELOAD: &str = include_str!("node/listen_preload.js");

/// The path of the preload file, written on the first call; the same path (or the same
/// error) after that.
pub fn preload_path() -> Result<&'static Path, &'static str> {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PATH.get_or_init(|| write_preload(&runtime_dir()).map_err(|e| e.to_string()))
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(String::as_str)
}

/// `NODE_OPTIONS` for a worker: what the user set (the worker's `env`, else the master's
/// own environment), then `--require "PATH"`.
pub fn node_options(user_env: &[(String, String)], preload: &Path) -> String {
    let user = user_env
        .iter()
        .rev()
        .find(|(k, _)| k == "NODE_OPTIONS")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("NODE_OPTIONS").ok())
        .unwrap_or_default();
    let require = format!("--require {}", quote(&preload.to_string_lossy()));
    match user.trim() {
        "" => require,
        user => format!("{user} {require}"),
    }
}

/// Quotes a value as Node's NODE_OPTIONS parser reads it: in double quotes, with `\` and
/// `"` escaped by a backslash.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() && Path::new(&d).is_dir() => Path::new(&d).join("clutch"),
        _ => std::env::temp_dir().join(format!("clutch-{}", uid())),
    }
}

/// Writes the preload into `dir` (made private if missing) unless an identical file is
/// there; returns its path.
fn write_preload(dir: &Path) -> io::Result<PathBuf> {
    let named = |what: &str, e: io::Error| {
        io::Error::new(e.kind(), format!("cannot {what} {}: {e}", dir.display()))
    };
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(named("create", e)),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| named("inspect", e))?;
    if !meta.is_dir() || meta.uid() != uid() || meta.mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} must be a directory of this user that only it can open (mode 0700); \
                 remove it or set XDG_RUNTIME_DIR",
                dir.display()
            ),
        ));
    }
    let path = dir.join(format!("listen-preload-{:016x}.js", fnv1a(LISTEN_PRELOAD)));
    if std::fs::read(&path).is_ok_and(|b| b == LISTEN_PRELOAD.as_bytes()) {
        return Ok(path);
    }
    // Written aside and renamed, so a worker never reads half a file.
    let tmp = dir.join(format!(".listen-preload.{}.tmp", std::process::id()));
    let write = || -> io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(LISTEN_PRELOAD.as_bytes())?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        named("write the listen preload into", e)
    })?;
    Ok(path)
}

fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// A stable hash for the file name (std's hasher may change between Rust versions).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_quoted_as_node_reads_it() {
        let p = Path::new("/run/a b/\"x\\y\".js");
        assert_eq!(
            node_options(&[], p).rsplit_once("--require ").unwrap().1,
            r#""/run/a b/\"x\\y\".js""#
        );
    }

    #[test]
    fn the_users_node_options_come_first() {
        let env = vec![("NODE_OPTIONS".into(), "--max-old-space-size=64".into())];
        assert_eq!(
            node_options(&env, Path::new("/p.js")),
            r#"--max-old-space-size=64 --require "/p.js""#
        );
    }

    #[test]
    fn the_file_is_written_once_in_a_private_directory() {
        let base = std::env::temp_dir().join(format!("clutch-node-test-{}", std::process::id()));
        let dir = base.join("clutch");
        std::fs::create_dir_all(&base).unwrap();
        let a = write_preload(&dir).unwrap();
        let b = write_preload(&dir).unwrap();
        assert_eq!(a, b);
        assert_eq!(std::fs::read_to_string(&a).unwrap(), LISTEN_PRELOAD);
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let e = write_preload(&dir).unwrap_err().to_string();
        assert!(e.contains("0700"), "{e}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
