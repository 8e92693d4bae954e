//! Automatic failover: watches the monitor's snapshots of one cluster, declares the primary
//! failed with `lagless_topology::failover::primary_failed` (its probes fail AND its replicas
//! stopped receiving from it), promotes the best candidate under the failover lock, and points
//! the routing view at the new primary as soon as it is writable. Writes wait meanwhile
//! (see `Engine::run`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use lagless_topology::failover::{
    choose_candidate, failover, fence, primary_failed, promoted_primary, rejoin,
    with_failover_lock, Account, DetectionPolicy, FailoverOptions, LockScope, Locked, Member,
    RejoinOutcome,
};
use lagless_topology::Snapshot;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::context::ProxyContext;
use crate::ha_history::{HaRecord, HaStep};
use lagless_routing::gtid::MariaPos;

/// How much monitor history detection looks at.
const HISTORY: Duration = Duration::from_secs(10);

pub struct FailoverDriver {
    ctx: Arc<ProxyContext>,
    cluster: usize,
    history: VecDeque<Arc<Snapshot>>,
    /// Fenced servers a rejoin is running or was done for (once per reappearance; a fence or
    /// rejoin that failed is tried again).
    rejoin_tried: Arc<std::sync::Mutex<Vec<usize>>>,
}

impl FailoverDriver {
    pub fn new(ctx: Arc<ProxyContext>, cluster: usize) -> Self {
        FailoverDriver {
            ctx,
            cluster,
            history: VecDeque::new(),
            rejoin_tried: Arc::default(),
        }
    }

    /// Takes the next snapshot; starts a failover when the primary is confirmed failed.
    pub fn observe(&mut self, snapshot: Arc<Snapshot>) {
        if snapshot.round == 0 {
            return;
        }
        let now = snapshot.taken_at;
        self.history.push_back(snapshot);
        while self
            .history
            .front()
            .is_some_and(|s| now.duration_since(s.taken_at) > HISTORY)
        {
            self.history.pop_front();
        }
        if self.ctx.cluster.failing_over(self.cluster) {
            return;
        }
        self.rejoin_fenced();
        let config = &self.ctx.config;
        let view = self.ctx.cluster.view(Instant::now());
        let primary = view.primary(self.cluster);
        let primary_name = view.server(primary).name.clone();
        // Another proxy (or an operator) may already have promoted a server while ours no
        // longer looks like a primary: adopt it instead of promoting a second one.
        if let Some(latest) = self.history.back() {
            let ours_is_primary = latest
                .get(self.cluster, primary.server)
                .is_some_and(|o| o.looks_like_primary());
            let observations: Vec<_> = latest
                .servers
                .iter()
                .filter(|o| o.cluster == self.cluster)
                .cloned()
                .collect();
            if !ours_is_primary {
                // Never a server this proxy fenced (a former primary that is writable again
                // until its fence succeeds), and only one that has everything ours was last
                // seen to have written: a successor, not a stale old primary.
                let cluster = self.cluster;
                let mut excluded: Vec<&str> = vec![primary_name.as_str()];
                excluded.extend(
                    config.clusters[cluster]
                        .servers
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| {
                            self.ctx.cluster.is_fenced(lagless_routing::ServerRef {
                                cluster,
                                server: *i,
                            })
                        })
                        .map(|(_, s)| s.name.as_str()),
                );
                let written = last_written(&self.history, cluster, primary.server);
                if let Some(p) = promoted_primary(&observations, &excluded)
                    .filter(|p| has_all_of(p, written.as_ref()))
                {
                    info!(primary = %p.name, "a promoted primary was found: routing writes to it");
                    self.ctx.cluster.set_primary(self.cluster, p.server);
                    return;
                }
            }
        }
        let history: Vec<Arc<Snapshot>> = self.history.iter().cloned().collect();
        let policy = DetectionPolicy {
            failcount: config.failover.failcount,
            ..DetectionPolicy::default()
        };
        let verdict = primary_failed(&history, &primary_name, &policy, now);
        if !verdict.is_failed() {
            if !matches!(verdict, lagless_topology::failover::Verdict::Alive) {
                tracing::debug!(primary = %primary_name, ?verdict, "primary suspect");
            }
            return;
        }
        warn!(cluster = %config.clusters[self.cluster].name, primary = %primary_name, ?verdict, "primary failed: failing over");
        self.ctx.cluster.set_failing_over(self.cluster, true);
        let ctx = self.ctx.clone();
        let cluster = self.cluster;
        let latest = history.last().cloned().expect("pushed above");
        tokio::spawn(async move {
            let started = Instant::now();
            run_failover(&ctx, cluster, &primary_name, &latest).await;
            info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "failover finished"
            );
            ctx.cluster.set_failing_over(cluster, false);
        });
    }
}

