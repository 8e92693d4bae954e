use super::*;

fn maria(s: &str) -> MariaPos {
    MariaPos::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn mysql(s: &str) -> MySqlGtidSet {
    MySqlGtidSet::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

const U1: &str = "3E11FA47-71CA-11E1-9E33-C80AA9429562";
const U1_LOWER: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
const U2: &str = "5a6b7c8d-0000-4000-8000-00000000000a";

// ----- MariaDB: single GTIDs -----

#[test]
fn maria_gtid_from_last_gtid() {
    // The `last_gtid` an autocommit INSERT reported in a real OK packet (mariadb-facts.md).
    let g = MariaGtid::parse("0-1-12").unwrap();
    assert_eq!(g, MariaGtid::new(0, 1, 12));
    assert_eq!(g.to_string(), "0-1-12");
    assert_eq!(" 0-1-12 ".parse::<MariaGtid>().unwrap(), g);
    let max = MariaGtid::parse("4294967295-4294967295-18446744073709551615").unwrap();
    assert_eq!(max, MariaGtid::new(u32::MAX, u32::MAX, u64::MAX));
    assert_eq!(
        MariaGtid::parse("007-01-0012").unwrap(),
        MariaGtid::new(7, 1, 12)
    );
}

#[test]
fn maria_gtid_malformed() {
    for bad in [
        "", " ", "0", "0-1", "0-1-", "-1-12", "0--12", "0-1-12-3", "0-1-x", "a-b-c", "0-1-+12",
        "0-1--12", "0 -1-12", "0-1-1 2", "0,1,12", "0-1-12,", "٣-1-1",
    ] {
        let e = MariaGtid::parse(bad).expect_err(bad);
        assert_eq!(e.flavour(), Flavour::MariaDb, "{bad:?}");
    }
    let e = MariaGtid::parse("4294967296-1-1").unwrap_err();
    assert_eq!(e.kind(), GtidErrorKind::NumberTooLarge);
    let e = MariaGtid::parse("0-1-18446744073709551616").unwrap_err();
    assert_eq!(e.kind(), GtidErrorKind::NumberTooLarge);
    assert_eq!(e.fragment(), "0-1-18446744073709551616");
}

// ----- MariaDB: positions -----

#[test]
fn maria_pos_parse_and_display() {
    assert!(maria("").is_empty());
    assert!(maria("  \n").is_empty());
    assert_eq!(maria("").to_string(), "");
    let p = maria("0-1-12,1-2-5");
    assert_eq!(p.len(), 2);
    assert_eq!(p.seq(0), Some(12));
    assert_eq!(p.seq(1), Some(5));
    assert_eq!(p.seq(2), None);
    assert_eq!(p.get(1), Some(MariaGtid::new(1, 2, 5)));
    assert_eq!(p.to_string(), "0-1-12,1-2-5");
    // Any order and spacing in, canonical out.
    let q = maria(" 1-2-5 , 0-1-12 ");
    assert_eq!(q, p);
    assert_eq!(q.to_string(), "0-1-12,1-2-5");
    // More domains than fit inline.
    let r = maria("5-1-1,3-1-3,0-1-0,9-9-9,1-2-2");
    assert_eq!(r.to_string(), "0-1-0,1-2-2,3-1-3,5-1-1,9-9-9");
    assert_eq!(
        format!("{r:?}"),
        "MariaPos(\"0-1-0,1-2-2,3-1-3,5-1-1,9-9-9\")"
    );
}

#[test]
fn maria_pos_malformed() {
    let e = MariaPos::parse("0-1-12,,1-2-5").unwrap_err();
    assert!(matches!(e.kind(), GtidErrorKind::Syntax(_)), "{e}");
    assert_eq!(e.offset(), 7);
    let e = MariaPos::parse("0-1-12,").unwrap_err();
    assert_eq!(e.to_string(), "invalid MariaDB GTID position: expected a GTID `domain-server-seq` between commas at end of input (byte 7)");
    let e = MariaPos::parse("0-1-12,garbage").unwrap_err();
    assert_eq!(e.offset(), 7);
    assert_eq!(e.fragment(), "garbage");
    assert_eq!(
        e.to_string(),
        "invalid MariaDB GTID position: expected a GTID `domain-server-seq` at byte 7: `garbage`"
    );
    // Same domain twice: in order and out of order, the second occurrence is quoted.
    let e = MariaPos::parse("0-1-12,0-2-13").unwrap_err();
    assert_eq!(e.kind(), GtidErrorKind::DuplicateDomain(0));
    assert_eq!((e.offset(), e.fragment()), (7, "0-2-13"));
    let e = MariaPos::parse("1-1-1,0-1-12, 1-2-13").unwrap_err();
    assert_eq!(e.kind(), GtidErrorKind::DuplicateDomain(1));
    assert_eq!((e.offset(), e.fragment()), (14, "1-2-13"));
    assert!(
        e.to_string().contains("domain 1 appears more than once"),
        "{e}"
    );
    // A long fragment is truncated, and multi-byte text does not split a character.
    let long = format!("0-1-{}", "é".repeat(100));
    let e = MariaPos::parse(&long).unwrap_err();
    assert!(e.fragment().len() <= 64, "{}", e.fragment());
    assert!(e.fragment().starts_with("0-1-é"));
}

#[test]
fn maria_contains_same_server() {
    let p = maria("0-1-12");
    assert!(p.contains(&maria("0-1-12")));
    assert!(p.contains(&maria("0-1-11")));
    assert!(!p.contains(&maria("0-1-13")));
    assert!(
        p.contains(&MariaPos::new()),
        "the empty position is contained everywhere"
    );
    assert!(!MariaPos::new().contains(&p));
    assert!(p.contains_gtid(MariaGtid::new(0, 1, 12)));
    assert!(!p.contains_gtid(MariaGtid::new(0, 1, 13)));
    assert!(!p.contains_gtid(MariaGtid::new(1, 1, 1)));
}

#[test]
fn maria_contains_after_failover() {
    // mariadb-facts.md: after a failover the new primary keeps gtid_slave_pos = 0-1-N (the
    // old primary's last transaction it applied) while its gtid_current_pos becomes 0-2-M.
    // Both are in domain 0, whose sequence numbers continue across the failover (the new
    // primary's first write is 0-2-(N+1)), so 0-2-M means "applied domain 0 up to M": it
    // contains 0-1-N for every N <= M even though the server id differs. A session whose last
    // write was 0-1-N on the old primary may read on any server at 0-2-M.
    let n = 40;
    let m = 47;
    let new_primary = maria(&format!("0-2-{m}"));
    let old_write = maria(&format!("0-1-{n}"));
    assert!(new_primary.contains(&old_write));
    assert!(new_primary.contains(&maria("0-1-47")), "N == M");
    assert!(
        !new_primary.contains(&maria("0-1-48")),
        "N > M is not yet applied"
    );
    // A replica still at the old primary's last GTID has not seen the new primary's writes.
    assert!(!old_write.contains(&new_primary));
    assert!(old_write.contains(&maria("0-2-40")));
}

#[test]
fn maria_contains_multi_domain() {
    let p = maria("0-1-12,1-2-5");
    assert!(p.contains(&maria("0-1-12")));
    assert!(p.contains(&maria("1-9-5")));
    assert!(p.contains(&maria("0-1-3,1-2-5")));
    assert!(!p.contains(&maria("0-1-12,1-2-6")));
    assert!(
        !p.contains(&maria("2-1-1")),
        "an unknown domain is not reached"
    );
    assert!(!p.contains(&maria("0-1-1,2-1-1")));
    assert!(!maria("1-2-5").contains(&maria("0-1-1,1-2-5")));
}

#[test]
fn maria_insert_and_merge() {
    let mut p = MariaPos::new();
    assert!(p.insert(MariaGtid::new(0, 1, 12)));
    assert!(
        !p.insert(MariaGtid::new(0, 1, 11)),
        "older GTIDs do not move the position back"
    );
    assert!(!p.insert(MariaGtid::new(0, 1, 12)));
    assert!(p.insert(MariaGtid::new(0, 2, 13)));
    assert_eq!(p.to_string(), "0-2-13");
    assert!(p.insert(MariaGtid::new(5, 1, 1)));
    assert!(p.insert(MariaGtid::new(3, 1, 1)));
    assert!(p.insert(MariaGtid::new(1, 1, 1)));
    assert_eq!(p.to_string(), "0-2-13,1-1-1,3-1-1,5-1-1");

    let mut a = maria("0-1-12,2-1-7");
    a.merge_max(&maria("0-2-10,1-3-4,2-2-9"));
    assert_eq!(a.to_string(), "0-1-12,1-3-4,2-2-9");
    let mut b = maria("0-1-12");
    b.merge_max(&maria("0-1-13"));
    assert_eq!(b.to_string(), "0-1-13");
    b.merge_max(&MariaPos::new());
    assert_eq!(b.to_string(), "0-1-13");
    // Equal sequence numbers from different servers (possible only without strict mode):
    // the higher server id wins either way round.
    let (x, y) = (maria("0-1-5"), maria("0-2-5"));
    let (mut xy, mut yx) = (x.clone(), y.clone());
    xy.merge_max(&y);
    yx.merge_max(&x);
    assert_eq!(xy, yx);
    assert_eq!(xy.to_string(), "0-2-5");
}

#[test]
fn maria_equality_ignores_storage() {
    // Three domains spill to the heap; after parsing again with two they are inline. Equality
    // and hashing look at the GTIDs only.
    let mut heap = maria("0-1-1,1-1-1,2-1-1");
    let inline = maria("0-1-2,1-1-1");
    let mut from_heap = MariaPos::new();
    from_heap.merge_max(&inline);
    assert_eq!(from_heap, inline);
    heap.merge_max(&inline);
    assert_eq!(heap.to_string(), "0-1-2,1-1-1,2-1-1");
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};
    let h = |p: &MariaPos| {
        let mut s = DefaultHasher::new();
        p.hash(&mut s);
        s.finish()
    };
    let big = maria("0-1-1,1-1-1,2-1-1,3-1-1");
    let mut spilled = maria("0-1-1,1-1-1");
    spilled.insert(MariaGtid::new(2, 1, 1));
    spilled.insert(MariaGtid::new(3, 1, 1));
    assert_eq!(spilled, big);
    assert_eq!(h(&spilled), h(&big));
    assert_eq!(std::mem::size_of::<MariaPos>(), 40);
}

// ----- MySQL -----

#[test]
fn mysql_parse_and_display() {
    let s = mysql(&format!("{U1}:1-5:7-9, {U2}:1"));
    assert_eq!(s.to_string(), format!("{U1_LOWER}:1-5:7-9,{U2}:1"));
    assert_eq!(s.count(), 9);
    // As `SELECT @@gtid_executed` prints it: newline after the comma.
    let printed = format!("{U2}:1-3,\n{U1}:1-100");
    assert_eq!(
        mysql(&printed).to_string(),
        format!("{U1_LOWER}:1-100,{U2}:1-3")
    );
    // Overlapping, touching, unordered and repeated intervals merge.
    let s = mysql(&format!("{U1}:7-9:1-3:4:2, {U1_LOWER}:10-12:20"));
    assert_eq!(s.to_string(), format!("{U1_LOWER}:1-4:7-12:20"));
    // Whitespace between tokens and empty entries, as MySQL accepts them.
    let s = mysql(&format!(" ,{U1} : 1 - 3 : 5 ,, "));
    assert_eq!(s.to_string(), format!("{U1_LOWER}:1-3:5"));
    assert!(mysql("").is_empty());
    assert!(mysql(" \n ,, ").is_empty());
    let big = format!("{U1}:1-9223372036854775807");
    assert_eq!(mysql(&big).count(), 9_223_372_036_854_775_807);
}

#[test]
fn mysql_tagged() {
    // Intervals after a tag belong to it up to the next tag; untagged intervals come first,
    // or in an entry of their own. Tags are case-insensitive.
    let s = mysql(&format!("{U1}:Batch:5-6:BATCH:1-2, {U1}:1-3:alpha:9"));
    assert_eq!(
        s.to_string(),
        format!("{U1_LOWER}:1-3:alpha:9:batch:1-2:5-6")
    );
    let tag = MySqlTag::parse("batch").unwrap();
    let uuid = MySqlUuid::parse(U1).unwrap();
    assert!(s.contains_tagged(uuid, tag, 6));
    assert!(!s.contains_tagged(uuid, tag, 3));
    assert!(s.contains_gtid(uuid, 3));
    assert!(
        !s.contains_gtid(uuid, 5),
        "tagged and untagged GTIDs are distinct"
    );
    assert!(mysql(&format!("{U1}:batch:1"))
        .to_string()
        .ends_with(":batch:1"));
    assert_eq!(mysql(&s.to_string()), s);
    let max_tag = "t".repeat(32);
    assert!(MySqlGtidSet::parse(&format!("{U1}:{max_tag}:1")).is_ok());
}

#[test]
fn mysql_malformed() {
    let cases: &[(String, GtidErrorKind, &str)] = &[
        ("garbage".into(), GtidErrorKind::InvalidUuid, "garbage"),
        (U1.to_string(), GtidErrorKind::MissingInterval, U1),
        (
            format!("{U1}:"),
            GtidErrorKind::Syntax("an interval (`n` or `a-b`) or a tag after `:`"),
            "",
        ),
        (format!("{U1}:0"), GtidErrorKind::ZeroTransactionNumber, "0"),
        (
            format!("{U1}:0-5"),
            GtidErrorKind::ZeroTransactionNumber,
            "0-5",
        ),
        (format!("{U1}:5-3"), GtidErrorKind::ReversedInterval, "5-3"),
        (
            format!("{U1}:1-"),
            GtidErrorKind::Syntax("a transaction number"),
            "",
        ),
        (
            format!("{U1}:9223372036854775808"),
            GtidErrorKind::NumberTooLarge,
            "9223372036854775808",
        ),
        (
            format!("{U1}:1 2"),
            GtidErrorKind::Syntax("`,` or `:` or the end of the set"),
            "2",
        ),
        (format!("{U1}:tag"), GtidErrorKind::MissingInterval, "tag"),
        (
            format!("{U1}:tag:other:1"),
            GtidErrorKind::MissingInterval,
            "tag",
        ),
        (
            format!("{U1}:{}:1", "t".repeat(33)),
            GtidErrorKind::InvalidTag,
            "",
        ),
        (
            format!("{U1}:-1"),
            GtidErrorKind::Syntax("an interval (`n` or `a-b`) or a tag after `:`"),
            "-1",
        ),
        (
            "3E11FA47-71CA-11E1-9E33-C80AA942956:1".into(),
            GtidErrorKind::InvalidUuid,
            "",
        ),
        (
            "3E11FA4771CA11E19E33C80AA9429562:1".into(),
            GtidErrorKind::InvalidUuid,
            "",
        ),
        (
            "3E11FA47-71CA-11E1-9E33-C80AA942956G:1".into(),
            GtidErrorKind::InvalidUuid,
            "",
        ),
        (
            format!("{U1}:1;{U2}:1"),
            GtidErrorKind::Syntax("`,` or `:` or the end of the set"),
            "",
        ),
    ];
    for (text, kind, fragment) in cases {
        let e = MySqlGtidSet::parse(text).expect_err(text);
        assert_eq!(e.kind(), *kind, "{text:?}: {e}");
        assert_eq!(e.flavour(), Flavour::MySql);
        if !fragment.is_empty() {
            assert_eq!(e.fragment(), *fragment, "{text:?}: {e}");
        }
        let msg = e.to_string();
        assert!(msg.starts_with("invalid MySQL GTID set: "), "{msg}");
    }
    let e = MySqlGtidSet::parse(&format!("{U1}:1-5:9-7")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid MySQL GTID set: interval ends before it starts at byte 41: `9-7`"
    );
}

#[test]
fn mysql_contains() {
    let s = mysql(&format!("{U1}:1-5:7-9,{U2}:1"));
    assert!(s.contains(&s));
    assert!(s.contains(&MySqlGtidSet::new()));
    assert!(s.contains(&mysql(&format!("{U1}:2-4:8"))));
    assert!(s.contains(&mysql(&format!("{U2}:1,{U1}:9"))));
    assert!(!s.contains(&mysql(&format!("{U1}:6"))), "a gap");
    assert!(!s.contains(&mysql(&format!("{U1}:5-7"))), "across a gap");
    assert!(!s.contains(&mysql(&format!("{U2}:1-2"))));
    assert!(!s.contains(&mysql("00000000-0000-0000-0000-000000000001:1")));
    assert!(!MySqlGtidSet::new().contains(&s));
    let uuid = MySqlUuid::parse(U1).unwrap();
    assert!(s.contains_gtid(uuid, 1) && s.contains_gtid(uuid, 9));
    assert!(!s.contains_gtid(uuid, 6) && !s.contains_gtid(uuid, 10));
}

#[test]
fn mysql_insert_and_union() {
    let u1 = MySqlUuid::parse(U1).unwrap();
    let u2 = MySqlUuid::parse(U2).unwrap();
    let mut s = MySqlGtidSet::new();
    assert!(s.insert(u1, 3).unwrap());
    assert!(s.insert(u1, 1).unwrap());
    assert!(!s.insert(u1, 3).unwrap());
    assert_eq!(s.to_string(), format!("{U1_LOWER}:1:3"));
    assert!(
        s.insert(u1, 2).unwrap(),
        "fills the gap and joins both sides"
    );
    assert_eq!(s.to_string(), format!("{U1_LOWER}:1-3"));
    assert!(s.insert(u1, 4).unwrap());
    assert!(s.insert(u1, 10).unwrap());
    assert!(s.insert(u1, 9).unwrap());
    assert!(s.insert(u2, 1).unwrap());
    assert_eq!(s.to_string(), format!("{U1_LOWER}:1-4:9-10,{U2}:1"));
    assert_eq!(
        s.insert(u1, 0).unwrap_err().kind(),
        GtidErrorKind::ZeroTransactionNumber
    );
    assert_eq!(
        s.insert(u1, u64::MAX).unwrap_err().kind(),
        GtidErrorKind::NumberTooLarge
    );
    assert_eq!(s, mysql(&s.to_string()));

    let a = mysql(&format!("{U1}:1-5:10"));
    let b = mysql(&format!("{U1}:6-9,{U2}:3"));
    let u = a.union(&b);
    assert_eq!(u.to_string(), format!("{U1_LOWER}:1-10,{U2}:3"));
    assert!(u.contains(&a) && u.contains(&b));
    assert_eq!(b.union(&a), u);
    let mut c = u.clone();
    c.union_with(&a);
    assert_eq!(c, u);
}

#[test]
fn uuid_and_tag() {
    let u = MySqlUuid::parse(U1).unwrap();
    assert_eq!(u.to_string(), U1_LOWER);
    assert_eq!(U1_LOWER.parse::<MySqlUuid>().unwrap(), u);
    assert!(MySqlUuid::parse("not-a-uuid").is_err());
    assert!(MySqlTag::parse("").is_err());
    assert!(MySqlTag::parse("1abc").is_err());
    assert!(MySqlTag::parse("a-b").is_err());
    assert_eq!(MySqlTag::parse("_Ab9").unwrap().as_str(), "_ab9");
    assert!(MySqlTag::NONE.is_none());
    assert_eq!(MySqlTag::NONE.as_str(), "");
}

// ----- Either flavour -----

#[test]
fn gtid_set_enum() {
    let m = GtidSet::parse_mariadb("0-1-12").unwrap();
    let m2 = GtidSet::parse_mariadb("0-2-20").unwrap();
    let y = GtidSet::parse_mysql(&format!("{U1}:1-5")).unwrap();
    assert_eq!(m.flavour(), Flavour::MariaDb);
    assert_eq!(y.flavour(), Flavour::MySql);
    assert!(m2.contains(&m));
    assert!(!m.contains(&m2));
    assert!(!m.contains(&y) && !y.contains(&m));
    let empty_mysql = GtidSet::parse_mysql("").unwrap();
    assert!(empty_mysql.is_empty());
    assert!(
        !m.contains(&empty_mysql),
        "never across flavours, even when empty"
    );

    let mut acc = GtidSet::parse_mariadb("").unwrap();
    acc.merge(&m).unwrap();
    acc.merge(&m2).unwrap();
    assert_eq!(acc.to_string(), "0-2-20");
    let e = acc.merge(&y).unwrap_err();
    assert_eq!(e.kind(), GtidErrorKind::FlavourMismatch);
    assert_eq!(
        e.to_string(),
        "cannot combine a MariaDB GTID value with a MySQL one"
    );
    assert_eq!(acc.to_string(), "0-2-20", "unchanged after a mismatch");

    let mut ys = y.clone();
    ys.merge(&GtidSet::parse_mysql(&format!("{U1}:6-7")).unwrap())
        .unwrap();
    assert_eq!(ys.to_string(), format!("{U1_LOWER}:1-7"));
    assert!(GtidSet::parse_mysql("0-1-12").is_err());
    assert!(GtidSet::parse_mariadb(U1).is_err());
}

#[test]
fn errors_are_std_errors() {
    fn takes(_: &dyn std::error::Error) {}
    let e = MariaPos::parse("x").unwrap_err();
    takes(&e);
    assert_eq!(
        e.to_string(),
        "invalid MariaDB GTID position: expected a GTID `domain-server-seq` at byte 0: `x`"
    );
}
