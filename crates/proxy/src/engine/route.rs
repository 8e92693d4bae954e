//! The routing seam: which server of the cluster executes a command.
//!
//! The foundation sends every command to the primary; the read/write splitting issue replaces
//! this with the classifier and the pure decisions of `lagless-routing`.

use lagless_config::{Cluster, Role};
use lagless_protocol::packet::Packet;

/// Index of the configured primary in `cluster.servers`.
pub fn primary_index(cluster: &Cluster) -> usize {
    cluster
        .servers
        .iter()
        .position(|s| s.role == Role::Primary)
        .unwrap_or(0)
}

/// The server for one command.
pub fn route(cluster: &Cluster, _command: &Packet) -> usize {
    primary_index(cluster)
}