impl FailoverDriver {
    /// A fenced former primary that answers again is made read-only, then rejoined as a replica
    /// of the new primary if its history is a prefix of the new primary's; otherwise it stays
    /// fenced (quarantined) and its errant transactions are logged.
    fn rejoin_fenced(&mut self) {
        let Some(latest) = self.history.back().cloned() else {
            return;
        };
        let cluster = self.cluster;
        let config = &self.ctx.config.clusters[cluster];
        let view = self.ctx.cluster.view(Instant::now());
        let primary = view.primary(cluster);
        for (i, s) in config.servers.iter().enumerate() {
            let r = lagless_routing::ServerRef { cluster, server: i };
            let reachable = latest.get(cluster, i).is_some_and(|o| o.reachable);
            if !self.ctx.cluster.is_fenced(r) {
                continue;
            }
            let Ok(mut tried) = self.rejoin_tried.lock() else {
                return;
            };
            if !reachable {
                tried.retain(|x| *x != i);
                continue;
            }
            if tried.contains(&i) {
                continue;
            }
            tried.push(i);
            drop(tried);
            let tried = self.rejoin_tried.clone();
            // A failed attempt is forgotten after a pause: the next snapshot tries again.
            let retry_later = move || async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Ok(mut t) = tried.lock() {
                    t.retain(|x| *x != i);
                }
            };
            let old = Member::new(s.name.clone(), s.address.clone());
            let new = Member::new(
                config.servers[primary.server].name.clone(),
                config.servers[primary.server].address.clone(),
            );
            let mut opts = options(&self.ctx, cluster);
            // Fencing switches semi-sync off on it first, and a rejoin makes it a semi-sync
            // replica again (see `fence`, `rejoin`).
            opts.semi_sync = runs_semi_sync(&latest, cluster);
            let ctx = self.ctx.clone();
            tokio::spawn(async move {
                if let Err(e) = fence(&old, &opts).await {
                    warn!(server = %old.name, error = %e, "cannot fence the former primary yet");
                    retry_later().await;
                    return;
                }
                info!(server = %old.name, "former primary fenced (read_only = 1)");
                let cluster_name = ctx.config.clusters[cluster].name.clone();
                match rejoin(&old, &new, &opts).await {
                    Ok(report) => {
                        let mut record = HaRecord {
                            at_ms: ctx.now_ms(),
                            cluster: cluster_name,
                            kind: "rejoin",
                            server: old.name.clone(),
                            summary: format!("replicates from {}", new.name),
                            total_ms: Some(ms(report.took)),
                            possibly_lost: Vec::new(),
                            steps: report.events.iter().map(HaStep::from_event).collect(),
                        };
                        match &report.outcome {
                            RejoinOutcome::Rejoined => {
                                info!(server = %old.name, primary = %new.name, "former primary rejoined as a replica");
                                ctx.cluster.unfence(r);
                            }
                            RejoinOutcome::Quarantined { errant } => {
                                error!(server = %old.name, ?errant, "former primary quarantined: it has transactions the new primary lacks (possibly lost)");
                                record.kind = "quarantine";
                                record.summary = format!(
                                    "fenced (read-only, not replicating): it has {} the new primary {} lacks; re-apply or discard them by hand, then rebuild it",
                                    count_transactions(errant),
                                    new.name
                                );
                                record.possibly_lost =
                                    errant.iter().map(ToString::to_string).collect();
                            }
                        }
                        ctx.ha.push(record);
                    }
                    Err(e) => {
                        warn!(server = %old.name, error = %e, "rejoin failed");
                        retry_later().await;
                    }
                }
            });
        }
    }
}

/// The best replica to promote, following the configured priorities and exclusions.
fn candidate_for(
    config: &lagless_config::Cluster,
    servers: &[lagless_topology::ServerObservation],
) -> Result<lagless_topology::failover::Candidate, lagless_topology::failover::NoCandidate> {
    // A standby is the first choice among equally advanced candidates.
    let priorities: Vec<(&str, i32)> = config
        .servers
        .iter()
        .map(|s| match s.role {
            lagless_config::Role::Standby => (s.name.as_str(), i32::MAX),
            _ => (s.name.as_str(), s.priority),
        })
        .collect();
    let excluded: Vec<&str> = config
        .servers
        .iter()
        .filter(|s| s.no_failover)
        .map(|s| s.name.as_str())
        .collect();
    choose_candidate(servers, &priorities, &excluded)
}

/// Failover actions' settings for a cluster.
fn options(ctx: &ProxyContext, cluster: usize) -> FailoverOptions {
    let config = &ctx.config.clusters[cluster];
    let mut opts = FailoverOptions::new(
        Account::new(config.monitor_user.clone(), config.monitor_password.clone()),
        Account::new(
            config.replication_user.clone(),
            config.replication_password.clone(),
        ),
    );
    opts.apply_timeout = ctx.config.failover.apply_timeout;
    opts.heartbeat_period = ctx.config.failover.replica_heartbeat;
    opts.lock_scope = match ctx.config.failover.lock {
        lagless_config::FailoverLock::Majority => LockScope::Majority,
        lagless_config::FailoverLock::Candidate => LockScope::Candidate,
    };
    opts.connect_timeout = ctx.config.timeouts.connect;
    opts
}

