//! End-to-end test support: a real sandbox (primary + replicas) and the real `lagless` binary
//! in front of it, with a configuration written for the test.
//!
//! Users in that configuration: `app`/`lagless` (both hashes), `sha2only`/`sha2pass` (only a
//! caching_sha2_password hash), `nativeonly`/`nativepass` (only a native hash).

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lagless_protocol::auth::{caching_sha2_stored, native_password_hash};
use lagless_sandbox::{Sandbox, UpOptions};

pub mod faults;
pub mod raw;

/// A sandbox plus a running proxy; both stop when dropped.
pub struct Env {
    /// The HTTP admin interface's port.
    pub admin_port: u16,
    pub proxy: ProxyProcess,
    pub sandbox: Sandbox,
    pub dir: tempfile::TempDir,
}

/// Options for [`Env::start_with`].
#[derive(Debug, Clone)]
pub struct EnvOptions {
    pub replicas: usize,
    /// Extra TOML appended to the `[listener]` table (e.g. `max_allowed_packet = 1048576`).
    pub listener_extra: String,
    /// Extra TOML appended to the `[timeouts]` table (e.g. `handshake_ms = 1000`).
    pub timeouts_extra: String,
    /// `[timeouts] shutdown_grace_ms` (3000: tests that stop the proxy do not wait long).
    pub shutdown_grace_ms: u64,
    /// TOML appended at the end (e.g. `[routing]` or `[[rules]]` tables).
    pub extra: String,
    /// Semi-synchronous replication (AFTER_SYNC) in the sandbox.
    pub semi_sync: bool,
    /// The first replica is configured as the primary's standby (`role = "standby"`).
    pub standby: bool,
    /// Each server's Unix socket in the config (`socket = ...`): Lagless dials the servers
    /// through their sockets instead of TCP.
    pub backend_sockets: bool,
}

impl Default for EnvOptions {
    fn default() -> Self {
        EnvOptions {
            replicas: 2,
            listener_extra: String::new(),
            timeouts_extra: String::new(),
            shutdown_grace_ms: 3000,
            extra: String::new(),
            semi_sync: false,
            standby: false,
            backend_sockets: false,
        }
    }
}

impl EnvOptions {
    /// The defaults with `extra` TOML appended (e.g. `[routing]` settings).
    pub fn with_extra(extra: &str) -> EnvOptions {
        EnvOptions {
            extra: extra.to_string(),
            ..EnvOptions::default()
        }
    }

    /// Automatic failover on, with the demo's fast monitor (probes every 100 ms, 500 ms timeout).
    pub fn failover() -> EnvOptions {
        EnvOptions {
            extra: "[failover]\nenabled = true\n\n[monitor]\ninterval_ms = 100\ntimeout_ms = 500\n"
                .into(),
            ..EnvOptions::default()
        }
    }
}

impl Env {
    /// Starts a 1+2 sandbox and the proxy binary `bin` (pass `env!("CARGO_BIN_EXE_lagless")`).
    pub fn start(bin: &Path) -> Result<Env> {
        Self::start_with(bin, &EnvOptions::default())
    }

    pub fn start_with(bin: &Path, opts: &EnvOptions) -> Result<Env> {
        let mut dir = tempfile::Builder::new().prefix("lagless-e2e-").tempdir()?;
        // LAGLESS_E2E_KEEP=1 keeps the proxy's logs and config for a failing test.
        dir.disable_cleanup(std::env::var_os("LAGLESS_E2E_KEEP").is_some());
        let mut up = UpOptions::new(dir.path().join("sandbox"));
        up.replicas = opts.replicas;
        up.stop_on_drop = true;
        up.semi_sync = opts.semi_sync;
        // A port found free can be taken before the server binds it (CI saw it once, with
        // 11 sandboxes starting at once).
        let sandbox = lagless_sandbox::up_on_free_ports(&mut up, 3)?;
        let (proxy, admin_port) = spawn_proxy(bin, &sandbox, dir.path(), opts)?;
        Ok(Env {
            admin_port,
            proxy,
            sandbox,
            dir,
        })
    }

    pub fn port(&self) -> u16 {
        self.proxy.port
    }

    /// Starts another proxy on the same sandbox with the same options (several proxies behind a
    /// load balancer): returns it and its admin port.
    pub fn another_proxy(&self, bin: &Path, opts: &EnvOptions) -> Result<(ProxyProcess, u16)> {
        spawn_proxy(bin, &self.sandbox, self.dir.path(), opts)
    }

    /// `mysql://app:lagless@127.0.0.1:PORT/app?prefer_socket=false`: mysql_async would otherwise
    /// ask the server for its unix socket and reconnect there, around the proxy.
    pub fn url(&self) -> String {
        self.url_for("app", "lagless")
    }

