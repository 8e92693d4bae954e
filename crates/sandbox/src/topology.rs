//! `up`: building or recovering a topology, setting up and checking replication.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cnf::{self, Settings};
use crate::down::{down_locked, our_pids};
use crate::gtid::GtidPos;
use crate::layout::{Binaries, DirLock, Layout, RESERVED_PORT};
use crate::sandbox::Sandbox;
use crate::server::Server;
use crate::state::{Credentials, Durability, Manifest, Role, SandboxStatus, ServerEntry};
use crate::template::{self, quote};

/// What `up` builds.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Holds the manifest, option files and logs (default `./lagless-sandbox`).
    pub dir: PathBuf,
    /// Number of replicas (default 2).
    pub replicas: usize,
    /// The primary listens on it, replica i on base_port + i (default 3310).
    pub base_port: u16,
    /// Semi-synchronous replication (AFTER_SYNC).
    pub semi_sync: bool,
    pub durability: Durability,
    pub users: Credentials,
    /// Put datadirs on /dev/shm when possible (default true).
    pub tmpfs: bool,
    /// Limit for servers to start and replicas to catch up (default 30 s).
    pub timeout: Duration,
    /// Whether dropping the returned [`Sandbox`] stops it (default false: the CLI leaves
    /// servers running).
    pub stop_on_drop: bool,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            dir: PathBuf::from("./lagless-sandbox"),
            replicas: 2,
            base_port: 3310,
            semi_sync: false,
            durability: Durability::Fast,
            users: Credentials::default(),
            tmpfs: true,
            timeout: Duration::from_secs(30),
            stop_on_drop: false,
        }
    }
}

impl UpOptions {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        UpOptions {
            dir: dir.into(),
            ..Default::default()
        }
    }

    /// Sets the password of the `lagless` admin/monitor user.
    pub fn admin_password(mut self, password: &str) -> Self {
        self.users.admin.password = password.into();
        self
    }

    fn validate(&self) -> Result<()> {
        let last = usize::from(self.base_port) + self.replicas;
        if self.base_port == 0 || last > usize::from(u16::MAX) {
            bail!("ports {}..={last} are out of range", self.base_port);
        }
        if (usize::from(self.base_port)..=last).contains(&usize::from(RESERVED_PORT)) {
            bail!("port {RESERVED_PORT} is left to the machine's own MariaDB: choose another base port");
        }
        Ok(())
    }
}

/// [`up`] on free ports: `opts.base_port` is picked with [`crate::free_base_port`], and picked
/// again (up to `attempts` tries) when another process takes one of the ports between the
/// pick and the server's bind ([`crate::PortInUse`]; a failed start leaves nothing behind).
pub fn up_on_free_ports(opts: &mut UpOptions, attempts: usize) -> Result<Sandbox> {
    let mut tries = 0;
    loop {
        tries += 1;
        opts.base_port = crate::free_base_port(opts.replicas + 1)?;
        match up(opts) {
            Err(e) if tries < attempts && e.chain().any(|c| c.is::<crate::PortInUse>()) => {
                tracing::warn!(error = %format!("{e:#}"), "a picked port was taken; picking others");
            }
            other => return other,
        }
    }
}

/// Brings the topology up and returns once every replica replicates and has caught up.
/// Idempotent: a healthy running sandbox is returned as is; dead servers of a matching
/// sandbox are restarted on their datadirs; anything else is wiped and rebuilt (or, when a
/// different sandbox is running in the directory, reported).
pub fn up(opts: &UpOptions) -> Result<Sandbox> {
    opts.validate()?;
    let bins = Binaries::locate()?;
    let version = bins.server_version()?;
    let layout = Layout::resolve(&opts.dir, opts.tmpfs)?;
    let _lock = DirLock::acquire(&layout.dir)?;
    let want = plan(opts, &layout, &version);
    if let Some(have) = Manifest::load(&layout.dir)? {
        if have.same_topology(&want) {
            match reuse(&have, &bins, opts)? {
                Some(mut sandbox) => {
                    sandbox.set_stop_on_drop(opts.stop_on_drop);
                    return Ok(sandbox);
                }
                None => tracing::warn!(dir = %layout.dir.display(), "rebuilding the sandbox"),
            }
        } else if !our_pids(&layout.dir, Some(&have)).is_empty() {
            bail!(
                "a different sandbox is running in {} ({}); run `lagless sandbox down --dir {}` first",
                layout.dir.display(),
                have.differences(&want),
                layout.dir.display()
            );
        }
    }
    down_locked(&layout.dir)?;
    let layout = Layout::resolve(&opts.dir, opts.tmpfs)?;
    let mut sandbox = build(plan(opts, &layout, &version), &bins, opts)?;
    sandbox.set_stop_on_drop(opts.stop_on_drop);
    Ok(sandbox)
}

