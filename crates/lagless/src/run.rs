//! Running the proxy: validate the config before binding, then serve until a signal.

use std::cell::Cell;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use lagless_config::{Config, Listener, RuntimeModel};
use lagless_proxy::pool::Pool;
use lagless_proxy::{serve_on, ClientListeners, ProxyContext, ShutdownSignals};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use tokio::net::TcpListener;
use tracing::{info, warn};

pub fn run_with_config_file(path: &Path) -> anyhow::Result<()> {
    let config = lagless_config::load(path)?;
    let rt = ProxyRuntime::new(&config)?;
    rt.main.block_on(async {
        let listener = bind(&config).await?;
        let signals = ShutdownSignals::default();
        tokio::spawn(stop_on_signal(signals.clone()));
        run_proxy(config, listener, signals, rt.workers.handles()).await
    })
}

/// Where the proxy's tasks run: `main` runs the listener, the monitor and the admin interface,
/// and, with the multi-threaded runtime, the sessions too; with one runtime per thread,
/// sessions run on `workers`.
pub struct ProxyRuntime {
    pub main: tokio::runtime::Runtime,
    pub workers: WorkerRuntimes,
}

impl ProxyRuntime {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let listener = &config.listener;
        match listener.runtime {
            RuntimeModel::MultiThread => Ok(ProxyRuntime {
                main: runtime(listener)?,
                workers: WorkerRuntimes::default(),
            }),
            RuntimeModel::ThreadPerCore => Ok(ProxyRuntime {
                main: tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("cannot start the async runtime")?,
                workers: {
                    let cpus =
                        allowed_cpus().context("cannot read the CPUs this process may use")?;
                    let count = listener.worker_threads.unwrap_or(cpus.len());
                    anyhow::ensure!(
                        Pool::shards_fit_the_cap(config, count),
                        "[pool] max_per_server = {} is less than the {count} worker threads of \
                         runtime = \"thread_per_core\", which each need a connection per server: \
                         raise it or set [listener] worker_threads",
                        config.pool.max_per_server.unwrap_or(0)
                    );
                    WorkerRuntimes::start(count, listener.pin_worker_threads.then_some(&cpus[..]))?
                },
            }),
        }
    }
}

