//! `down`: stopping exactly the servers a sandbox started and removing its datadirs.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::layout::{DirLock, Layout};
use crate::process;
use crate::server::STOP_GRACE;
use crate::state::Manifest;

/// What `down` did.
#[derive(Debug, Clone, Default)]
pub struct DownReport {
    pub stopped: Vec<u32>,
    pub removed: Vec<PathBuf>,
}

/// Stops the sandbox's servers (only processes verified as ours through /proc/PID/cmdline:
/// SIGTERM, up to 10 s, SIGKILL) and removes its datadirs. Idempotent.
pub fn down(dir: &Path) -> Result<DownReport> {
    if !dir.exists() {
        return Ok(DownReport::default());
    }
    let dir = dir.canonicalize()?;
    let _lock = DirLock::acquire(&dir)?;
    down_locked(&dir)
}

pub(crate) fn down_locked(dir: &Path) -> Result<DownReport> {
    let manifest = Manifest::load(dir)?;
    let stopped = our_pids(dir, manifest.as_ref());
    process::terminate(&stopped, STOP_GRACE)?;
    let mut removed = Vec::new();
    // Only paths that are ours by construction: a plain `<dir>/data` is removed only when
    // the manifest names it as the run root (the directory may be a user's).
    let mut roots = vec![Layout::shm_root(dir)];
    let mut files = vec![Manifest::path(dir)];
    let link = dir.join("data");
    if fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()) {
        files.push(link);
    }
    if let Some(m) = &manifest {
        roots.push(m.run_root.clone());
        files.extend(
            m.servers
                .iter()
                .flat_map(|s| [s.cnf.clone(), s.socket.clone()]),
        );
    }
    for root in roots {
        if fs::symlink_metadata(&root).is_ok_and(|m| m.is_dir()) {
            fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
            removed.push(root);
        }
    }
    for f in files {
        if fs::symlink_metadata(&f).is_ok() && fs::remove_file(&f).is_ok() {
            removed.push(f);
        }
    }
    Ok(DownReport { stopped, removed })
}

/// Our running servers: the manifest's pids, the pidfiles, and any `mariadbd` whose
/// `--defaults-file` is a `<dir>/<name>.cnf` (covers a crash before the manifest was saved).
pub(crate) fn our_pids(dir: &Path, manifest: Option<&Manifest>) -> Vec<u32> {
    let mut pids = Vec::new();
    for s in manifest.map(|m| m.servers.as_slice()).unwrap_or_default() {
        let ident = s.identity_arg();
        let candidates = [s.pid, process::read_pidfile(&s.pidfile)];
        pids.extend(
            candidates
                .into_iter()
                .flatten()
                .filter(|&p| process::is_ours(p, &ident)),
        );
    }
    let prefix = format!("--defaults-file={}/", dir.display());
    let scanned = process::find(|a| {
        a.strip_prefix(&prefix)
            .is_some_and(|rest| !rest.contains('/') && rest.ends_with(".cnf"))
    });
    for p in scanned {
        let is_mariadbd = process::cmdline(p)
            .first()
            .is_some_and(|a| a.ends_with("mariadbd"));
        if is_mariadbd {
            pids.push(p);
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}
