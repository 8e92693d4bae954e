//! A handle on one sandbox server: SQL helpers and process control (kill, pause, restart).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use nix::sys::signal::Signal;

use crate::client::{self, Login};
use crate::gtid::GtidPos;
use crate::layout::{port_free, Binaries};
use crate::process;
use crate::state::{Manifest, Role, ServerEntry};

/// Default time limit of [`Server::sql`].
pub const SQL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a start may take before it is reported as failed.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERM may take before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// The default replication connection as SHOW ALL SLAVES STATUS reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlaveStatus {
    pub io_running: String,
    pub sql_running: String,
    pub sql_delay: u64,
    pub master_port: u16,
    /// What the IO thread has received.
    pub gtid_io_pos: String,
    /// What the SQL thread has applied.
    pub gtid_slave_pos: String,
    pub last_io_error: String,
    pub last_sql_error: String,
}

impl SlaveStatus {
    pub fn running(&self) -> bool {
        self.io_running == "Yes" && self.sql_running == "Yes"
    }
}

/// A server's port is taken by another process: its start failed before anything ran. The
/// caller may pick another base port (see [`crate::free_base_port`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInUse {
    pub port: u16,
    pub server: String,
}

impl std::fmt::Display for PortInUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "port {} for {} is already in use by another process; choose another base port",
            self.port, self.server
        )
    }
}

impl std::error::Error for PortInUse {}

/// One server of a sandbox. Cheap to query; the process is not stopped on drop.
#[derive(Debug)]
pub struct Server {
    entry: ServerEntry,
    pid: Mutex<Option<u32>>,
    bins: Binaries,
    root_password: String,
    dir: PathBuf,
}

impl Server {
    pub(crate) fn new(
        entry: ServerEntry,
        bins: &Binaries,
        root_password: &str,
        dir: &Path,
    ) -> Self {
        Server {
            pid: Mutex::new(entry.pid),
            entry,
            bins: bins.clone(),
            root_password: root_password.into(),
            dir: dir.to_path_buf(),
        }
    }

    pub fn name(&self) -> &str {
        &self.entry.name
    }
    pub fn role(&self) -> Role {
        self.entry.role
    }
    pub fn host(&self) -> &str {
        &self.entry.host
    }
    pub fn port(&self) -> u16 {
        self.entry.port
    }
    pub fn server_id(&self) -> u32 {
        self.entry.server_id
    }
    pub fn socket(&self) -> &Path {
        &self.entry.socket
    }
    pub fn datadir(&self) -> &Path {
        &self.entry.datadir
    }
    pub fn log_path(&self) -> &Path {
        &self.entry.log
    }
    pub fn cnf_path(&self) -> &Path {
        &self.entry.cnf
    }
    /// The manifest entry, with the current pid.
    pub fn entry(&self) -> ServerEntry {
        ServerEntry {
            pid: self.pid(),
            ..self.entry.clone()
        }
    }

    /// The pid of our running process, if any (verified through /proc/PID/cmdline; the
    /// pidfile is consulted when the recorded pid is stale).
    pub fn pid(&self) -> Option<u32> {
        let ident = self.entry.identity_arg();
        let mut pid = self.pid.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = *pid {
            if process::is_ours(p, &ident) {
                return Some(p);
            }
        }
        let from_file =
            process::read_pidfile(&self.entry.pidfile).filter(|&p| process::is_ours(p, &ident));
        if from_file.is_some() {
            *pid = from_file;
        }
        from_file
    }

    pub fn is_alive(&self) -> bool {
        self.pid().is_some()
    }

    pub fn is_paused(&self) -> bool {
        self.pid().is_some_and(process::is_paused)
    }

    /// SIGKILL, then wait until the process is gone (a zombie counts as gone).
    pub fn kill(&self) -> Result<()> {
        if let Some(p) = self.pid() {
            process::signal(p, Signal::SIGKILL)?;
            let left = process::wait_gone(&[p], Duration::from_secs(10));
            anyhow::ensure!(
                left.is_empty(),
                "{} (pid {p}) survived SIGKILL",
                self.name()
            );
        }
        Ok(())
    }