/// Single-threaded runtimes, each on a thread of its own (`[listener] runtime =
/// "thread_per_core"`): a session, its backend connections and their wake-ups stay on one
/// thread, where tokio's work-stealing runtime wakes other workers (a futex call, and on a VM
/// an interrupt to another CPU) for tasks any of them could run. Stopped and joined on drop.
#[derive(Default)]
pub struct WorkerRuntimes {
    handles: Vec<tokio::runtime::Handle>,
    /// Dropped to stop the workers.
    stop: Option<tokio::sync::watch::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl WorkerRuntimes {
    /// `count` runtimes, the threads pinned in turn to the CPUs of `pin_to` when given.
    pub fn start(count: usize, pin_to: Option<&[usize]>) -> anyhow::Result<Self> {
        let (stop, stopped) = tokio::sync::watch::channel(());
        let mut workers = WorkerRuntimes::default();
        workers.stop = Some(stop);
        for i in 0..count {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start a worker runtime")?;
            workers.handles.push(rt.handle().clone());
            let pin = pin_to.map(|cpus| cpus[i % cpus.len()]);
            let mut stopped = stopped.clone();
            let thread = std::thread::Builder::new()
                .name(WORKER_THREAD_NAME.into())
                .spawn(move || {
                    if let Some(cpu) = pin {
                        if let Err(e) = pin_current_thread(cpu) {
                            warn!(cpu, error = %e, "cannot pin a worker thread");
                        }
                    }
                    // Nothing is ever sent: this returns when the sender is dropped.
                    rt.block_on(async move {
                        let _ = stopped.changed().await;
                    });
                })
                .context("cannot start a worker thread")?;
            workers.threads.push(thread);
        }
        Ok(workers)
    }

    /// One per shard of the backend pool; empty with the multi-threaded runtime.
    pub fn handles(&self) -> &[tokio::runtime::Handle] {
        &self.handles
    }
}

impl Drop for WorkerRuntimes {
    fn drop(&mut self) {
        // Closing the channel stops every worker.
        self.stop.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
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

/// The proxy's listeners: clients (TCP, and the Unix socket when configured), and the admin
/// interface when enabled. All are bound before anything else starts, so a busy port fails the
/// start and clients never find one of them missing.
pub struct Listeners {
    pub clients: ClientListeners,
    pub admin: Option<TcpListener>,
    /// The Unix socket's file, removed when the proxy stops serving.
    pub socket_file: Option<crate::unix_socket::SocketFile>,
}

pub async fn bind(config: &Config) -> anyhow::Result<Listeners> {
    let tcp = TcpListener::bind(config.listener.address)
        .await
        .with_context(|| format!("cannot listen on {}", config.listener.address))?;
    let (unix, socket_file) = match &config.listener.socket {
        Some(path) => {
            let (listener, file) = crate::unix_socket::bind(path)?;
            (Some(listener), Some(file))
        }
        None => (None, None),
    };
    let clients = ClientListeners { tcp, unix };
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
    Ok(Listeners {
        clients,
        admin,
        socket_file,
    })
}

/// Serves the listeners with `config` until `signals` fires.
/// Sessions run on `workers` when given (one pool shard each), else on the current runtime.
pub async fn run_proxy(
    config: Config,
    listeners: Listeners,
    signals: ShutdownSignals,
    workers: &[tokio::runtime::Handle],
) -> anyhow::Result<()> {
    let version = announced_version(&config).await;
    let ctx = Arc::new(
        ProxyContext::with_shards(Arc::new(config), version, workers.len().max(1))
            .context("cannot create an RSA key")?,
    );
    if let Some(admin) = listeners.admin {
        let (ctx, stop) = (ctx.clone(), signals.shutdown.clone());
        tokio::spawn(async move {
            if let Err(e) = lagless_admin::serve(admin, ctx, stop).await {
                warn!(error = %e, "admin interface failed");
            }
        });
    }
    lagless_proxy::monitor_feed::start(ctx.clone(), signals.shutdown.clone());
    let served = serve_on(listeners.clients, ctx, signals, workers).await;
    drop(listeners.socket_file);
    served.context("listener failed")
}

/// The greeting's version: the primary's own, so that drivers enable the right features.
async fn announced_version(config: &Config) -> String {
    if let Some(v) = &config.listener.server_version {
        return v.clone();
    }
    let cluster = &config.clusters[0];
    let opts = lagless_backend::LoginOptions {
        addr: cluster.primary().dial().to_string(),
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

    /// Held by every test that starts worker threads: the pinning test counts the process's
    /// threads by name, and would count another test's too.
    pub(super) static WORKER_THREADS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    pub(super) fn worker_threads_to_myself() -> std::sync::MutexGuard<'static, ()> {
        WORKER_THREADS.lock().unwrap_or_else(|e| e.into_inner())
    }

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
        let _alone = worker_threads_to_myself();
        let listener = Listener {
            address: "127.0.0.1:0".parse().unwrap(),
            socket: None,
            max_connections: 10,
            max_allowed_packet: 1 << 20,
            server_version: None,
            local_infile: false,
            worker_threads: Some(2),
            pin_worker_threads: true,
            runtime: RuntimeModel::MultiThread,
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

#[cfg(test)]
mod thread_per_core_tests {
    use super::tests::worker_threads_to_myself;
    use super::*;

    const EXAMPLE: &str = include_str!("../../../lagless.example.toml");

    /// The example configuration with `listener` added to `[listener]` and a cap of `cap`
    /// connections per server (0: none).
    fn config(listener: &str, cap: u32) -> Config {
        let text = EXAMPLE
            .replacen("[listener]", &format!("[listener]\n{listener}"), 1)
            .replace("max_per_server = 0", &format!("max_per_server = {cap}"));
        lagless_config::from_toml_str(&text).unwrap()
    }

    /// The thread a task runs on, and the CPUs it may use (from /proc, not from the thread).
    fn where_am_i() -> (String, String) {
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap()
                .trim()
                .to_string()
        };
        (field("Pid:"), field("Cpus_allowed_list:"))
    }

    #[test]
    fn each_worker_runtime_has_a_thread_of_its_own_pinned_and_stopped_on_drop() {
        let _alone = worker_threads_to_myself();
        let config = config(
            "runtime = \"thread_per_core\"\nworker_threads = 2\npin_worker_threads = true",
            0,
        );
        let rt = ProxyRuntime::new(&config).unwrap();
        let handles = rt.workers.handles().to_vec();
        assert_eq!(handles.len(), 2);
        let places: Vec<(String, String)> = rt.main.block_on(async {
            let mut places = Vec::new();
            for h in &handles {
                places.push(h.spawn(async { where_am_i() }).await.unwrap());
            }
            places
        });
        let main_thread = where_am_i().0;
        assert_ne!(places[0].0, places[1].0, "two threads: {places:?}");
        assert!(places.iter().all(|p| p.0 != main_thread), "{places:?}");
        let cpus = allowed_cpus().unwrap();
        for (_, p) in &places {
            let cpu: usize = p.parse().unwrap_or_else(|_| panic!("not one CPU: {p}"));
            assert!(cpus.contains(&cpu), "{cpu} is not allowed: {cpus:?}");
        }
        if cpus.len() >= 2 {
            assert_ne!(places[0].1, places[1].1, "both workers on one CPU");
        }
        drop(rt);
        // Stopped: a task given to a worker now is cancelled instead of run.
        let other = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for h in handles {
            let r = other.block_on(h.spawn(async {}));
            assert!(r.as_ref().is_err_and(|e| e.is_cancelled()), "{r:?}");
        }
    }

    #[test]
    fn multi_thread_runtime_has_no_worker_runtimes() {
        let _alone = worker_threads_to_myself();
        let rt = ProxyRuntime::new(&config("worker_threads = 2", 0)).unwrap();
        assert!(rt.workers.handles().is_empty());
    }

    #[test]
    fn a_cap_below_the_worker_count_is_refused_at_start() {
        let _alone = worker_threads_to_myself();
        let e = ProxyRuntime::new(&config(
            "runtime = \"thread_per_core\"\nworker_threads = 3",
            2,
        ))
        .err()
        .expect("refused");
        let e = format!("{e:#}");
        assert!(
            e.contains("max_per_server = 2") && e.contains("3 worker threads"),
            "{e}"
        );
        ProxyRuntime::new(&config(
            "runtime = \"thread_per_core\"\nworker_threads = 2",
            2,
        ))
        .expect("one connection per worker fits");
    }
}
