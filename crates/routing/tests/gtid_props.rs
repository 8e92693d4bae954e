//! Property tests of the GTID types: canonical round trips, containment laws, merges against
//! naive models, and total parsing (no panic, errors that point into the input).

use std::collections::{BTreeMap, BTreeSet};

use lagless_routing::gtid::{
    GtidSet, MariaGtid, MariaPos, MySqlGtidSet, MySqlTag, MySqlUuid, MYSQL_MAX_GNO,
};
use proptest::prelude::*;

// ----- MariaDB -----

/// Positions over a few domains (so that random pairs share domains) with small sequence
/// numbers (so that comparisons go both ways), occasionally with extreme values.
fn maria_gtid() -> impl Strategy<Value = MariaGtid> {
    prop_oneof![
        8 => (0u32..4, 0u32..3, 0u64..20).prop_map(|(d, s, n)| MariaGtid::new(d, s, n)),
        1 => (any::<u32>(), any::<u32>(), any::<u64>()).prop_map(|(d, s, n)| MariaGtid::new(d, s, n)),
    ]
}

fn maria_pos() -> impl Strategy<Value = MariaPos> {
    prop::collection::vec(maria_gtid(), 0..6).prop_map(|gs| {
        let mut p = MariaPos::new();
        for g in gs {
            p.insert(g);
        }
        p
    })
}

/// The naive model: domain -> (seq, server), merged by max.
fn maria_model(p: &MariaPos) -> BTreeMap<u32, (u64, u32)> {
    p.iter().map(|g| (g.domain, (g.seq, g.server))).collect()
}

fn maria_model_contains(a: &BTreeMap<u32, (u64, u32)>, b: &BTreeMap<u32, (u64, u32)>) -> bool {
    b.iter()
        .all(|(d, (seq, _))| a.get(d).is_some_and(|(s, _)| s >= seq))
}

fn merged(a: &MariaPos, b: &MariaPos) -> MariaPos {
    let mut m = a.clone();
    m.merge_max(b);
    m
}

proptest! {
    #[test]
    fn maria_display_round_trips(p in maria_pos()) {
        let text = p.to_string();
        prop_assert_eq!(MariaPos::parse(&text).unwrap(), p.clone());
        prop_assert!(text.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b','));
        for g in &p {
            prop_assert_eq!(MariaGtid::parse(&g.to_string()).unwrap(), *g);
        }
    }

    #[test]
    fn maria_parse_accepts_any_order(p in maria_pos(), seed in any::<u64>()) {
        let mut parts: Vec<String> = p.iter().map(|g| g.to_string()).collect();
        // A cheap deterministic shuffle.
        let len = parts.len();
        for i in (1..len).rev() {
            let j = (seed.wrapping_mul(i as u64 + 7) % (i as u64 + 1)) as usize;
            parts.swap(i, j);
        }
        prop_assert_eq!(MariaPos::parse(&parts.join(" , ")).unwrap(), p);
    }

    #[test]
    fn maria_contains_is_reflexive(p in maria_pos()) {
        prop_assert!(p.contains(&p));
        prop_assert!(p.contains(&MariaPos::new()));
    }

    #[test]
    fn maria_contains_is_transitive(a in maria_pos(), b in maria_pos(), c in maria_pos()) {
        // Random triples, plus a chain built to satisfy both premises.
        if a.contains(&b) && b.contains(&c) {
            prop_assert!(a.contains(&c));
        }
        let bc = merged(&b, &c);
        let abc = merged(&a, &bc);
        prop_assert!(abc.contains(&bc) && bc.contains(&c) && abc.contains(&c));
    }

    #[test]
    fn maria_contains_matches_model(a in maria_pos(), b in maria_pos()) {
        prop_assert_eq!(a.contains(&b), maria_model_contains(&maria_model(&a), &maria_model(&b)));
    }

    #[test]
    fn maria_merge_contains_both_and_matches_model(a in maria_pos(), b in maria_pos()) {
        let m = merged(&a, &b);
        prop_assert!(m.contains(&a) && m.contains(&b));
        prop_assert_eq!(&m, &merged(&b, &a), "commutative");
        prop_assert_eq!(&merged(&m, &a), &m, "idempotent");
        let mut model = maria_model(&a);
        for (d, v) in maria_model(&b) {
            let e = model.entry(d).or_insert(v);
            *e = (*e).max(v);
        }
        prop_assert_eq!(maria_model(&m), model);
        // Merging is inserting each GTID.
        let mut via_insert = a.clone();
        for g in &b {
            via_insert.insert(*g);
        }
        prop_assert_eq!(via_insert, m);
    }

    #[test]
    fn maria_contains_smaller_positions(a in maria_pos(), keep in any::<u8>(), lower in 0u64..5) {
        // Drop some domains and move others back: the result is contained, and contains `a`
        // only if nothing changed.
        let mut sub = MariaPos::new();
        for (i, g) in a.iter().enumerate() {
            if keep & (1 << (i % 8)) != 0 {
                sub.insert(MariaGtid::new(g.domain, g.server ^ 1, g.seq.saturating_sub(lower)));
            }
        }
        prop_assert!(a.contains(&sub));
        let same = sub.len() == a.len() && (lower == 0 || a.iter().all(|g| g.seq == 0));
        prop_assert_eq!(sub.contains(&a), same);
    }

    #[test]
    fn maria_seq_matches_model(p in maria_pos(), d in 0u32..5) {
        prop_assert_eq!(p.seq(d), maria_model(&p).get(&d).map(|(s, _)| *s));
    }
}