fn plan(opts: &UpOptions, layout: &Layout, version: &str) -> Manifest {
    let servers = (0..=opts.replicas)
        .map(|i| {
            let (name, role) = match i {
                0 => ("primary".to_string(), Role::Primary),
                _ => (format!("replica{i}"), Role::Replica),
            };
            ServerEntry {
                role,
                server_id: 1 + i as u32,
                host: "127.0.0.1".into(),
                port: opts.base_port + i as u16,
                socket: layout.socket(&name),
                pid: None,
                datadir: layout.datadir(&name),
                pidfile: layout.pidfile(&name),
                cnf: layout.cnf(&name),
                log: layout.log(&name),
                name,
            }
        })
        .collect();
    Manifest {
        format: Manifest::new_format(),
        dir: layout.dir.clone(),
        run_root: layout.run_root.clone(),
        tmpfs: layout.tmpfs,
        base_port: opts.base_port,
        replicas: opts.replicas,
        semi_sync: opts.semi_sync,
        durability: opts.durability,
        server_version: version.into(),
        users: opts.users.clone(),
        servers,
    }
}

/// Reuses a matching sandbox: Some when it is (made) healthy, None when it must be rebuilt.
fn reuse(have: &Manifest, bins: &Binaries, opts: &UpOptions) -> Result<Option<Sandbox>> {
    // Never stopped on drop here: that would take the directory lock we hold.
    let sandbox = Sandbox::from_manifest(have.clone(), bins, opts.timeout);
    let dead: Vec<&Server> = sandbox.servers().iter().filter(|s| !s.is_alive()).collect();
    if dead.is_empty() {
        ensure_replicating(&sandbox, opts.timeout).with_context(|| {
            format!(
                "the sandbox in {} runs but does not replicate",
                have.dir.display()
            )
        })?;
        return Ok(Some(sandbox));
    }
    if let Some(s) = dead.iter().find(|s| !s.datadir().join("mysql").is_dir()) {
        tracing::warn!(server = s.name(), "datadir is gone");
        return Ok(None);
    }
    // The primary first, so restarted replicas connect at once instead of retrying in 1 s.
    let restarted = dead
        .iter()
        .try_for_each(|s| s.start())
        .and_then(|()| ensure_replicating(&sandbox, opts.timeout));
    match restarted {
        Ok(()) => Ok(Some(sandbox)),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "recovery failed");
            Ok(None)
        }
    }
}

/// Builds a fresh topology; on failure stops what it started and removes what it made.
fn build(want: Manifest, bins: &Binaries, opts: &UpOptions) -> Result<Sandbox> {
    let dir = want.dir.clone();
    build_inner(want, bins, opts).inspect_err(|_| {
        let _ = down_locked(&dir);
    })
}

