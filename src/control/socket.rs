//! Where the control socket lives, and binding it: a private directory, a 0600 socket, a
//! stale socket replaced, a live one (another master of that name) refused.

use crate::config::ConfigError;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use interprocess::os::unix::local_socket::ListenerOptionsExt;
use interprocess::os::unix::uds_local_socket::Listener;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The default socket of the cluster `name`: `$XDG_RUNTIME_DIR/clutch/NAME.sock`, else
/// `/tmp/clutch-UID/NAME.sock`.
pub fn default_path(name: &str) -> PathBuf {
    default_dir().join(format!("{name}.sock"))
}

fn default_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("clutch"),
        _ => PathBuf::from(format!("/tmp/clutch-{}", nix::unistd::Uid::effective())),
    }
}

/// A bound control socket; dropping it removes the socket file.
#[derive(Debug)]
pub struct Bound {
    pub(crate) listener: Listener,
    pub path: PathBuf,
}

fn refuse(message: String) -> ConfigError {
    ConfigError::Value {
        key: "control-socket".into(),
        message,
    }
}

/// Binds the control socket at `path` (`default`: it is the default path, whose directory
/// clutch makes and checks itself; a given path's directory is the user's choice).
pub fn bind(path: &Path, default: bool) -> Result<Bound, ConfigError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if default && let Some(dir) = dir {
        private_dir(dir)?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(refuse(format!(
                "{} exists and is not a socket; remove it or choose another path with \
                 --control-socket",
                path.display()
            )));
        }
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {
                return Err(refuse(format!(
                    "another clutch master is running with the control socket {}; stop it \
                     (clutch ctl --socket {} shutdown), or start this one with another --name \
                     or --control-socket",
                    path.display(),
                    path.display()
                )));
            }
            // Nobody listens: a master that died without removing it.
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                tracing::info!("replacing the stale control socket {}", path.display());
                std::fs::remove_file(path).map_err(|e| {
                    refuse(format!(
                        "cannot remove the stale socket {}: {e}",
                        path.display()
                    ))
                })?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(refuse(format!(
                    "cannot check the existing socket {}: {e}",
                    path.display()
                )));
            }
        }
    }
    let name = path
        .to_fs_name::<GenericFilePath>()
        .map_err(|e| refuse(format!("{} is not a socket path: {e}", path.display())))?;
    let listener = ListenerOptions::new()
        .name(name)
        .mode(0o600)
        .reclaim_name(true)
        .create_sync_as::<Listener>()
        .map_err(|e| refuse(format!("cannot listen on {}: {e}", path.display())))?;
    // The mode given above is set on the socket before bind, which not every kernel
    // carries over to the file: set it on the file too.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| refuse(format!("cannot make {} private: {e}", path.display())))?;
    Ok(Bound {
        listener,
        path: path.to_path_buf(),
    })
}

/// Makes `dir` (0700) or checks that it is ours and private: a socket in a directory others
/// can write could be replaced under us.
fn private_dir(dir: &Path) -> Result<(), ConfigError> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(refuse(format!(
                "cannot make the directory {}: {e}; give a path with --control-socket, or \
                 --no-control",
                dir.display()
            )));
        }
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| refuse(format!("cannot read {}: {e}", dir.display())))?;
    let me = nix::unistd::Uid::effective().as_raw();
    if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o077 != 0 {
        return Err(refuse(format!(
            "{} is not a private directory of uid {me} (it must be a directory owned by it, \
             mode 0700); fix or remove it, or give a path with --control-socket",
            dir.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("clutch");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = bind(&dir.join("x.sock"), true).unwrap_err().to_string();
        assert!(e.contains("not a private directory"), "{e}");
    }

    #[test]
    fn a_stale_socket_is_replaced_and_a_live_one_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("clutch").join("x.sock");
        let live = bind(&path, true).unwrap();
        let mode = std::fs::metadata(&path).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap()).unwrap().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let e = bind(&path, true).unwrap_err().to_string();
        assert!(e.contains("another clutch master"), "{e}");
        drop(live);
        assert!(!path.exists(), "dropping it removes the socket");
        // A socket file with no listener behind it: a master that was killed.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let _again = bind(&path, true).unwrap();
    }
}
