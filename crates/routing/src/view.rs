//! A snapshot of the clusters as routing sees them. The proxy (and later the topology monitor)
//! produces it; routing only reads it.

use lagless_config::{Config, Role};

use crate::consistency::{BinlogAt, ReplicaState};

/// A server by position: `clusters[cluster].servers[server]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerRef {
    pub cluster: usize,
    pub server: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    pub name: String,
    pub role: Role,
    pub weight: u32,
    /// False while the server is known to be down (a failed connection, a failed probe).
    pub healthy: bool,
    /// Sessions currently using it for reads (for least-connections).
    pub sessions: u32,
    /// Replication progress from the monitor (replicas), when known.
    pub replica: Option<ReplicaState>,
    /// The server's own binlog position from the monitor (used on primaries).
    pub binlog: Option<BinlogAt>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterState {
    pub name: String,
    pub servers: Vec<ServerState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterView {
    pub clusters: Vec<ClusterState>,
}

impl ClusterView {
    /// Every configured server, healthy, with no load.
    pub fn from_config(config: &Config) -> Self {
        ClusterView {
            clusters: config
                .clusters
                .iter()
                .map(|c| ClusterState {
                    name: c.name.clone(),
                    servers: c
                        .servers
                        .iter()
                        .map(|s| ServerState {
                            name: s.name.clone(),
                            role: s.role,
                            weight: s.weight,
                            healthy: true,
                            sessions: 0,
                            replica: None,
                            binlog: None,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The primary of a cluster.
    pub fn primary(&self, cluster: usize) -> ServerRef {
        let server = self.clusters[cluster]
            .servers
            .iter()
            .position(|s| s.role == Role::Primary)
            .unwrap_or(0);
        ServerRef { cluster, server }
    }

    /// The primary's binlog position, if the monitor saw it at or after `since_ms`.
    pub fn primary_binlog_since(&self, cluster: usize, since_ms: u64) -> Option<&BinlogAt> {
        self.server(self.primary(cluster))
            .binlog
            .as_ref()
            .filter(|b| b.observed_ms >= since_ms)
    }

    pub fn server(&self, r: ServerRef) -> &ServerState {
        &self.clusters[r.cluster].servers[r.server]
    }

    pub fn is_usable(&self, r: ServerRef) -> bool {
        self.clusters
            .get(r.cluster)
            .and_then(|c| c.servers.get(r.server))
            .is_some_and(|s| s.healthy)
    }
}
