//! A snapshot of the clusters as routing sees them. The proxy (and later the topology monitor)
//! produces it; routing only reads it.

use lagless_config::{Config, Role};

use crate::consistency::{BinlogAt, BinlogPos, ReplicaState, StreamedBinlog, WriteState};
use crate::gtid::MariaPos;

/// Where [`ClusterView::write_position`] found a write's binlog position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PositionSource {
    /// The primary's binlog stream.
    Stream,
    /// A probe of the primary made after the write.
    Probe,
}

impl PositionSource {
    pub fn name(self) -> &'static str {
        match self {
            PositionSource::Stream => "stream",
            PositionSource::Probe => "probe",
        }
    }
}

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
    /// A primary's binlog stream: where its last transaction ends (`binlog` is the polls').
    pub streamed_binlog: Option<StreamedBinlog>,
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
                            streamed_binlog: None,
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

    /// Where the primary's binlog holds all of `gtids`, from its binlog stream, once the
    /// stream has seen them.
    pub fn primary_binlog_through(&self, cluster: usize, gtids: &MariaPos) -> Option<&BinlogPos> {
        self.server(self.primary(cluster))
            .streamed_binlog
            .as_ref()
            .filter(|b| b.through.contains(gtids))
            .map(|b| &b.pos)
    }

    /// Where a session's writes (and causal tokens) end in the primary's binlog, for the
    /// position modes: from the primary's binlog stream once it holds their GTIDs, else the
    /// first position a probe of the primary found after the last write. A token carries no
    /// write time, so only the stream can place it.
    pub fn write_position(
        &self,
        cluster: usize,
        write: &WriteState,
    ) -> Option<(&BinlogPos, PositionSource)> {
        if write.gtids.is_empty() {
            return None;
        }
        if let Some(p) = self.primary_binlog_through(cluster, &write.gtids) {
            return Some((p, PositionSource::Stream));
        }
        write
            .at_ms
            .and_then(|at| self.primary_binlog_since(cluster, at))
            .map(|b| (&b.pos, PositionSource::Probe))
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