    pub fn url_for(&self, user: &str, password: &str) -> String {
        format!(
            "mysql://{user}:{password}@127.0.0.1:{}/app?prefer_socket=false",
            self.port()
        )
    }

    /// Runs the `mariadb` CLI in batch mode against the proxy.
    pub fn cli(&self, user: &str, password: &str, sql: &str) -> Result<Output> {
        mariadb_cli(self.port(), user, password, sql)
    }
}

/// The [`Env::url`] of a proxy listening on `port` (e.g. one from [`Env::another_proxy`]).
pub fn app_url(port: u16) -> String {
    format!("mysql://app:lagless@127.0.0.1:{port}/app?prefer_socket=false")
}

/// Runs `mariadb --batch` against a port; stdout holds tab-separated rows without headers.
pub fn mariadb_cli(port: u16, user: &str, password: &str, sql: &str) -> Result<Output> {
    let port = port.to_string();
    let at = ["--protocol=TCP", "-h", "127.0.0.1", "-P", &port];
    mariadb_batch(&at, user, password, sql)
}

/// [`mariadb_cli`] over a Unix socket.
pub fn mariadb_cli_socket(socket: &Path, user: &str, password: &str, sql: &str) -> Result<Output> {
    let socket = format!("--socket={}", socket.display());
    mariadb_batch(&["--protocol=SOCKET", &socket], user, password, sql)
}