fn build_inner(want: Manifest, bins: &Binaries, opts: &UpOptions) -> Result<Sandbox> {
    let template = template::ensure(bins, &want.server_version, &want.users)?;
    fs::create_dir_all(&want.run_root)?;
    let link = want.dir.join("data");
    if want.tmpfs && link != want.run_root {
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&want.run_root, &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    for s in &want.servers {
        fs::create_dir_all(s.datadir.parent().context("datadir has no parent")?)?;
        // `cp -a` into an existing directory would nest the copy.
        let _ = fs::remove_dir_all(&s.datadir);
    }
    want.save()?;
    let datadirs: Vec<PathBuf> = want.servers.iter().map(|s| s.datadir.clone()).collect();
    template::copy_many(&template, &datadirs)?;
    let settings = Settings {
        durability: want.durability,
        semi_sync: want.semi_sync,
    };
    for s in &want.servers {
        fs::write(&s.cnf, cnf::render(s, &settings))
            .with_context(|| format!("writing {}", s.cnf.display()))?;
    }
    let sandbox = Sandbox::from_manifest(want, bins, opts.timeout);
    start_fresh(&sandbox, opts.timeout)?;
    Ok(sandbox)
}

fn start_fresh(sandbox: &Sandbox, timeout: Duration) -> Result<()> {
    for s in sandbox.servers() {
        s.spawn()?;
    }
    for s in sandbox.servers() {
        s.wait_ready(timeout)?;
    }
    let users = sandbox.users();
    let primary = sandbox.primary();
    thread::scope(|scope| {
        let jobs: Vec<_> = sandbox
            .replicas()
            .iter()
            .map(|r| scope.spawn(move || configure_replica(primary, r, users)))
            .collect();
        jobs.into_iter()
            .try_for_each(|j| j.join().unwrap_or_else(|_| bail!("thread panicked")))
    })?;
    wait_replicating(primary, sandbox.replicas(), timeout)
}

/// Points a replica at the primary and starts it.
pub(crate) fn configure_replica(
    primary: &Server,
    replica: &Server,
    users: &Credentials,
) -> Result<()> {
    replica.sql(&format!(
        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER={}, \
         MASTER_PASSWORD={}, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, \
         MASTER_HEARTBEAT_PERIOD=0.25; START SLAVE",
        primary.port(),
        quote(&users.replication.user),
        quote(&users.replication.password)
    ))?;
    Ok(())
}

/// Configures replicas that have no replication and starts stopped threads, then waits.
fn ensure_replicating(sandbox: &Sandbox, timeout: Duration) -> Result<()> {
    for r in sandbox.replicas() {
        match r.slave_status()? {
            None => configure_replica(sandbox.primary(), r, sandbox.users())?,
            Some(st) if !st.running() => drop(r.sql("START SLAVE")?),
            Some(_) => {}
        }
    }
    wait_replicating(sandbox.primary(), sandbox.replicas(), timeout)
}

/// Waits until every replica runs both threads and has applied the primary's current
/// binlog position (a delayed replica only needs its threads running).
pub(crate) fn wait_replicating(
    primary: &Server,
    replicas: &[Server],
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let target = primary.gtid_binlog_pos()?;
    let mut pending: Vec<&Server> = replicas.iter().collect();
    loop {
        let mut why = Vec::new();
        let mut still = Vec::new();
        for r in pending {
            let reason = match r.slave_status() {
                Ok(Some(st)) if st.running() && st.sql_delay > 0 => None,
                Ok(Some(st))
                    if st.running() && GtidPos::parse(&st.gtid_slave_pos)?.covers(&target) =>
                {
                    None
                }
                Ok(Some(st)) => Some(format!(
                    "IO {}, SQL {}, applied [{}] of [{target}]; {}{}",
                    st.io_running,
                    st.sql_running,
                    st.gtid_slave_pos,
                    st.last_io_error,
                    st.last_sql_error
                )),
                Ok(None) => Some("no replication configured".into()),
                Err(e) => Some(format!("{e:#}")),
            };
            if let Some(reason) = reason {
                why.push(format!("{}: {reason}", r.name()));
                still.push(r);
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "replication not healthy after {timeout:?}: {}",
                why.join("; ")
            );
        }
        pending = still;
        sleep(Duration::from_millis(10));
    }
}

/// The state of the sandbox in `dir` (servers queried when alive, with a short timeout).
pub fn status(dir: &Path) -> Result<SandboxStatus> {
    let abs = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    match Manifest::load(&abs)? {
        Some(m) => {
            let bins = Binaries::locate()?;
            Ok(Sandbox::from_manifest(m, &bins, Duration::from_secs(30)).status())
        }
        None => Ok(SandboxStatus {
            dir: abs,
            exists: false,
            running: false,
            run_root: None,
            tmpfs: false,
            semi_sync: false,
            durability: None,
            servers: Vec::new(),
            users: None,
        }),
    }
}
