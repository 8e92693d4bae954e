//! The TOML file as written by users. Every table denies unknown keys.

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub listener: RawListener,
    #[serde(default)]
    pub timeouts: RawTimeouts,
    #[serde(default)]
    pub users: Vec<RawUser>,
    #[serde(default)]
    pub clusters: Vec<RawCluster>,
}

/// `[listener]`: where clients connect and what they are told.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawListener {
    pub address: String,
    pub max_connections: u32,
    pub max_allowed_packet: u64,
    pub server_version: Option<String>,
    pub local_infile: bool,
}

impl Default for RawListener {
    fn default() -> Self {
        RawListener {
            address: "127.0.0.1:6033".into(),
            max_connections: 10_000,
            max_allowed_packet: 64 * 1024 * 1024,
            server_version: None,
            local_infile: false,
        }
    }
}

/// `[timeouts]`, all in milliseconds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTimeouts {
    pub connect_ms: u64,
    pub handshake_ms: u64,
    pub shutdown_grace_ms: u64,
}

impl Default for RawTimeouts {
    fn default() -> Self {
        RawTimeouts {
            connect_ms: 2_000,
            handshake_ms: 10_000,
            shutdown_grace_ms: 10_000,
        }
    }
}

/// `[[users]]`: a client account. Only password hashes are stored (see `lagless passwd`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub name: String,
    /// `*` followed by 40 hex digits: SHA1(SHA1(password)), as MariaDB's PASSWORD() prints it.
    pub native_password: Option<String>,
    /// 64 hex digits: SHA256(SHA256(password)), enough for caching_sha2_password fast auth.
    pub caching_sha2_password: Option<String>,
    /// The cluster this user's sessions use; defaults to the first cluster.
    pub cluster: Option<String>,
}

/// `[[clusters]]`: a primary and its replicas.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub name: String,
    /// The account Lagless logs in to the servers with.
    pub user: String,
    pub password: Option<String>,
    /// Name of an environment variable holding the password (instead of `password`).
    pub password_env: Option<String>,
    pub servers: Vec<RawServer>,
}

/// `[[clusters.servers]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub name: String,
    /// `host:port`.
    pub address: String,
    pub role: Role,
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// What a server is configured as. The topology monitor may later learn otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Replica,
}