    /// SIGSTOP: the server freezes, connections hang (a stalled, not a dead, server).
    pub fn pause(&self) -> Result<()> {
        self.signal_running(Signal::SIGSTOP)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.is_paused() && Instant::now() < deadline {
            sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// SIGCONT after [`Server::pause`].
    pub fn resume(&self) -> Result<()> {
        self.signal_running(Signal::SIGCONT)
    }

    fn signal_running(&self, sig: Signal) -> Result<()> {
        match self.pid() {
            Some(p) => process::signal(p, sig),
            None => bail!("{} is not running", self.name()),
        }
    }

    /// SIGTERM, up to 10 s, then SIGKILL.
    pub fn stop(&self) -> Result<()> {
        if let Some(p) = self.pid() {
            process::terminate(&[p], STOP_GRACE)?;
        }
        Ok(())
    }

    /// Starts the server on its existing datadir and port (no-op when running) and waits
    /// until it accepts connections. A replica resumes replicating by itself.
    pub fn start(&self) -> Result<()> {
        if self.is_alive() {
            return Ok(());
        }
        self.spawn()?;
        self.wait_ready(START_TIMEOUT)
    }

    /// Stops the server if it runs, then starts it again.
    pub fn restart(&self) -> Result<()> {
        self.stop()?;
        self.start()
    }

    /// Spawns the process (detached) without waiting for it to be ready.
    pub(crate) fn spawn(&self) -> Result<u32> {
        // Just after a kill the port may take a moment to be released.
        let deadline = Instant::now() + Duration::from_secs(2);
        while !port_free(self.port()) && Instant::now() < deadline {
            sleep(Duration::from_millis(10));
        }
        if !port_free(self.port()) {
            return Err(PortInUse {
                port: self.port(),
                server: self.name().to_string(),
            }
            .into());
        }
        // A stale pidfile from a crash would mislead readers until the server rewrites it.
        let _ = fs::remove_file(&self.entry.pidfile);
        let pid = process::spawn_detached(
            &self.bins.mariadbd,
            &[self.entry.identity_arg()],
            &self.entry.log,
        )?;
        *self.pid.lock().unwrap_or_else(|e| e.into_inner()) = Some(pid);
        Manifest::update_pid(&self.dir, self.name(), Some(pid))?;
        Ok(pid)
    }

    /// Waits until the server listens on its port; fails early if the process dies.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let pid = *self.pid.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = Instant::now() + timeout;
        loop {
            if !pid.is_some_and(process::is_running) {
                bail!(
                    "{} exited during start-up; log {}:\n{}",
                    self.name(),
                    self.entry.log.display(),
                    self.log_tail(15)
                );
            }
            if process::listening(self.port()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not ready after {timeout:?}; log:\n{}",
                    self.name(),
                    self.log_tail(15)
                );
            }
            sleep(Duration::from_millis(3));
        }
    }

    /// The last `n` lines of the server's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = fs::read_to_string(&self.entry.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Runs SQL as root; returns the tab-separated rows without column names.
    pub fn sql(&self, query: &str) -> Result<String> {
        self.sql_timeout(query, SQL_TIMEOUT)
    }

    pub fn sql_timeout(&self, query: &str, timeout: Duration) -> Result<String> {
        self.sql_as("root", &self.root_password, query, timeout)
    }

    /// Runs SQL as any user (e.g. `app`, to check that a read_only replica refuses writes).
    pub fn sql_as(
        &self,
        user: &str,
        password: &str,
        query: &str,
        timeout: Duration,
    ) -> Result<String> {
        let login = Login {
            client: &self.bins.client,
            port: self.port(),
            user,
            password,
        };
        client::run(&login, query, false, timeout)
    }

    /// Runs SQL as root; one map (column -> value) per row of the last result set.
    pub fn query(&self, query: &str) -> Result<Vec<BTreeMap<String, String>>> {
        self.query_timeout(query, SQL_TIMEOUT)
    }

    pub fn query_timeout(
        &self,
        query: &str,
        timeout: Duration,
    ) -> Result<Vec<BTreeMap<String, String>>> {
        let login = Login {
            client: &self.bins.client,
            port: self.port(),
            user: "root",
            password: &self.root_password,
        };
        Ok(client::parse_table(&client::run(
            &login, query, true, timeout,
        )?))
    }

    /// One value (first column of the first row).
    pub fn scalar(&self, query: &str) -> Result<String> {
        let out = self.sql(query)?;
        Ok(client::unescape(
            out.lines()
                .next()
                .unwrap_or("")
                .split('\t')
                .next()
                .unwrap_or(""),
        ))
    }

    pub fn gtid_binlog_pos(&self) -> Result<GtidPos> {
        GtidPos::parse(&self.scalar("SELECT @@gtid_binlog_pos")?)
    }
    pub fn gtid_slave_pos(&self) -> Result<GtidPos> {
        GtidPos::parse(&self.scalar("SELECT @@gtid_slave_pos")?)
    }
    pub fn gtid_current_pos(&self) -> Result<GtidPos> {
        GtidPos::parse(&self.scalar("SELECT @@gtid_current_pos")?)
    }

    /// The default replication connection, None when none is configured.
    pub fn slave_status(&self) -> Result<Option<SlaveStatus>> {
        self.slave_status_timeout(SQL_TIMEOUT)
    }

    pub fn slave_status_timeout(&self, timeout: Duration) -> Result<Option<SlaveStatus>> {
        let rows = self.query_timeout("SHOW ALL SLAVES STATUS", timeout)?;
        let Some(row) = rows
            .into_iter()
            .find(|r| r.get("Connection_name").is_none_or(|c| c.is_empty()))
        else {
            return Ok(None);
        };
        let get = |k: &str| row.get(k).cloned().unwrap_or_default();
        Ok(Some(SlaveStatus {
            io_running: get("Slave_IO_Running"),
            sql_running: get("Slave_SQL_Running"),
            sql_delay: get("SQL_Delay").parse().unwrap_or(0),
            master_port: get("Master_Port").parse().unwrap_or(0),
            gtid_io_pos: get("Gtid_IO_Pos"),
            gtid_slave_pos: get("Gtid_Slave_Pos"),
            last_io_error: get("Last_IO_Error"),
            last_sql_error: get("Last_SQL_Error"),
        }))
    }
}