/// Did any server of the cluster run semi-synchronous replication at the last look?
fn runs_semi_sync(latest: &Snapshot, cluster: usize) -> bool {
    latest
        .servers
        .iter()
        .filter(|o| o.cluster == cluster)
        .any(|o| o.semi_sync.master_status == Some(true) || o.semi_sync.slave_status == Some(true))
}

async fn run_failover(ctx: &Arc<ProxyContext>, cluster: usize, old: &str, latest: &Snapshot) {
    let config = &ctx.config.clusters[cluster];
    let servers: Vec<_> = latest
        .servers
        .iter()
        .filter(|o| o.cluster == cluster)
        .cloned()
        .collect();
    let candidate = match candidate_for(config, &servers) {
        Ok(c) => c,
        Err(e) => {
            error!(error = ?e, "no failover candidate: writes stay refused until the primary returns");
            return;
        }
    };
    let index_of = |name: &str| config.servers.iter().position(|s| s.name == name);
    let mut opts = options(ctx, cluster);
    // Keep semi-synchronous replication on after the promotion if the cluster ran it.
    opts.semi_sync = runs_semi_sync(latest, cluster);
    let hook_ctx = ctx.clone();
    let names: Vec<String> = config.servers.iter().map(|s| s.name.clone()).collect();
    opts.on_promoted = Some(Arc::new(move |m: &Member| {
        // Writes go to the new primary the moment it is writable.
        if let Some(i) = names.iter().position(|n| *n == m.name) {
            hook_ctx.cluster.set_primary(cluster, i);
        }
    }));
    let members: Vec<Member> = config
        .servers
        .iter()
        .map(|s| Member::new(s.name.clone(), s.address.clone()))
        .collect();
    let promote = || failover(&servers, &candidate, &opts);
    let record = |kind,
                  server: &str,
                  summary: String,
                  total,
                  steps: &[lagless_topology::failover::Event]| HaRecord {
        at_ms: ctx.now_ms(),
        cluster: config.name.clone(),
        kind,
        server: server.to_string(),
        summary,
        total_ms: total,
        possibly_lost: Vec::new(),
        steps: steps.iter().map(HaStep::from_event).collect(),
    };
    match with_failover_lock(&members, old, &candidate.member(), &opts, promote).await {
        Ok(Locked::Ran(Ok(report))) => {
            if let Some(i) = index_of(&report.new_primary) {
                ctx.cluster.set_primary(cluster, i);
            }
            for event in &report.events {
                info!(?event, "failover step");
            }
            info!(new_primary = %report.new_primary, total_ms = report.total.as_millis() as u64, "failover done");
            let summary = format!(
                "{old} failed; {} promoted (writable after {:.1} ms){}",
                report.new_primary,
                ms(report.promoted_after),
                if report.apply.caught_up {
                    String::new()
                } else {
                    format!(
                        "; it had not applied everything it received: {}",
                        report.apply.note.as_deref().unwrap_or("")
                    )
                }
            );
            ctx.ha.push(record(
                "failover",
                &report.new_primary,
                summary,
                Some(ms(report.total)),
                &report.events,
            ));
        }
        Ok(Locked::Ran(Err(e))) => {
            error!(error = %e, "failover failed");
            ctx.ha.push(record(
                "failover_failed",
                &e.server,
                e.to_string(),
                None,
                &e.events,
            ));
        }
        Ok(Locked::AlreadyPromoted { primary }) => {
            info!(%primary, "another proxy promoted a primary");
            if let Some(i) = index_of(&primary) {
                ctx.cluster.set_primary(cluster, i);
            }
            let summary = format!("{old} failed; another proxy had promoted {primary}");
            ctx.ha.push(record("adopted", &primary, summary, None, &[]));
        }
        Err(e) => error!(error = %e, "failover lock"),
    }
}

