//! The client Unix socket's file: taken over when a crashed run left it, refused when another
//! process still listens on it, removed when the proxy stops.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tokio::net::UnixListener;

/// Removes the socket file when dropped (when the proxy stops accepting).
pub struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Binds `path`, open to every local user as mariadbd's socket is (clients still log in).
///
/// # Errors
/// Another process listens on `path`, it is not a socket, or the bind failed.
pub fn bind(path: &Path) -> anyhow::Result<(UnixListener, SocketFile)> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!("{} exists and is not a socket", path.display());
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("another process listens on {}", path.display());
        }
        // Left by a run that did not stop cleanly.
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    let file = SocketFile(path.to_path_buf());
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
        .with_context(|| format!("cannot open {} to local users", path.display()))?;
    Ok((listener, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_stale_socket_is_taken_over_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sock");
        // A socket file nobody listens on, as a killed run leaves it.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        rt().block_on(async {
            let (listener, file) = bind(&path).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o777);
            drop(listener);
            drop(file);
        });
        assert!(!path.exists(), "removed when the proxy stops");
    }

    #[test]
    fn a_live_socket_or_another_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.sock");
        let _other = std::os::unix::net::UnixListener::bind(&live).unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"keep me").unwrap();
        rt().block_on(async {
            let e = bind(&live).err().unwrap().to_string();
            assert!(e.contains("another process listens"), "{e}");
            let e = bind(&plain).err().unwrap().to_string();
            assert!(e.contains("is not a socket"), "{e}");
            let nowhere = dir.path().join("no-such-dir/l.sock");
            let e = format!("{:#}", bind(&nowhere).err().unwrap());
            assert!(
                e.contains("cannot listen on") && e.contains("no-such-dir"),
                "{e}"
            );
        });
        assert!(live.exists(), "another process's socket is left alone");
        assert_eq!(std::fs::read(&plain).unwrap(), b"keep me");
    }
}
