//! Running the proxy: validate the config before binding, then serve until a signal.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use lagless_config::Config;
use lagless_proxy::{serve, ProxyContext, ShutdownSignals};
use tokio::net::TcpListener;
use tracing::{info, warn};

pub fn run_with_config_file(path: &Path) -> anyhow::Result<()> {
    let config = lagless_config::load(path)?;
    runtime(config.listener.worker_threads)?.block_on(async {
        let listener = bind(&config).await?;
        let signals = ShutdownSignals::default();
        tokio::spawn(stop_on_signal(signals.clone()));
        run_proxy(config, listener, signals).await
    })
}

/// The multi-threaded runtime, with `worker_threads` workers (`None`: tokio's default, one per
/// core, or `TOKIO_WORKER_THREADS`).
pub fn runtime(worker_threads: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = worker_threads {
        builder.worker_threads(n);
    }
    builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")
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
