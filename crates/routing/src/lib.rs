//! Pure routing decisions: given a classified statement, the session's routing state and a
//! snapshot of the clusters, which server runs the statement and why. No I/O, no clock, no
//! global state: everything is an argument, so the same code serves the proxy, `lagless
//! explain` and library users.
//!
//! Parts:
//! - [`view`]: [`ClusterView`], the servers with their role, weight, health and load.
//! - [`session`]: [`SessionRouting`], what routing remembers about one client session
//!   (transaction, pins, sticky replica) and how statement outcomes update it.
//! - [`balance`]: the replica choice policies.
//! - [`gtid`]: GTID positions and sets (MariaDB and MySQL) with containment.
//! - [`consistency`]: the consistency modes' conditions for reading on a replica.
//! - [`decide`]: [`route`], the decision itself, returning a [`RoutePlan`] with a [`Reason`].
//! - [`schema_lag`]: which replica errors send a read to the primary instead.

#![forbid(unsafe_code)]

pub mod balance;
pub mod consistency;
pub mod decide;
pub mod gtid;
pub mod schema_lag;
pub mod session;
pub mod view;

pub use decide::{route, Reason, RouteInput, RoutePlan, TargetKind};
pub use session::{Pins, SessionRouting, TrxState};
pub use view::{ClusterView, PositionSource, ServerRef, ServerState};
