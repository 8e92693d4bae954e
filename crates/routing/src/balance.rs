//! Choosing a session's replica. Called once per session (and again only when its replica
//! becomes unusable), so the choice is sticky like an ORM's routing session.

use lagless_config::{Balance, Role};

use crate::view::{ClusterView, ServerRef};

/// Inputs a policy may use besides the view: `entropy` (random bits from the caller) and
/// `turn` (a counter shared by all sessions, for round-robin).
#[derive(Debug, Clone, Copy)]
pub struct Draw {
    pub entropy: u64,
    pub turn: u64,
}

/// Picks a read server of `cluster`: a healthy replica (or the primary too when
/// `primary_in_pool`). `None` when no candidate is healthy.
pub fn choose_replica(
    view: &ClusterView,
    cluster: usize,
    policy: Balance,
    primary_in_pool: bool,
    draw: Draw,
) -> Option<ServerRef> {
    let servers = &view.clusters.get(cluster)?.servers;
    let candidates = || {
        servers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.healthy && (s.role == Role::Replica || primary_in_pool))
    };
    let count = candidates().count();
    if count == 0 {
        return None;
    }
    let pick = match policy {
        Balance::Random => candidates().nth((draw.entropy % count as u64) as usize)?.0,
        Balance::RoundRobin => candidates().nth((draw.turn % count as u64) as usize)?.0,
        Balance::LeastConnections => {
            // Ties broken by the turn counter so that equal replicas fill evenly.
            let min = candidates().map(|(_, s)| s.sessions).min()?;
            let tied: Vec<usize> = candidates()
                .filter(|(_, s)| s.sessions == min)
                .map(|(i, _)| i)
                .collect();
            tied[(draw.turn % tied.len() as u64) as usize]
        }
        Balance::Weighted => {
            let total: u64 = candidates().map(|(_, s)| u64::from(s.weight)).sum();
            let mut x = draw.entropy % total.max(1);
            let mut chosen = None;
            for (i, s) in candidates() {
                let w = u64::from(s.weight);
                if x < w {
                    chosen = Some(i);
                    break;
                }
                x -= w;
            }
            chosen?
        }
    };
    Some(ServerRef {
        cluster,
        server: pick,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{ClusterState, ServerState};

    fn view(weights: &[(Role, u32, bool, u32)]) -> ClusterView {
        ClusterView {
            clusters: vec![ClusterState {
                name: "c".into(),
                servers: weights
                    .iter()
                    .enumerate()
                    .map(|(i, &(role, weight, healthy, sessions))| ServerState {
                        name: format!("s{i}"),
                        role,
                        weight,
                        healthy,
                        sessions,
                        replica: None,
                        binlog: None,
                        streamed_binlog: None,
                    })
                    .collect(),
            }],
        }
    }

    const P: Role = Role::Primary;
    const R: Role = Role::Replica;

    #[test]
    fn unhealthy_and_primary_are_skipped() {
        let v = view(&[(P, 1, true, 0), (R, 1, false, 0), (R, 1, true, 0)]);
        for e in 0..10 {
            let d = Draw {
                entropy: e,
                turn: e,
            };
            for p in [
                Balance::Random,
                Balance::RoundRobin,
                Balance::LeastConnections,
                Balance::Weighted,
            ] {
                assert_eq!(choose_replica(&v, 0, p, false, d).unwrap().server, 2);
            }
        }
        let none = view(&[(P, 1, true, 0), (R, 1, false, 0)]);
        assert_eq!(
            choose_replica(
                &none,
                0,
                Balance::Random,
                false,
                Draw {
                    entropy: 0,
                    turn: 0
                }
            ),
            None
        );
        assert_eq!(
            choose_replica(
                &none,
                0,
                Balance::Random,
                true,
                Draw {
                    entropy: 0,
                    turn: 0
                }
            )
            .unwrap()
            .server,
            0,
            "primary in the read pool"
        );
    }

    #[test]
    fn round_robin_takes_turns_and_least_connections_fills_the_emptiest() {
        let v = view(&[(P, 1, true, 0), (R, 1, true, 5), (R, 1, true, 2)]);
        let rr: Vec<usize> = (0..4)
            .map(|t| {
                choose_replica(
                    &v,
                    0,
                    Balance::RoundRobin,
                    false,
                    Draw {
                        entropy: 0,
                        turn: t,
                    },
                )
                .unwrap()
                .server
            })
            .collect();
        assert_eq!(rr, vec![1, 2, 1, 2]);
        let lc = choose_replica(
            &v,
            0,
            Balance::LeastConnections,
            false,
            Draw {
                entropy: 9,
                turn: 3,
            },
        );
        assert_eq!(lc.unwrap().server, 2);
    }

    #[test]
    fn weighted_follows_weights() {
        let v = view(&[(P, 1, true, 0), (R, 1, true, 0), (R, 3, true, 0)]);
        let mut counts = [0u32; 3];
        for e in 0..4000u64 {
            let d = Draw {
                entropy: e,
                turn: 0,
            };
            counts[choose_replica(&v, 0, Balance::Weighted, false, d)
                .unwrap()
                .server] += 1;
        }
        assert_eq!(counts, [0, 1000, 3000]);
    }
}
