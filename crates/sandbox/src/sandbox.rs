//! The [`Sandbox`] handle: servers, credentials, waits, status; optionally stopped on drop.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::gtid::GtidPos;
use crate::lag::{self, LagAction, LagReport};
use crate::layout::Binaries;
use crate::server::Server;
use crate::state::{Credentials, Manifest, Role, SandboxStatus, ServerStatus};
use crate::topology::{self, UpOptions};

/// A running topology: `servers()[0]` is the primary, `servers()[i]` is replica i.
#[derive(Debug)]
pub struct Sandbox {
    manifest: Manifest,
    servers: Vec<Server>,
    timeout: Duration,
    stop_on_drop: bool,
    /// A test sandbox owns its directory (removed after the servers stop).
    temp: Option<TempDir>,
}

impl Sandbox {
    pub(crate) fn from_manifest(manifest: Manifest, bins: &Binaries, timeout: Duration) -> Sandbox {
        let servers = manifest
            .servers
            .iter()
            .map(|e| {
                Server::new(
                    e.clone(),
                    bins,
                    &manifest.users.root.password,
                    &manifest.dir,
                )
            })
            .collect();
        Sandbox {
            manifest,
            servers,
            timeout,
            stop_on_drop: false,
            temp: None,
        }
    }

    /// Same as [`crate::up`].
    pub fn up(opts: &UpOptions) -> Result<Sandbox> {
        topology::up(opts)
    }

    /// Attaches to the sandbox described by `<dir>/sandbox.json` (not stopped on drop).
    pub fn open(dir: &Path) -> Result<Sandbox> {
        let abs = dir
            .canonicalize()
            .with_context(|| format!("no sandbox in {}", dir.display()))?;
        let Some(manifest) = Manifest::load(&abs)? else {
            bail!(
                "no sandbox in {} (no sandbox.json): run `lagless sandbox up` first",
                abs.display()
            );
        };
        Ok(Sandbox::from_manifest(
            manifest,
            &Binaries::locate()?,
            Duration::from_secs(30),
        ))
    }

    /// A sandbox for a test: its own temp directory, free ports, stopped and removed on drop.
    pub fn for_test(replicas: usize) -> Result<Sandbox> {
        Self::for_test_with(replicas, |_| {})
    }

    /// Like [`Sandbox::for_test`], with other options adjusted by `configure` (dir, ports and
    /// stop_on_drop are chosen here).
    pub fn for_test_with(replicas: usize, configure: impl Fn(&mut UpOptions)) -> Result<Sandbox> {
        let temp = tempfile::Builder::new()
            .prefix("lagless-sandbox-")
            .tempdir()?;
        let mut opts = UpOptions::new(temp.path());
        opts.replicas = replicas;
        configure(&mut opts);
        opts.dir = temp.path().to_path_buf();
        opts.stop_on_drop = true;
        let mut sandbox = topology::up_on_free_ports(&mut opts, 3)?;
        sandbox.temp = Some(temp);
        Ok(sandbox)
    }

    /// Whether dropping this value stops the servers and removes the datadirs.
    pub fn set_stop_on_drop(&mut self, yes: bool) {
        self.stop_on_drop = yes;
    }

    pub fn dir(&self) -> &Path {
        &self.manifest.dir
    }

    /// The manifest with the current pids.
    pub fn manifest(&self) -> Manifest {
        let mut m = self.manifest.clone();
        m.servers = self.servers.iter().map(Server::entry).collect();
        m
    }

    pub fn users(&self) -> &Credentials {
        &self.manifest.users
    }

    pub fn servers(&self) -> &[Server] {
        &self.servers
    }

    pub fn primary(&self) -> &Server {
        &self.servers[0]
    }

    pub fn replicas(&self) -> &[Server] {
        &self.servers[1..]
    }