/// `mariadb --batch` reaching the server as `at` says, `sql` on its stdin.
fn mariadb_batch(at: &[&str], user: &str, password: &str, sql: &str) -> Result<Output> {
    let mut child = Command::new("mariadb")
        .arg("--no-defaults")
        .args(at)
        .args(["-u", user])
        .arg(format!("-p{password}"))
        .args([
            "--batch",
            "--skip-column-names",
            "--connect-timeout=5",
            "app",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run the mariadb CLI (apt-get install mariadb-client)")?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(sql.as_bytes())?;
    Ok(child.wait_with_output()?)
}

/// Runs a Python client script of `tests/python` (see `checks.py`) with `args`, under
/// `LAGLESS_PYTHON` or the project's `.venv`, and asserts every check passed. Returns its
/// stdout (one line per check).
pub fn python_checks(script: &str, args: &[String]) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let python =
        std::env::var("LAGLESS_PYTHON").unwrap_or_else(|_| format!("{root}/.venv/bin/python"));
    let out = Command::new(&python)
        .arg(format!("{root}/tests/python/{script}"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e} (run scripts/setup.sh test)"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains(" 0 failed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The proxy configuration for a test sandbox.
pub fn config_toml(sandbox: &Sandbox, port: u16, opts: &EnvOptions) -> String {
    let m = sandbox.manifest();
    let user = |name: &str, password: &str, native: bool, sha2: bool| {
        let mut s = format!("[[users]]\nname = \"{name}\"\n");
        if native {
            s += &format!(
                "native_password = \"*{}\"\n",
                hex::encode_upper(native_password_hash(password.as_bytes()))
            );
        }
        if sha2 {
            s += &format!(
                "caching_sha2_password = \"{}\"\n",
                hex::encode(caching_sha2_stored(password.as_bytes()))
            );
        }
        s
    };
    let mut t = format!(
        "[listener]\naddress = \"127.0.0.1:{port}\"\n{}\n\n[timeouts]\nshutdown_grace_ms = {}\n{}\n\n",
        opts.listener_extra, opts.shutdown_grace_ms, opts.timeouts_extra
    );
    t += &user("app", "lagless", true, true);
    t += &user("sha2only", "sha2pass", false, true);
    t += &user("nativeonly", "nativepass", true, false);
    t += &format!(
        "\n[[clusters]]\nname = \"main\"\nuser = \"{}\"\npassword = \"{}\"\nmonitor_user = \"{}\"\nmonitor_password = \"{}\"\nreplication_user = \"{}\"\nreplication_password = \"{}\"\n",
        m.users.app.user,
        m.users.app.password,
        m.users.admin.user,
        m.users.admin.password,
        m.users.replication.user,
        m.users.replication.password
    );
    for s in &m.servers {
        let role = if s.role == lagless_sandbox::Role::Primary {
            "primary"
        } else if opts.standby && s.name == "replica1" {
            "standby"
        } else {
            "replica"
        };
        t += &format!(
            "\n[[clusters.servers]]\nname = \"{}\"\naddress = \"{}:{}\"\nrole = \"{role}\"\n",
            s.name, s.host, s.port
        );
        if opts.backend_sockets {
            t += &format!("socket = \"{}\"\n", s.socket.display());
        }
    }
    t += "\n";
    t += &opts.extra;
    t
}

/// Starts the proxy `bin` on `sandbox` with `opts`, on free ports, its config and log in `dir`:
/// the proxy and its admin port. A port found free can be taken by another test before the
/// proxy binds it (CI saw the admin port taken once): then it picks again, up to 3 times.
fn spawn_proxy(
    bin: &Path,
    sandbox: &Sandbox,
    dir: &Path,
    opts: &EnvOptions,
) -> Result<(ProxyProcess, u16)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = free_port()?;
        let admin_port = free_port()?;
        let mut opts = opts.clone();
        opts.extra = format!(
            "[admin]\naddress = \"127.0.0.1:{admin_port}\"\n\n{}",
            opts.extra
        );
        let path = dir.join(format!("lagless-{port}.toml"));
        std::fs::write(&path, config_toml(sandbox, port, &opts))?;
        match ProxyProcess::spawn(bin, &path, dir, port) {
            Ok(proxy) => return Ok((proxy, admin_port)),
            Err(e) if attempt < 3 && format!("{e:#}").contains("Address already in use") => {}
            Err(e) => return Err(e),
        }
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// The `lagless` binary running as a child process; SIGTERM then SIGKILL on drop.
pub struct ProxyProcess {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl ProxyProcess {
    /// Starts `bin --config config` and waits until it accepts connections.
    pub fn spawn(bin: &Path, config: &Path, log_dir: &Path, port: u16) -> Result<ProxyProcess> {
        let log = log_dir.join(format!("lagless-{port}.log"));
        let child = Command::new(bin)
            .arg("--config")
            .arg(config)
            .args(["--log", "info,lagless_proxy=debug"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::create(log.with_extension("err"))?)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut p = ProxyProcess { child, port, log };
        p.wait_listening(Duration::from_secs(20))?;
        Ok(p)
    }

    fn wait_listening(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.child.try_wait()? {
                bail!("lagless exited with {status}: {}", self.stderr());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "lagless did not listen on {} within {timeout:?}: {}",
            self.port,
            self.stderr()
        )
    }

    /// What the proxy logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.log.with_extension("err")).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit, up to `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if start.elapsed() > timeout {
                bail!("lagless still running {timeout:?} after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.terminate(Duration::from_secs(5));
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One [`Env`] shared by every test of a test binary, stopped when the binary exits.
///
/// Statics are never dropped, so the environment is torn down from an `atexit` hook: the test
/// harness ends with `std::process::exit`, which runs it.
pub fn shared_env(bin: &'static str) -> &'static Env {
    shared_env_with(bin, EnvOptions::default)
}

/// As [`shared_env`], with options (the first call's options win).
pub fn shared_env_with(bin: &'static str, opts: impl FnOnce() -> EnvOptions) -> &'static Env {
    static INIT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    INIT.get_or_init(|| {
        let env = Env::start_with(Path::new(bin), &opts())
            .unwrap_or_else(|e| panic!("cannot start the test environment: {e:#}"));
        SHARED.store(Box::into_raw(Box::new(env)), Ordering::SeqCst);
        // SAFETY: registers a plain `extern "C" fn()` that takes no arguments.
        unsafe { libc::atexit(stop_shared_env) };
    });
    // SAFETY: set above and freed only by the atexit hook, after every test has ended.
    unsafe { &*SHARED.load(Ordering::SeqCst) }
}

static SHARED: AtomicPtr<Env> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn stop_shared_env() {
    let p = SHARED.swap(std::ptr::null_mut(), Ordering::SeqCst);
    if !p.is_null() {
        // SAFETY: `p` came from Box::into_raw in shared_env and is taken exactly once.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// A current-thread Tokio runtime for a test's async client code.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

/// An HTTP/1.1 request to the admin interface on `port`: (status, JSON body or null).
pub fn admin_request(port: u16, method: &str, path: &str) -> (u16, serde_json::Value) {
    use std::io::Read;
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("admin interface reachable");
    write!(s, "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .expect("request sent");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("answer read");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// One value of the session's `SHOW LAGLESS STATUS`.
pub async fn lagless_status(c: &mut mysql_async::Conn, name: &str) -> String {
    use mysql_async::prelude::Queryable;
    let rows: Vec<(String, String)> = c.query("SHOW LAGLESS STATUS").await.unwrap();
    rows.into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name} in SHOW LAGLESS STATUS"))
}

/// Runs sysbench `oltp_read_write` as the demo user on the `sbtest` schema through `port`, with
/// the caller's extra arguments (tables, threads, `prepare`/`run`).
pub fn sysbench(port: u16, args: &[&str]) -> Output {
    Command::new("sysbench")
        .args([
            "oltp_read_write",
            "--db-driver=mysql",
            "--mysql-host=127.0.0.1",
        ])
        .arg(format!("--mysql-port={port}"))
        .args([
            "--mysql-user=app",
            "--mysql-password=lagless",
            "--mysql-db=sbtest",
        ])
        .args(args)
        .output()
        .expect("sysbench runs (apt-get install sysbench)")
}
