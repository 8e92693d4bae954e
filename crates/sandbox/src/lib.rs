//! Local MariaDB replication sandboxes: one primary and N replicas of real `mariadbd`
//! processes on loopback ports, for the demo, the tests and the benchmarks.
//!
//! Needs Debian's `mariadb-server` (for `mariadbd`, `mariadb-install-db`) and
//! `mariadb-client` (the `mariadb` CLI, used for every control-plane statement, so this
//! crate has no async runtime and no MySQL client library).
//!
//! In a test:
//!
//! ```no_run
//! use lagless_sandbox::{LagAction, Sandbox};
//! # fn main() -> anyhow::Result<()> {
//! let sb = Sandbox::for_test(2)?; // own temp dir and free ports; stopped on drop
//! let (p, app) = (sb.primary(), &sb.users().app);
//! println!("connect to {}:{} as {}/{}", p.host(), p.port(), app.user, app.password);
//! p.sql("CREATE TABLE app.t (id INT PRIMARY KEY)")?;
//! sb.lag(1, LagAction::StopSql)?; // replica1 stops applying
//! sb.replica(2).kill()?; // SIGKILL; also pause() / resume() (SIGSTOP / SIGCONT)
//! sb.replica(2).restart()?; // same datadir and port: it reconnects and catches up
//! sb.lag(1, LagAction::Resume)?; // returns once replica1 caught up (by GTID)
//! # Ok(()) }
//! ```
//!
//! Parts:
//! - [`layout`]: locating the binaries, where each file goes (datadirs on tmpfs), free ports.
//! - `template`: one bootstrapped datadir (users, schemas), cached per server version and
//!   copied (`cp -a`) for every server.
//! - `cnf`: the option file of each server.
//! - [`process`]: detached spawning, liveness through `/proc`, signals.
//! - `client`: SQL through the `mariadb` CLI with a timeout.
//! - [`server`]: a handle on one server: SQL helpers, kill / pause / resume / restart.
//! - [`state`]: the `sandbox.json` manifest, credentials and the status report.
//! - [`topology`]: `up` (fresh build or crash recovery), replication set-up and checks, `status`.
//! - [`mod@down`]: stopping exactly our processes and removing the datadirs.
//! - [`sandbox`]: the [`Sandbox`] handle (with an optional Drop guard for tests).
//! - [`gtid`]: GTID position parsing and comparison.
//! - [`mod@lag`]: inducing and removing replica lag.
//! - [`cli`]: the `lagless sandbox ...` subcommands.

mod client;
mod cnf;
mod template;

pub mod cli;
pub mod down;
pub mod gtid;
pub mod lag;
pub mod layout;
pub mod process;
pub mod sandbox;
pub mod server;
pub mod state;
pub mod topology;

pub use down::{down, DownReport};
pub use gtid::GtidPos;
pub use lag::{lag, LagAction, LagReport};
pub use layout::{free_base_port, Binaries, INSTALL_HINT};
pub use sandbox::Sandbox;
pub use server::{PortInUse, Server, SlaveStatus};
pub use state::{
    Credentials, Durability, Manifest, Role, SandboxStatus, ServerEntry, ServerStatus,
    UserCredential,
};
pub use topology::{status, up, up_on_free_ports, UpOptions};
