//! The login options of the topology's own connections (monitor probes, binlog streams,
//! failover control): text protocol, utf8mb4, no schema, a `program_name` that names the
//! connection's purpose in the server's processlist.

use std::time::Duration;

use lagless_backend::LoginOptions;
use lagless_protocol::consts::{
    CLIENT_DEPRECATE_EOF, CLIENT_LONG_FLAG, CLIENT_TRANSACTIONS, UTF8MB4_GENERAL_CI,
};

/// Options to log in to `addr` (`host:port` or a Unix socket path) as `user` for `program` (e.g. `lagless-monitor`).
pub(crate) fn control_login(
    addr: &str,
    user: &str,
    password: &str,
    program: &str,
    connect_timeout: Duration,
    max_packet: u32,
) -> LoginOptions {
    LoginOptions {
        addr: addr.to_string(),
        user: user.to_string(),
        password: password.to_string(),
        database: None,
        capabilities: CLIENT_LONG_FLAG | CLIENT_TRANSACTIONS | CLIENT_DEPRECATE_EOF,
        charset: UTF8MB4_GENERAL_CI,
        connect_attrs: vec![("program_name".into(), program.into())],
        connect_timeout,
        max_packet,
    }
}
