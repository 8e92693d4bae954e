//! Running the proxy: validate the config before binding, then serve until a signal.

use std::cell::Cell;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use lagless_config::{Config, Listener};
use lagless_proxy::{serve, ProxyContext, ShutdownSignals};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use tokio::net::TcpListener;
use tracing::{info, warn};

pub fn run_with_config_file(path: &Path) -> anyhow::Result<()> {
    let config = lagless_config::load(path)?;
    runtime(&config.listener)?.block_on(async {
        let listener = bind(&config).await?;
        let signals = ShutdownSignals::default();
        tokio::spawn(stop_on_signal(signals.clone()));
        run_proxy(config, listener, signals).await
    })
}

/// The multi-threaded runtime, with `worker_threads` workers (`None`: tokio's default, one per
/// core, or `TOKIO_WORKER_THREADS`), pinned to CPUs when `pin_worker_threads` is set.
pub fn runtime(listener: &Listener) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.thread_name(WORKER_THREAD_NAME);
    if let Some(n) = listener.worker_threads {
        builder.worker_threads(n);
    }
    if listener.pin_worker_threads {
        let cpus = allowed_cpus().context("cannot read the CPUs this process may use")?;
        let next = AtomicUsize::new(0);
        // Only worker threads park, so the blocking pool (DNS lookups) is left unpinned. A
        // worker pins itself the first time it goes idle, which is soon after start.
        builder.on_thread_park(move || {
            PINNED.with(|pinned| {
                if !pinned.get() {
                    pinned.set(true);
                    let cpu = cpus[next.fetch_add(1, Ordering::Relaxed) % cpus.len()];
                    if let Err(e) = pin_current_thread(cpu) {
                        warn!(cpu, error = %e, "cannot pin a worker thread");
                    }
                }
            });
        });
    }
    builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The runtime's threads, as `ps -L` and `top -H` show them.
const WORKER_THREAD_NAME: &str = "lagless-worker";

thread_local! {
    static PINNED: Cell<bool> = const { Cell::new(false) };
}

/// The CPUs this process may run on, in order.
fn allowed_cpus() -> nix::Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0))?;
    let cpus: Vec<usize> = (0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect();
    if cpus.is_empty() {
        return Err(nix::Error::EINVAL);
    }
    Ok(cpus)
}

fn pin_current_thread(cpu: usize) -> nix::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    // Pid 0 is the calling thread.
    sched_setaffinity(Pid::from_raw(0), &set)
}

/// The proxy's listeners: clients, and the admin interface when enabled. Both are bound
/// before anything else starts, so a busy port fails the start and clients never find one of
/// them missing.
pub struct Listeners {
    pub clients: TcpListener,
    pub admin: Option<TcpListener>,
}

pub async fn bind(config: &Config) -> anyhow::Result<Listeners> {
    let clients = TcpListener::bind(config.listener.address)
        .await
        .with_context(|| format!("cannot listen on {}", config.listener.address))?;
    let admin = match config.admin {
        Some(address) => {
            if !address.ip().is_loopback() {
                warn!(%address, "the admin interface has no authentication and listens beyond loopback");
            }
            Some(
                TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot listen on {address} (admin interface)"))?,
            )
        }
        None => None,
    };
    Ok(Listeners { clients, admin })
}

/// Serves the listeners with `config` until `signals` fires.
pub async fn run_proxy(
    config: Config,
    listeners: Listeners,
    signals: ShutdownSignals,
) -> anyhow::Result<()> {
    let version = announced_version(&config).await;
    let ctx =
        Arc::new(ProxyContext::new(Arc::new(config), version).context("cannot create an RSA key")?);
    if let Some(admin) = listeners.admin {
        let (ctx, stop) = (ctx.clone(), signals.shutdown.clone());
        tokio::spawn(async move {
            if let Err(e) = lagless_admin::serve(admin, ctx, stop).await {
                warn!(error = %e, "admin interface failed");
            }
        });
    }
    lagless_proxy::monitor_feed::start(ctx.clone(), signals.shutdown.clone());
    serve(listeners.clients, ctx, signals)
        .await
        .context("listener failed")
}

/// The greeting's version: the primary's own, so that drivers enable the right features.
async fn announced_version(config: &Config) -> String {
    if let Some(v) = &config.listener.server_version {
        return v.clone();
    }
    let cluster = &config.clusters[0];
    let opts = lagless_backend::LoginOptions {
        addr: cluster.primary().address.clone(),
        user: cluster.backend_user.clone(),
        password: cluster.backend_password.clone(),
        database: None,
        capabilities: lagless_proxy::backends::backend_capabilities(0, false),
        charset: lagless_protocol::consts::UTF8MB4_GENERAL_CI,
        connect_attrs: vec![],
        connect_timeout: config.timeouts.connect,
        max_packet: 1 << 24,
    };
    match lagless_backend::login(&opts).await {
        Ok(login) => format!("{}-lagless", login.server_version),
        Err(e) => {
            warn!(error = %e, "cannot read the primary's version; announcing a default");
            "5.5.5-10.11.0-MariaDB-lagless".to_string()
        }
    }
}

/// Fires `signals.shutdown` on SIGTERM or SIGINT (Ctrl-C).
pub async fn stop_on_signal(signals: ShutdownSignals) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        warn!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = int.recv() => info!("SIGINT: shutting down"),
    }
    signals.shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPUs a thread of this process may run on, from /proc (not from the thread itself).
    fn cpus_allowed(tid: &str) -> String {
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim()
            .to_string()
    }

    #[test]
    fn pinned_workers_each_run_on_one_cpu_of_their_own() {
        let listener = Listener {
            address: "127.0.0.1:0".parse().unwrap(),
            max_connections: 10,
            max_allowed_packet: 1 << 20,
            server_version: None,
            local_infile: false,
            worker_threads: Some(2),
            pin_worker_threads: true,
        };
        let cpus = allowed_cpus().unwrap();
        let rt = runtime(&listener).unwrap();
        rt.block_on(async {
            for _ in 0..50 {
                tokio::spawn(tokio::task::yield_now()).await.unwrap();
            }
            // Every worker goes idle, and so pins itself, at least once.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        });
        let mut pinned = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let tid = task.unwrap().file_name().into_string().unwrap();
            let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"));
            if comm.is_ok_and(|c| c.trim() == WORKER_THREAD_NAME) {
                pinned.push(cpus_allowed(&tid));
            }
        }
        assert_eq!(pinned.len(), 2, "two worker threads: {pinned:?}");
        for p in &pinned {
            let cpu: usize = p.parse().unwrap_or_else(|_| panic!("not one CPU: {p}"));
            assert!(cpus.contains(&cpu), "{cpu} is not allowed: {cpus:?}");
        }
        if cpus.len() >= 2 {
            assert_ne!(pinned[0], pinned[1], "both workers on one CPU");
        }
    }
}
