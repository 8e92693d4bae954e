//! `lagless demo`: a sandbox of real MariaDB servers and the proxy in front of it.
//!
//! Its defaults are a contract that scripts and docs rely on: proxy on 127.0.0.1:6033, user `app`
//! with password `lagless`, database `app`.

use std::path::PathBuf;

use anyhow::Context;
use lagless_config::{RawCluster, RawConfig, RawServer, RawUser, Role};
use lagless_proxy::ShutdownSignals;

use crate::run::{bind, run_proxy, stop_on_signal, ProxyRuntime};

pub const DEMO_USER: &str = "app";
pub const DEMO_PASSWORD: &str = "lagless";

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Sandbox directory.
    #[arg(long, default_value = "./lagless-sandbox")]
    pub dir: PathBuf,
    /// Where the proxy listens.
    #[arg(long, default_value = "127.0.0.1:6033")]
    pub listen: String,
    /// Port of the sandbox primary; replica i listens on base-port + i.
    #[arg(long, default_value_t = 3310)]
    pub base_port: u16,
    #[arg(long, default_value_t = 2)]
    pub replicas: usize,
    /// Leave the sandbox running when the proxy stops.
    #[arg(long)]
    pub keep_sandbox: bool,
    /// Where the HTTP admin interface listens.
    #[arg(long, default_value = "127.0.0.1:6034")]
    pub admin: String,
    /// Also accept clients on this Unix socket, and reach the sandbox's servers over theirs.
    #[arg(long)]
    pub socket: Option<PathBuf>,
}

impl Default for DemoArgs {
    fn default() -> Self {
        DemoArgs {
            dir: PathBuf::from("./lagless-sandbox"),
            listen: "127.0.0.1:6033".into(),
            base_port: 3310,
            replicas: 2,
            keep_sandbox: false,
            admin: "127.0.0.1:6034".into(),
            socket: None,
        }
    }
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let mut opts = lagless_sandbox::UpOptions::new(&args.dir);
    opts.base_port = args.base_port;
    opts.replicas = args.replicas;
    let sandbox = lagless_sandbox::up(&opts).context("cannot start the sandbox")?;
    let manifest = sandbox.manifest().clone();
    let mut raw = demo_config(&manifest, &args.listen);
    raw.admin.address.clone_from(&args.admin);
    if let Some(socket) = &args.socket {
        raw.listener.socket = Some(socket.display().to_string());
        for (server, s) in raw.clusters[0].servers.iter_mut().zip(&manifest.servers) {
            server.socket = Some(s.socket.display().to_string());
        }
    }
    let result = lagless_config::validate::validate(raw)
        .map_err(anyhow::Error::from)
        .and_then(|config| {
            let rt = ProxyRuntime::new(&config)?;
            rt.main.block_on(async {
                let listener = bind(&config).await?;
                print_banner(&config, &manifest);
                let signals = ShutdownSignals::default();
                tokio::spawn(stop_on_signal(signals.clone()));
                run_proxy(config, listener, signals, rt.workers.handles()).await
            })
        });
    if args.keep_sandbox {
        eprintln!("sandbox left running in {}", args.dir.display());
    } else {
        lagless_sandbox::down(&args.dir).context("cannot stop the sandbox")?;
    }
    result
}

/// The proxy configuration for a sandbox: the demo user and one cluster of its servers.
pub fn demo_config(manifest: &lagless_sandbox::Manifest, listen: &str) -> RawConfig {
    let (native, sha2) = crate::passwd::hashes(DEMO_PASSWORD);
    let servers = manifest
        .servers
        .iter()
        .map(|s| RawServer {
            name: s.name.clone(),
            address: format!("{}:{}", s.host, s.port),
            socket: None,
            role: if s.role == lagless_sandbox::Role::Primary {
                Role::Primary
            } else {
                Role::Replica
            },
            weight: 1,
            priority: 0,
            no_failover: false,
        })
        .collect();
    let mut raw = RawConfig::default();
    raw.listener.address = listen.to_string();
    // A sandbox is for trying things: automatic failover on, with a fast monitor.
    raw.failover.enabled = true;
    raw.monitor.interval_ms = 100;
    raw.monitor.timeout_ms = 500;
    raw.users.push(RawUser {
        name: DEMO_USER.into(),
        native_password: Some(native),
        caching_sha2_password: Some(sha2),
        cluster: None,
        route: Default::default(),
        consistency: None,
    });
    raw.clusters.push(RawCluster {
        name: "sandbox".into(),
        user: manifest.users.app.user.clone(),
        password: Some(manifest.users.app.password.clone()),
        password_env: None,
        monitor_user: Some(manifest.users.admin.user.clone()),
        monitor_password: Some(manifest.users.admin.password.clone()),
        replication_user: Some(manifest.users.replication.user.clone()),
        replication_password: Some(manifest.users.replication.password.clone()),
        servers,
    });
    raw
}

fn print_banner(config: &lagless_config::Config, manifest: &lagless_sandbox::Manifest) {
    let addr = config.listener.address;
    println!("Lagless demo is running.");
    for s in &manifest.servers {
        println!("  {:<9} {:?} on {}:{}", s.name, s.role, s.host, s.port);
    }
    println!("Connect through Lagless:");
    println!(
        "  mariadb -h {} -P {} -u {DEMO_USER} -p{DEMO_PASSWORD} app",
        addr.ip(),
        addr.port()
    );
    if let Some(socket) = &config.listener.socket {
        println!(
            "  mariadb --socket={} -u {DEMO_USER} -p{DEMO_PASSWORD} app",
            socket.display()
        );
    }
    println!("Ctrl-C stops the proxy and the sandbox.");
}
