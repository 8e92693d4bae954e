use proptest::prelude::*;

use super::*;

fn pos(s: &str) -> MariaPos {
    MariaPos::parse(s).unwrap()
}

fn errant(old: &str, current: &str, slave: &str) -> String {
    show(&errant_transactions(&pos(old), &pos(current), &pos(slave)))
}

#[test]
fn prefix_after_a_failover() {
    // The old primary wrote up to 0-1-10, all replicated; the new primary (server 2) went on.
    assert_eq!(errant("0-1-10", "0-2-15", "0-1-10"), "");
    // It had less than the new primary replicated.
    assert_eq!(errant("0-1-8", "0-2-15", "0-1-10"), "");
    // No failover yet: same position, or behind on the same server's stream.
    assert_eq!(errant("0-1-10", "0-1-10", ""), "");
    assert_eq!(errant("0-1-5", "0-1-10", ""), "");
    assert_eq!(errant("", "0-2-3", ""), "");
}

#[test]
fn errant_or_lost_transactions_are_listed() {
    // Measured on the sandbox: an errant write on the old primary after the failover.
    // Containment by sequence number alone would call 0-1-3 contained in 0-2-4.
    assert!(pos("0-2-4").contains(&pos("0-1-3")));
    assert_eq!(errant("0-1-3", "0-2-4", "0-1-2"), "0-1-3");
    // Three transactions the candidate never received (lost by the failover).
    let e = errant_transactions(&pos("0-1-13"), &pos("0-2-11"), &pos("0-1-10"));
    assert_eq!(show(&e), "0-1-11..0-1-13");
    assert_eq!(e[0].count(), Some(3));
    assert!(e[0].contains(MariaGtid::new(0, 1, 12)));
    assert!(!e[0].contains(MariaGtid::new(0, 2, 12)));
    assert!(!e[0].contains(MariaGtid::new(0, 1, 10)));
    assert!(!e[0].contains(MariaGtid::new(1, 1, 12)));
    // A domain the new primary never had.
    assert_eq!(
        errant("0-1-10,7-1-2", "0-2-15", "0-1-10"),
        "7-1-2 and earlier"
    );
    // Histories with no server in common in the domain: not comparable, so errant.
    let e = errant_transactions(&pos("0-1-5"), &pos("0-3-20"), &pos("0-3-19"));
    assert_eq!(show(&e), "0-1-5 and earlier");
    assert_eq!(e[0].count(), None);
    assert!(e[0].contains(MariaGtid::new(0, 1, 1)));
}

#[test]
fn unapplied_ranges() {
    assert_eq!(show(&unapplied(&pos("0-1-10"), &pos("0-1-10"))), "");
    assert_eq!(
        show(&unapplied(&pos("0-1-10"), &pos("0-1-7"))),
        "0-1-8..0-1-10"
    );
    assert_eq!(
        show(&unapplied(&pos("0-1-10,1-1-2"), &pos("0-1-10"))),
        "1-1-1..1-1-2"
    );
    assert_eq!(show(&unapplied(&pos("0-2-10"), &pos("0-1-9"))), "0-2-10");
}

proptest! {
    /// Old primary: `shared` transactions of server 1 then `extra` of its own that never left
    /// it. New primary: replicated the `shared` ones, then wrote `own` as server 2. Exactly the
    /// `extra` ones are errant, whatever the sequence numbers of the new primary's writes.
    #[test]
    fn exactly_the_old_primarys_own_extra_transactions_are_errant(
        shared in 0u64..50, extra in 0u64..5, own in 0u64..10, domains in 1u32..3,
    ) {
        let mut old = MariaPos::new();
        let mut current = MariaPos::new();
        let mut slave = MariaPos::new();
        for d in 0..domains {
            if shared + extra > 0 {
                old.insert(MariaGtid::new(d, 1, shared + extra));
            }
            if shared > 0 {
                slave.insert(MariaGtid::new(d, 1, shared));
                current.insert(MariaGtid::new(d, 1, shared));
            }
            if own > 0 {
                current.insert(MariaGtid::new(d, 2, shared + own));
            }
        }
        let e = errant_transactions(&old, &current, &slave);
        if extra == 0 {
            prop_assert!(e.is_empty(), "{:?}", e);
        } else {
            prop_assert_eq!(e.len(), domains as usize);
            for d in 0..domains {
                for seq in 1..=shared + extra + 2 {
                    let g = MariaGtid::new(d, 1, seq);
                    let expect = seq > shared && seq <= shared + extra
                        || (shared == 0 && own == 0 && seq <= extra);
                    prop_assert_eq!(e.iter().any(|r| r.contains(g)), expect, "{} in {:?}", g, e);
                }
            }
        }
    }
}