/// A planned change of primary (`lagless switchover`, `POST /switchover`): writes are held,
/// the old primary is made read-only, the target applies everything it wrote, is promoted, and
/// the others (the old primary included) replicate from it. No write is lost. Returns the
/// report as text.
///
/// # Errors
/// The cluster or target is unknown, a failover is already running, or a step failed (the old
/// primary is then writable again, see `lagless_topology::failover::switchover`).
pub async fn switchover(
    ctx: &Arc<ProxyContext>,
    cluster_name: Option<&str>,
    to: Option<&str>,
) -> Result<String, String> {
    let cluster = match cluster_name {
        Some(n) => ctx
            .config
            .clusters
            .iter()
            .position(|c| c.name == n)
            .ok_or(format!("no cluster is named `{n}`"))?,
        None => 0,
    };
    let config = &ctx.config.clusters[cluster];
    let view = ctx.cluster.view(Instant::now());
    let current = config.servers[view.primary(cluster).server].name.clone();
    let servers: Vec<_> = ctx
        .cluster
        .observations()
        .into_iter()
        .filter(|o| o.cluster == cluster)
        .collect();
    if servers.is_empty() {
        return Err("the monitor has not observed the cluster yet".into());
    }
    let target = match to {
        Some(t) if config.servers.iter().any(|s| s.name == t) => t.to_string(),
        Some(t) => return Err(format!("no server is named `{t}`")),
        None => {
            candidate_for(config, &servers)
                .map_err(|e| format!("no candidate: {e:?}"))?
                .member()
                .name
        }
    };
    if target == current {
        return Err(format!("{target} is already the primary"));
    }
    if ctx.cluster.failing_over(cluster) {
        return Err("a failover or switchover is already running".into());
    }
    ctx.cluster.set_failing_over(cluster, true);
    let mut opts = options(ctx, cluster);
    let hook_ctx = ctx.clone();
    let names: Vec<String> = config.servers.iter().map(|s| s.name.clone()).collect();
    opts.on_promoted = Some(Arc::new(move |m: &Member| {
        if let Some(i) = names.iter().position(|n| *n == m.name) {
            hook_ctx.cluster.set_primary(cluster, i);
        }
    }));
    let result = lagless_topology::failover::switchover(&servers, &current, &target, &opts).await;
    let index_of = |name: &str| config.servers.iter().position(|s| s.name == name);
    let outcome = match result {
        Ok(report) => {
            if let Some(i) = index_of(&report.new_primary) {
                ctx.cluster.set_primary(cluster, i);
            }
            if let (Ok(RejoinOutcome::Rejoined), Some(i)) =
                (&report.old_primary_outcome, index_of(&report.old_primary))
            {
                // A planned switchover leaves the old primary a healthy replica.
                ctx.cluster
                    .unfence(lagless_routing::ServerRef { cluster, server: i });
            }
            info!(%report, "switchover done");
            ctx.ha.push(HaRecord {
                at_ms: ctx.now_ms(),
                cluster: config.name.clone(),
                kind: "switchover",
                server: report.new_primary.clone(),
                summary: format!(
                    "{} -> {}: writes paused {:.1} ms",
                    report.old_primary,
                    report.new_primary,
                    ms(report.write_pause)
                ),
                total_ms: Some(ms(report.total)),
                possibly_lost: Vec::new(),
                steps: report.events.iter().map(HaStep::from_event).collect(),
            });
            Ok(report.to_string())
        }
        Err(e) => {
            error!(error = %e, "switchover failed");
            ctx.ha.push(HaRecord {
                at_ms: ctx.now_ms(),
                cluster: config.name.clone(),
                kind: "switchover_failed",
                server: target.clone(),
                summary: e.to_string(),
                total_ms: None,
                possibly_lost: Vec::new(),
                steps: e.events.iter().map(HaStep::from_event).collect(),
            });
            Err(e.to_string())
        }
    };
    ctx.cluster.set_failing_over(cluster, false);
    outcome
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// "3 transactions" for GTID ranges (a range whose start is unknown counts as "at least 1").
fn count_transactions(ranges: &[lagless_topology::failover::GtidRange]) -> String {
    let known: u64 = ranges
        .iter()
        .map(|r| r.first_seq.map_or(1, |f| r.last_seq.saturating_sub(f) + 1))
        .sum();
    let open = ranges.iter().any(|r| r.first_seq.is_none());
    let plural = if known == 1 { "" } else { "s" };
    format!(
        "{}{known} transaction{plural}",
        if open { "at least " } else { "" }
    )
}

/// What the server `server` had written (`gtid_binlog_pos`) the last time it was observed.
fn last_written(
    history: &VecDeque<Arc<Snapshot>>,
    cluster: usize,
    server: usize,
) -> Option<MariaPos> {
    history.iter().rev().find_map(|snap| {
        snap.get(cluster, server)
            .filter(|o| o.reachable)
            .and_then(|o| o.gtid_binlog_pos.as_deref())
            .and_then(|g| g.parse().ok())
    })
}

/// Whether `o` has applied or written everything in `written` (true when that is unknown).
fn has_all_of(o: &lagless_topology::ServerObservation, written: Option<&MariaPos>) -> bool {
    let Some(written) = written else {
        return true;
    };
    o.gtid_current_pos
        .as_deref()
        .and_then(|g| g.parse::<MariaPos>().ok())
        .is_some_and(|have| have.contains(written))
}