// ----- MySQL -----

const UUIDS: [&str; 3] = [
    "3e11fa47-71ca-11e1-9e33-c80aa9429562",
    "5a6b7c8d-0000-4000-8000-00000000000a",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
];
const TAGS: [&str; 3] = ["", "alpha", "b_2"];

fn uuid(i: usize) -> MySqlUuid {
    MySqlUuid::parse(UUIDS[i]).unwrap()
}

fn tag(i: usize) -> MySqlTag {
    if TAGS[i].is_empty() {
        MySqlTag::NONE
    } else {
        MySqlTag::parse(TAGS[i]).unwrap()
    }
}

type Model = BTreeSet<(usize, usize, u64)>;

/// A small set (3 uuids x 3 tags x numbers 1..=30) and its model as a set of GTIDs.
fn small_set() -> impl Strategy<Value = (MySqlGtidSet, Model)> {
    prop::collection::vec((0usize..3, 0usize..3, 1u64..=30, 0u64..5), 0..8).prop_map(|runs| {
        let mut s = MySqlGtidSet::new();
        let mut m = Model::new();
        for (u, t, start, len) in runs {
            for n in start..=(start + len).min(30) {
                s.insert_tagged(uuid(u), tag(t), n).unwrap();
                m.insert((u, t, n));
            }
        }
        (s, m)
    })
}

/// Sets with intervals anywhere in the valid range, built from text.
fn wide_set() -> impl Strategy<Value = MySqlGtidSet> {
    let gno = prop_oneof![
        1u64..100,
        (MYSQL_MAX_GNO - 100)..=MYSQL_MAX_GNO,
        1u64..=MYSQL_MAX_GNO
    ];
    prop::collection::vec((0usize..3, 0usize..3, gno.clone(), gno), 0..6).prop_map(|runs| {
        let text: Vec<String> = runs
            .into_iter()
            .map(|(u, t, a, b)| {
                let (a, b) = (a.min(b), a.max(b));
                let tag = if TAGS[t].is_empty() {
                    String::new()
                } else {
                    format!(":{}", TAGS[t])
                };
                format!("{}{tag}:{a}-{b}", UUIDS[u].to_uppercase())
            })
            .collect();
        MySqlGtidSet::parse(&text.join(",\n")).unwrap()
    })
}

