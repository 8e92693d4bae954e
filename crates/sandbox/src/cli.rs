//! The `lagless sandbox ...` subcommands. The binary wires them as
//! `Sandbox { #[command(subcommand)] cmd: SandboxCommand }` and calls [`run`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Result};
use clap::{ArgGroup, Subcommand};

use crate::lag::LagAction;
use crate::state::{Durability, SandboxStatus};
use crate::topology::UpOptions;
use crate::Sandbox;

const DEFAULT_DIR: &str = "./lagless-sandbox";

#[derive(Debug, Clone, Subcommand)]
pub enum SandboxCommand {
    /// Start a primary and N replicas of mariadbd on loopback ports (they keep running).
    Up {
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
        /// Number of replicas.
        #[arg(long, default_value_t = 2)]
        replicas: usize,
        /// The primary's port; replica i listens on base-port + i.
        #[arg(long, default_value_t = 3310)]
        base_port: u16,
        /// Semi-synchronous replication (AFTER_SYNC).
        #[arg(long)]
        semi_sync: bool,
        /// fast: flush_log_at_trx_commit=2, sync_binlog=0; safe: 1 and 1.
        #[arg(long, value_enum, default_value_t = Durability::Fast)]
        durability: Durability,
        /// Password of the `lagless` admin/monitor user.
        #[arg(long, env = "LAGLESS_ADMIN_PASSWORD", default_value = "lagless-admin")]
        admin_password: String,
        /// Keep datadirs in --dir instead of /dev/shm.
        #[arg(long)]
        no_tmpfs: bool,
    },
    /// Stop the servers this sandbox started and remove their datadirs.
    Down {
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
    },
    /// Show servers, pids, liveness and credentials.
    Status {
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Make a replica lag (delay or stopped SQL thread) or catch up again.
    #[command(group(ArgGroup::new("action").required(true).args(["delay", "stop_sql", "resume"])))]
    Lag {
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
        /// Replica number, from 1.
        #[arg(long)]
        replica: usize,
        /// Apply events this many seconds late (MASTER_DELAY).
        #[arg(long)]
        delay: Option<u64>,
        /// Stop applying events (STOP SLAVE SQL_THREAD).
        #[arg(long)]
        stop_sql: bool,
        /// Undo --delay / --stop-sql and wait until caught up.
        #[arg(long)]
        resume: bool,
    },
}

pub fn run(cmd: SandboxCommand) -> Result<()> {
    match cmd {
        SandboxCommand::Up {
            dir,
            replicas,
            base_port,
            semi_sync,
            durability,
            admin_password,
            no_tmpfs,
        } => {
            let mut opts = UpOptions::new(dir).admin_password(&admin_password);
            opts.replicas = replicas;
            opts.base_port = base_port;
            opts.semi_sync = semi_sync;
            opts.durability = durability;
            opts.tmpfs = !no_tmpfs;
            let started = Instant::now();
            let sandbox = Sandbox::up(&opts)?;
            print_up(&sandbox, started.elapsed().as_secs_f64());
            // Dropping the handle leaves the servers running.
            sandbox.into_dir();
            Ok(())
        }
        SandboxCommand::Down { dir } => {
            let report = crate::down(&dir)?;
            println!(
                "stopped {} server(s), removed {} path(s) of {}",
                report.stopped.len(),
                report.removed.len(),
                dir.display()
            );
            Ok(())
        }
        SandboxCommand::Status { dir, json } => {
            let status = crate::status(&dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print_status(&status);
            }
            Ok(())
        }
        SandboxCommand::Lag {
            dir,
            replica,
            delay,
            stop_sql,
            resume,
        } => {
            let action = match (delay, stop_sql, resume) {
                (Some(s), false, false) => LagAction::Delay(s),
                (None, true, false) => LagAction::StopSql,
                (None, false, true) => LagAction::Resume,
                _ => bail!("give exactly one of --delay, --stop-sql, --resume"),
            };
            let r = crate::lag(&dir, replica, action)?;
            println!(
                "{}: {} (IO {}, SQL {}, delay {}s); applied [{}], received [{}], primary at [{}]",
                r.replica,
                r.action,
                r.io_running,
                r.sql_running,
                r.sql_delay,
                r.replica_gtid,
                r.received_gtid,
                r.primary_gtid
            );
            Ok(())
        }
    }
}

fn print_up(sandbox: &Sandbox, secs: f64) {
    let m = sandbox.manifest();
    println!(
        "sandbox up in {secs:.2} s: 1 primary + {} replica(s), {}{}",
        m.replicas,
        short_version(&m.server_version),
        if m.semi_sync { ", semi-sync" } else { "" }
    );
    println!(
        "  dir  {}\n  data {}",
        m.dir.display(),
        m.run_root.display()
    );
    for s in &m.servers {
        let pid = s.pid.map_or("-".into(), |p| p.to_string());
        println!(
            "  {:<10} {}:{:<6} pid {:<8} socket {}",
            s.name,
            s.host,
            s.port,
            pid,
            s.socket.display()
        );
    }
    print_users(&m.users, m.base_port);
    println!("stop with: lagless sandbox down --dir {}", shown(&m.dir));
}

fn print_users(u: &crate::Credentials, port: u16) {
    println!("users:");
    println!(
        "  {:<8} {:<16} application (app, sbtest, test_* schemas)",
        u.app.user, u.app.password
    );
    println!(
        "  {:<8} {:<16} admin / monitor / proxy backend login",
        u.admin.user, u.admin.password
    );
    println!(
        "  {:<8} {:<16} replication",
        u.replication.user, u.replication.password
    );
    println!("  {:<8} {:<16} root", u.root.user, u.root.password);
    println!(
        "connect: mariadb -h127.0.0.1 -P{port} -u{} -p{} app",
        u.app.user, u.app.password
    );
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

/// `/usr/sbin/mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for ...` -> `MariaDB 10.11.19-MariaDB-0+deb12u1`.
fn short_version(v: &str) -> String {
    match v.split_whitespace().skip_while(|w| *w != "Ver").nth(1) {
        Some(n) => format!("MariaDB {n}"),
        None => v.to_string(),
    }
}

fn print_status(st: &SandboxStatus) {
    if !st.exists {
        println!("no sandbox in {}", st.dir.display());
        return;
    }
    println!(
        "sandbox {} ({})",
        st.dir.display(),
        if st.running {
            "running"
        } else {
            "not fully running"
        }
    );
    for s in &st.servers {
        let pid = s.pid.map_or("-".into(), |p| p.to_string());
        let state = match (s.alive, s.paused) {
            (false, _) => "dead",
            (true, true) => "paused",
            (true, false) => "alive",
        };
        let repl = match (&s.slave_io_running, &s.slave_sql_running) {
            (Some(io), Some(sql)) => format!(" IO {io} SQL {sql}"),
            _ => String::new(),
        };
        let gtid = s.gtid_current_pos.as_deref().unwrap_or("-");
        println!(
            "  {:<10} {:?} {}:{} pid {pid} {state}{repl} gtid [{gtid}]",
            s.name, s.role, s.host, s.port
        );
    }
    if let (Some(users), Some(primary)) = (&st.users, st.servers.first()) {
        print_users(users, primary.port);
    }
}