    /// Replica `i`, counting from 1 (`replica1`). Panics when out of range.
    pub fn replica(&self, i: usize) -> &Server {
        assert!(
            i >= 1 && i < self.servers.len(),
            "no replica{i} in this sandbox"
        );
        &self.servers[i]
    }

    pub fn server(&self, name: &str) -> Option<&Server> {
        self.servers.iter().find(|s| s.name() == name)
    }

    /// Waits until every replica runs both threads and applied the primary's binlog position
    /// as of now (delayed replicas excepted).
    pub fn wait_replicating(&self, timeout: Duration) -> Result<()> {
        topology::wait_replicating(self.primary(), self.replicas(), timeout)
    }

    /// Waits until replica `i` has applied everything the primary has now (by GTID).
    pub fn wait_caught_up(&self, i: usize, timeout: Duration) -> Result<GtidPos> {
        let target = self.primary().gtid_binlog_pos()?;
        lag::wait_applied(self.replica(i), &target, timeout)
    }

    /// Induces or removes lag on replica `i` (from 1).
    pub fn lag(&self, i: usize, action: LagAction) -> Result<LagReport> {
        lag::apply(self.primary(), self.replica(i), action, self.timeout)
    }

    /// Liveness of every server and, for those that answer, what they report.
    pub fn status(&self) -> SandboxStatus {
        let servers: Vec<ServerStatus> = thread::scope(|scope| {
            let jobs: Vec<_> = self
                .servers
                .iter()
                .map(|s| scope.spawn(move || server_status(s)))
                .collect();
            jobs.into_iter().filter_map(|j| j.join().ok()).collect()
        });
        SandboxStatus {
            dir: self.manifest.dir.clone(),
            exists: true,
            running: servers.iter().all(|s| s.alive),
            run_root: Some(self.manifest.run_root.clone()),
            tmpfs: self.manifest.tmpfs,
            semi_sync: self.manifest.semi_sync,
            durability: Some(self.manifest.durability),
            servers,
            users: Some(self.manifest.users.clone()),
        }
    }

    /// Stops the servers and removes the datadirs (see [`crate::down()`]).
    pub fn down(mut self) -> Result<()> {
        self.stop_on_drop = false;
        crate::down::down(&self.manifest.dir).map(drop)
    }

    /// The sandbox directory, kept: for a CLI that leaves the servers running.
    pub fn into_dir(mut self) -> PathBuf {
        self.stop_on_drop = false;
        self.manifest.dir.clone()
    }
}

fn server_status(s: &Server) -> ServerStatus {
    let pid = s.pid();
    let paused = s.is_paused();
    let mut st = ServerStatus {
        name: s.name().into(),
        role: s.role(),
        host: s.host().into(),
        port: s.port(),
        socket: s.socket().into(),
        datadir: s.datadir().into(),
        pid,
        alive: pid.is_some(),
        paused,
        observed_role: None,
        read_only: None,
        slave_io_running: None,
        slave_sql_running: None,
        gtid_current_pos: None,
    };
    if pid.is_none() || paused {
        return st;
    }
    let quick = Duration::from_secs(2);
    if let Ok(out) = s.sql_timeout("SELECT @@read_only, @@gtid_current_pos", quick) {
        let mut cols = out.trim_end_matches('\n').split('\t');
        st.read_only = cols.next().map(|v| v == "1");
        st.gtid_current_pos = cols.next().map(str::to_string);
    }
    if let Ok(slave) = s.slave_status_timeout(quick) {
        st.observed_role = Some(if slave.is_some() {
            Role::Replica
        } else {
            Role::Primary
        });
        st.slave_io_running = slave.as_ref().map(|x| x.io_running.clone());
        st.slave_sql_running = slave.map(|x| x.sql_running);
    }
    st
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.stop_on_drop {
            if let Err(e) = crate::down::down(&self.manifest.dir) {
                tracing::warn!(error = %format!("{e:#}"), "stopping the sandbox failed");
            }
        }
    }
}
