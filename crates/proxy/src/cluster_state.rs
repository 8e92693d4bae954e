//! What the proxy knows about its servers at run time: health (servers that failed are set
//! aside for a while), sessions per replica, and per-server statement counters. Routing reads
//! an immutable [`ClusterView`] snapshot, republished only when health or load changes, so the
//! per-statement path takes no lock.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use lagless_config::{Balance, Config};
use lagless_routing::balance::Draw;
use lagless_routing::{ClusterView, ServerRef};
use tokio::time::Instant;

/// Statement classes counted per server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Read,
    Write,
    Other,
}

/// Run-time facts about one server.
#[derive(Default)]
pub struct ServerStats {
    /// Milliseconds since the proxy started until which the server is set aside (0: healthy).
    down_until_ms: AtomicU64,
    /// Sessions whose sticky replica this is.
    pub sessions: AtomicU32,
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub other: AtomicU64,
    /// Connection or query failures seen.
    pub failures: AtomicU64,
}

pub struct ClusterState {
    view: ArcSwap<ClusterView>,
    servers: Vec<Vec<ServerStats>>,
    balance: Balance,
    any_down: AtomicBool,
    turn: AtomicU64,
    started: Instant,
}

impl ClusterState {
    pub fn new(config: &Config, now: Instant) -> Self {
        ClusterState {
            view: ArcSwap::from_pointee(ClusterView::from_config(config)),
            servers: config
                .clusters
                .iter()
                .map(|c| c.servers.iter().map(|_| ServerStats::default()).collect())
                .collect(),
            balance: config.routing.balance,
            any_down: AtomicBool::new(false),
            turn: AtomicU64::new(0),
            started: now,
        }
    }

    /// The current snapshot; servers whose time aside is over are healthy again.
    pub fn view(&self, now: Instant) -> Arc<ClusterView> {
        if self.any_down.load(Ordering::Relaxed) {
            self.expire(now);
        }
        self.view.load_full()
    }

    pub fn stats(&self, r: ServerRef) -> &ServerStats {
        &self.servers[r.cluster][r.server]
    }

    /// Random bits and a shared turn counter for the replica choice.
    pub fn draw(&self) -> Draw {
        Draw {
            entropy: rand::random(),
            turn: self.turn.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Sets a server aside for `period` after a failure.
    pub fn mark_down(&self, r: ServerRef, period: Duration, now: Instant) {
        let until = self.millis(now) + period.as_millis() as u64;
        let stats = self.stats(r);
        stats.failures.fetch_add(1, Ordering::Relaxed);
        stats.down_until_ms.store(until.max(1), Ordering::Relaxed);
        self.any_down.store(true, Ordering::Relaxed);
        self.publish(|v| v.clusters[r.cluster].servers[r.server].healthy = false);
    }

    fn expire(&self, now: Instant) {
        let t = self.millis(now);
        let mut still_down = false;
        for (ci, c) in self.servers.iter().enumerate() {
            for (si, s) in c.iter().enumerate() {
                let until = s.down_until_ms.load(Ordering::Relaxed);
                if until == 0 {
                    continue;
                }
                if until <= t {
                    s.down_until_ms.store(0, Ordering::Relaxed);
                    self.publish(|v| v.clusters[ci].servers[si].healthy = true);
                } else {
                    still_down = true;
                }
            }
        }
        self.any_down.store(still_down, Ordering::Relaxed);
    }

    /// A session starts or stops reading from `r`.
    pub fn sticky(&self, r: ServerRef, joined: bool) {
        let s = &self.stats(r).sessions;
        let n = if joined {
            s.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            s.fetch_sub(1, Ordering::Relaxed).saturating_sub(1)
        };
        if self.balance == Balance::LeastConnections {
            self.publish(|v| v.clusters[r.cluster].servers[r.server].sessions = n);
        }
    }

    pub fn count(&self, r: ServerRef, what: Counted) {
        let s = self.stats(r);
        match what {
            Counted::Read => &s.reads,
            Counted::Write => &s.writes,
            Counted::Other => &s.other,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    pub fn is_down(&self, r: ServerRef) -> bool {
        self.stats(r).down_until_ms.load(Ordering::Relaxed) != 0
    }

    fn publish(&self, change: impl Fn(&mut ClusterView)) {
        self.view.rcu(|v| {
            let mut next = ClusterView::clone(v);
            change(&mut next);
            next
        });
    }

    fn millis(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_millis() as u64 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        lagless_config::from_toml_str(
            r#"
[[users]]
name = "a"
native_password = "*630B64309B172CA77DD40A18D3113FAF9BB85068"
[[clusters]]
name = "c"
user = "a"
[[clusters.servers]]
name = "p"
address = "127.0.0.1:1"
role = "primary"
[[clusters.servers]]
name = "r"
address = "127.0.0.1:2"
role = "replica"
"#,
        )
        .unwrap()
    }

    #[test]
    fn a_failed_server_is_set_aside_then_comes_back() {
        let t0 = Instant::now();
        let state = ClusterState::new(&config(), t0);
        let r = ServerRef {
            cluster: 0,
            server: 1,
        };
        assert!(state.view(t0).is_usable(r));
        state.mark_down(r, Duration::from_millis(500), t0);
        assert!(!state.view(t0 + Duration::from_millis(100)).is_usable(r));
        assert!(state.is_down(r));
        assert!(state.view(t0 + Duration::from_millis(600)).is_usable(r));
        assert!(!state.is_down(r));
        assert_eq!(state.stats(r).failures.load(Ordering::Relaxed), 1);
    }
}