fn model_of(s: &MySqlGtidSet) -> Model {
    let mut m = Model::new();
    for r in s.ranges() {
        let u = UUIDS.iter().position(|x| *x == r.uuid.to_string()).unwrap();
        let t = TAGS.iter().position(|x| *x == r.tag.as_str()).unwrap();
        for n in r.start..=r.end {
            m.insert((u, t, n));
        }
    }
    m
}

proptest! {
    #[test]
    fn mysql_display_round_trips(s in wide_set()) {
        let text = s.to_string();
        prop_assert_eq!(MySqlGtidSet::parse(&text).unwrap(), s.clone());
        // Lowercase, and only characters that are safe inside an SQL string literal.
        prop_assert!(text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-:,_".contains(&b)));
        // Canonical: maximal ranges, so re-inserting them changes nothing.
        let mut again = MySqlGtidSet::new();
        for r in s.ranges() {
            prop_assert!(r.start >= 1 && r.start <= r.end && r.end <= MYSQL_MAX_GNO);
            again.union_with(&MySqlGtidSet::parse(&format!(
                "{}{}{}:{}-{}",
                r.uuid,
                if r.tag.is_none() { "" } else { ":" },
                r.tag,
                r.start,
                r.end
            )).unwrap());
        }
        prop_assert_eq!(again, s);
    }

    #[test]
    fn mysql_small_round_trips((s, m) in small_set()) {
        prop_assert_eq!(MySqlGtidSet::parse(&s.to_string()).unwrap(), s.clone());
        prop_assert_eq!(model_of(&s), m.clone());
        prop_assert_eq!(s.count(), m.len() as u128);
    }

    #[test]
    fn mysql_contains_matches_model((a, ma) in small_set(), (b, mb) in small_set()) {
        prop_assert_eq!(a.contains(&b), mb.is_subset(&ma));
        prop_assert_eq!(b.contains(&a), ma.is_subset(&mb));
        for &(u, t, n) in mb.iter().take(20) {
            prop_assert_eq!(a.contains_tagged(uuid(u), tag(t), n), ma.contains(&(u, t, n)));
        }
    }

    #[test]
    fn mysql_contains_subsets((a, ma) in small_set(), keep in any::<u32>()) {
        // Any subset of `a` (here: every GTID whose index bit is set) is contained in `a`.
        let mut sub = MySqlGtidSet::new();
        let mut msub = Model::new();
        for (i, &(u, t, n)) in ma.iter().enumerate() {
            if keep & (1 << (i % 32)) != 0 {
                sub.insert_tagged(uuid(u), tag(t), n).unwrap();
                msub.insert((u, t, n));
            }
        }
        prop_assert!(a.contains(&sub));
        prop_assert_eq!(sub.contains(&a), msub == ma);
        prop_assert_eq!(model_of(&sub), msub);
    }

    #[test]
    fn mysql_contains_laws((a, _) in small_set(), (b, _) in small_set(), (c, _) in small_set()) {
        prop_assert!(a.contains(&a));
        prop_assert!(a.contains(&MySqlGtidSet::new()));
        if a.contains(&b) && b.contains(&c) {
            prop_assert!(a.contains(&c));
        }
        let bc = b.union(&c);
        let abc = a.union(&bc);
        prop_assert!(abc.contains(&bc) && bc.contains(&c) && abc.contains(&c));
    }

    #[test]
    fn mysql_union_matches_model((a, ma) in small_set(), (b, mb) in small_set()) {
        let u = a.union(&b);
        prop_assert!(u.contains(&a) && u.contains(&b));
        prop_assert_eq!(&u, &b.union(&a));
        let want: Model = ma.union(&mb).copied().collect();
        prop_assert_eq!(model_of(&u), want);
    }

    #[test]
    fn mysql_wide_union_contains_both(a in wide_set(), b in wide_set()) {
        let u = a.union(&b);
        prop_assert!(u.contains(&a) && u.contains(&b));
        prop_assert_eq!(&u, &b.union(&a));
        prop_assert_eq!(MySqlGtidSet::parse(&u.to_string()).unwrap(), u);
    }

    #[test]
    fn gtid_set_merge_contains_both(a in maria_pos(), b in maria_pos(), (c, _) in small_set(), (d, _) in small_set()) {
        let (a, b) = (GtidSet::Maria(a), GtidSet::Maria(b));
        let mut m = a.clone();
        m.merge(&b).unwrap();
        prop_assert!(m.contains(&a) && m.contains(&b));
        let (c, d) = (GtidSet::MySql(c), GtidSet::MySql(d));
        let mut n = c.clone();
        n.merge(&d).unwrap();
        prop_assert!(n.contains(&c) && n.contains(&d));
        prop_assert!(!m.contains(&n) && !n.contains(&m));
        prop_assert!(m.clone().merge(&n).is_err());
    }
}

// ----- Total parsing -----

/// Text close to valid GTID syntax, so that parsers get past their first checks.
fn gtidish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9,\\- ]{0,40}",
        "[0-9a-fA-F:,\\-_ \n]{0,120}",
        (wide_set(), 0usize..200, "[^a]{0,3}").prop_map(|(s, at, junk)| {
            let mut t = s.to_string();
            let at = at.min(t.len());
            t.insert_str(at, &junk);
            t
        }),
        (maria_pos(), 0usize..60, "[^a]{0,3}").prop_map(|(p, at, junk)| {
            let mut t = p.to_string();
            let at = at.min(t.len());
            t.insert_str(at, &junk);
            t
        }),
    ]
}

