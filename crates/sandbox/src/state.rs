//! The manifest `sandbox.json` (what `up` built: servers, pids, users) and the status report.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The manifest's file name inside the sandbox directory.
pub const MANIFEST: &str = "sandbox.json";
const FORMAT: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Replica,
}

/// Fast: innodb_flush_log_at_trx_commit=2, sync_binlog=0. Safe: 1 and 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    #[default]
    Fast,
    Safe,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCredential {
    pub user: String,
    pub password: String,
}

impl UserCredential {
    fn new(user: &str, password: &str) -> Self {
        UserCredential {
            user: user.into(),
            password: password.into(),
        }
    }
}

/// The users the sandbox creates (root exists as root@localhost and root@127.0.0.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub root: UserCredential,
    /// REPLICATION SLAVE, BINLOG MONITOR, REPLICA MONITOR.
    pub replication: UserCredential,
    /// ALL on `app`, `sbtest`, `test` and `test_%` schemas; no SUPER.
    pub app: UserCredential,
    /// The proxy's monitor / promote / backend login: ALL PRIVILEGES WITH GRANT OPTION.
    pub admin: UserCredential,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials {
            root: UserCredential::new("root", "lagless-root"),
            replication: UserCredential::new("repl", "lagless-repl"),
            app: UserCredential::new("app", "lagless"),
            admin: UserCredential::new("lagless", "lagless-admin"),
        }
    }
}

/// One server as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerEntry {
    /// `primary`, `replica1`, `replica2`, ...
    pub name: String,
    pub role: Role,
    pub server_id: u32,
    pub host: String,
    pub port: u16,
    pub socket: PathBuf,
    /// The pid of the last start (may be stale: check liveness).
    pub pid: Option<u32>,
    pub datadir: PathBuf,
    pub pidfile: PathBuf,
    pub cnf: PathBuf,
    pub log: PathBuf,
}

impl ServerEntry {
    /// The argument that identifies our process in /proc/PID/cmdline.
    pub fn identity_arg(&self) -> String {
        format!("--defaults-file={}", self.cnf.display())
    }
}

/// Everything `up` built, written to `<dir>/sandbox.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub dir: PathBuf,
    /// Where datadirs, sockets and pidfiles live (on tmpfs when `tmpfs`).
    pub run_root: PathBuf,
    pub tmpfs: bool,
    pub base_port: u16,
    pub replicas: usize,
    pub semi_sync: bool,
    pub durability: Durability,
    pub server_version: String,
    pub users: Credentials,
    /// The primary first, then replica1..replicaN.
    pub servers: Vec<ServerEntry>,
}

/// Serialises read-modify-write updates of manifests within this process.
static UPDATE: Mutex<()> = Mutex::new(());

impl Manifest {
    pub(crate) fn new_format() -> u32 {
        FORMAT
    }

    pub fn path(dir: &Path) -> PathBuf {
        dir.join(MANIFEST)
    }

    /// Loads `<dir>/sandbox.json`; Ok(None) when there is none.
    pub fn load(dir: &Path) -> Result<Option<Manifest>> {
        let path = Self::path(dir);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let m =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(Some(m))
    }

    /// Writes the manifest atomically (temp file + rename).
    pub fn save(&self) -> Result<()> {
        let path = Self::path(&self.dir);
        let tmp = self
            .dir
            .join(format!(".{MANIFEST}.{}.tmp", std::process::id()));
        fs::write(&tmp, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// Records a server's new pid in the manifest on disk.
    pub(crate) fn update_pid(dir: &Path, name: &str, pid: Option<u32>) -> Result<()> {
        let _guard = UPDATE.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut m) = Self::load(dir)? else {
            return Ok(());
        };
        if let Some(s) = m.servers.iter_mut().find(|s| s.name == name) {
            s.pid = pid;
        }
        m.save()
    }

    /// Same servers, ports, paths, settings and users (pids and version aside).
    pub fn same_topology(&self, other: &Manifest) -> bool {
        let strip = |m: &Manifest| {
            let mut m = m.clone();
            m.server_version.clear();
            m.servers.iter_mut().for_each(|s| s.pid = None);
            m
        };
        strip(self) == strip(other)
    }

    /// What differs from `want`, for error messages.
    pub fn differences(&self, want: &Manifest) -> String {
        let mut d = Vec::new();
        if self.replicas != want.replicas {
            d.push(format!("replicas {} vs {}", self.replicas, want.replicas));
        }
        if self.base_port != want.base_port {
            d.push(format!(
                "base port {} vs {}",
                self.base_port, want.base_port
            ));
        }
        if self.semi_sync != want.semi_sync {
            d.push(format!(
                "semi-sync {} vs {}",
                self.semi_sync, want.semi_sync
            ));
        }
        if self.durability != want.durability {
            d.push(format!(
                "durability {:?} vs {:?}",
                self.durability, want.durability
            ));
        }
        if self.users != want.users {
            d.push("users/passwords".into());
        }
        if self.run_root != want.run_root {
            d.push(format!(
                "data in {} vs {}",
                self.run_root.display(),
                want.run_root.display()
            ));
        }
        if d.is_empty() {
            d.push("server paths".into());
        }
        d.join(", ")
    }
}

/// `lagless sandbox status --json`.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxStatus {
    pub dir: PathBuf,
    /// False when the directory holds no manifest.
    pub exists: bool,
    /// Every server alive.
    pub running: bool,
    pub run_root: Option<PathBuf>,
    pub tmpfs: bool,
    pub semi_sync: bool,
    pub durability: Option<Durability>,
    pub servers: Vec<ServerStatus>,
    pub users: Option<Credentials>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    pub name: String,
    /// From the manifest.
    pub role: Role,
    pub host: String,
    pub port: u16,
    pub socket: PathBuf,
    pub datadir: PathBuf,
    pub pid: Option<u32>,
    pub alive: bool,
    /// Stopped by SIGSTOP.
    pub paused: bool,
    /// What the server says, when it answers: primary = no replication configured and
    /// writable; replica = replication configured.
    pub observed_role: Option<Role>,
    pub read_only: Option<bool>,
    pub slave_io_running: Option<String>,
    pub slave_sql_running: Option<String>,
    pub gtid_current_pos: Option<String>,
}