fn check_total(s: &str) -> Result<(), TestCaseError> {
    match MariaPos::parse(s) {
        Ok(p) => prop_assert_eq!(MariaPos::parse(&p.to_string()).unwrap(), p),
        Err(e) => {
            prop_assert!(s
                .get(e.offset()..)
                .is_some_and(|rest| rest.starts_with(e.fragment())));
            prop_assert!(!e.to_string().is_empty());
        }
    }
    match MySqlGtidSet::parse(s) {
        Ok(g) => prop_assert_eq!(MySqlGtidSet::parse(&g.to_string()).unwrap(), g),
        Err(e) => {
            prop_assert!(s
                .get(e.offset()..)
                .is_some_and(|rest| rest.starts_with(e.fragment())));
            prop_assert!(e.fragment().len() <= 64);
        }
    }
    let _ = MariaGtid::parse(s);
    let _ = MySqlUuid::parse(s);
    let _ = MySqlTag::parse(s);
    let _ = GtidSet::parse_mariadb(s);
    let _ = GtidSet::parse_mysql(s);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsing_never_panics(s in any::<String>()) {
        check_total(&s)?;
    }

    #[test]
    fn parsing_near_valid_text_never_panics(s in gtidish()) {
        check_total(&s)?;
    }
}

/// Parsing is one pass: inputs far too large for a quadratic parser go through quickly
/// (a quadratic one would take minutes here).
#[test]
fn large_inputs_parse_in_linear_time() {
    let n = 200_000u32;
    let maria: Vec<String> = (0..n).rev().map(|d| format!("{d}-1-{d}")).collect();
    let p = MariaPos::parse(&maria.join(",")).unwrap();
    assert_eq!(p.len(), n as usize);
    assert_eq!(p.seq(n - 1), Some(u64::from(n - 1)));

    let mut mysql = String::from("3e11fa47-71ca-11e1-9e33-c80aa9429562");
    for i in (1..=n as u64).rev() {
        mysql.push_str(&format!(":{}", 2 * i));
    }
    let s = MySqlGtidSet::parse(&mysql).unwrap();
    assert_eq!(s.ranges().len(), n as usize);
    assert!(s.contains(&s.clone()));
    let mut whole = s.clone();
    whole.union_with(
        &MySqlGtidSet::parse(&format!("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-{}", 2 * n)).unwrap(),
    );
    assert_eq!(whole.ranges().len(), 1);

    let junk = ",".repeat(1_000_000) + &" ".repeat(1_000_000);
    assert!(MySqlGtidSet::parse(&junk).unwrap().is_empty());
    assert!(MariaPos::parse(&junk).is_err());
}
