//! GTID positions and sets, for read-your-writes: "has this server applied everything this
//! session wrote?" is "does the server's executed GTIDs contain the session's last write?".
//!
//! Two flavours, because MariaDB and MySQL identify transactions differently:
//!
//! - MariaDB ([`MariaPos`]): a GTID is `domain-server-seq`. The sequence number counts per
//!   *replication domain*, not per server, so a position needs only one GTID per domain (the
//!   last one applied): `gtid_current_pos`, `gtid_slave_pos` and `gtid_binlog_pos` look like
//!   `0-1-12,1-2-5`. Containment compares sequence numbers per domain and ignores the server
//!   id: after a failover the new primary writes `0-2-M` in domain 0, continuing domain 0's
//!   sequence, so `0-2-M` contains the old primary's `0-1-N` for every `N <= M`.
//! - MySQL ([`MySqlGtidSet`]): a GTID is `uuid:n`, numbered per source server (and, since
//!   MySQL 8.4, per tag). Servers hold true *sets* with gaps (`uuid:1-5:7-9`), and
//!   containment is set inclusion.
//!
//! [`GtidSet`] holds either, for code that serves both; comparing across flavours is always
//! "not contained", which sends the read to the primary (the safe choice).
//!
//! Parsing never panics, runs in one pass over the input (plus a sort only when the input is
//! out of order, which servers never print) and reports errors as [`GtidError`], naming the
//! offending text and its byte offset.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Which server family a GTID text or value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavour {
    /// `domain-server-seq` positions.
    MariaDb,
    /// `uuid[:tag]:interval` sets.
    MySql,
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavour::MariaDb => "MariaDB",
            Flavour::MySql => "MySQL",
        })
    }
}

/// What was wrong with a GTID text (or operation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GtidErrorKind {
    /// The text does not follow the grammar; the string says what was expected.
    Syntax(&'static str),
    /// A number does not fit its field (u32 domain or server id, u64 MariaDB sequence number,
    /// MySQL transaction numbers up to `i64::MAX`).
    NumberTooLarge,
    /// A MariaDB position names the same domain twice. Server variables never do; a list that
    /// needs combining should go through [`MariaPos::merge_max`].
    DuplicateDomain(u32),
    /// Not a UUID in the 8-4-4-4-12 hexadecimal form MySQL prints.
    InvalidUuid,
    /// Not a MySQL 8.4 GTID tag: 1 to 32 characters, `[A-Za-z_][A-Za-z0-9_]*`.
    InvalidTag,
    /// MySQL transaction numbers start at 1.
    ZeroTransactionNumber,
    /// A MySQL interval `a-b` with `b < a`. (MySQL silently reads it as empty; a proxy would
    /// rather hear about it.)
    ReversedInterval,
    /// A MySQL UUID or tag with no interval after it.
    MissingInterval,
    /// A MariaDB value and a MySQL value were combined.
    FlavourMismatch,
}

/// A GTID text that could not be parsed, or values of different flavours combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GtidError {
    flavour: Flavour,
    kind: GtidErrorKind,
    offset: usize,
    fragment: String,
}

/// Longest fragment of the input quoted in an error (inputs can be arbitrary and large).
const MAX_FRAGMENT: usize = 64;

impl GtidError {
    /// An error at byte `start` of `input`, quoting the token that starts there (up to the next
    /// `,`, `:` or whitespace, at most [`MAX_FRAGMENT`] bytes).
    fn at(flavour: Flavour, kind: GtidErrorKind, input: &str, start: usize) -> Self {
        let bytes = input.as_bytes();
        let mut start = start.min(bytes.len());
        while !input.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = start;
        while end < bytes.len()
            && end - start < MAX_FRAGMENT
            && !matches!(bytes[end], b',' | b':')
            && !bytes[end].is_ascii_whitespace()
        {
            end += 1;
        }
        while !input.is_char_boundary(end) {
            end -= 1;
        }
        let fragment = input.get(start..end).unwrap_or("").to_owned();
        GtidError {
            flavour,
            kind,
            offset: start,
            fragment,
        }
    }

    /// Which flavour of text was being parsed.
    pub fn flavour(&self) -> Flavour {
        self.flavour
    }

    /// What was wrong.
    pub fn kind(&self) -> GtidErrorKind {
        self.kind
    }

    /// Byte offset of the offending text in the input.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The offending text (truncated to 64 bytes; empty at the end of the input).
    pub fn fragment(&self) -> &str {
        &self.fragment
    }
}

impl fmt::Display for GtidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.flavour {
            Flavour::MariaDb => "invalid MariaDB GTID position",
            Flavour::MySql => "invalid MySQL GTID set",
        };
        match self.kind {
            GtidErrorKind::FlavourMismatch => {
                let (this, that) = match self.flavour {
                    Flavour::MariaDb => (Flavour::MariaDb, Flavour::MySql),
                    Flavour::MySql => (Flavour::MySql, Flavour::MariaDb),
                };
                return write!(f, "cannot combine a {this} GTID value with a {that} one");
            }
            GtidErrorKind::Syntax(expected) => write!(f, "{what}: expected {expected}")?,
            GtidErrorKind::NumberTooLarge => write!(f, "{what}: number too large")?,
            GtidErrorKind::DuplicateDomain(d) => {
                write!(f, "{what}: domain {d} appears more than once")?
            }
            GtidErrorKind::InvalidUuid => {
                write!(f, "{what}: expected a UUID (8-4-4-4-12 hexadecimal digits)")?
            }
            GtidErrorKind::InvalidTag => write!(
                f,
                "{what}: invalid tag (1 to 32 characters, [A-Za-z_][A-Za-z0-9_]*)"
            )?,
            GtidErrorKind::ZeroTransactionNumber => {
                write!(f, "{what}: transaction number 0 (numbers start at 1)")?
            }
            GtidErrorKind::ReversedInterval => write!(f, "{what}: interval ends before it starts")?,
            GtidErrorKind::MissingInterval => {
                write!(f, "{what}: missing interval after UUID or tag")?
            }
        }
        if self.fragment.is_empty() {
            write!(f, " at end of input (byte {})", self.offset)
        } else {
            write!(f, " at byte {}: `{}`", self.offset, self.fragment)
        }
    }
}

impl std::error::Error for GtidError {}

/// Parses a non-empty run of ASCII digits at the start of `s` as a number `<= max`.
/// Returns the value and the number of bytes consumed; `Err(None)` when `s` does not start with
/// a digit, `Err(Some(NumberTooLarge))` on overflow. Leading zeros are accepted, as the servers
/// do; signs are not.
fn parse_digits(s: &[u8], max: u64) -> Result<(u64, usize), Option<GtidErrorKind>> {
    let mut value: u64 = 0;
    let mut len = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            break;
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .filter(|&v| v <= max)
            .ok_or(Some(GtidErrorKind::NumberTooLarge))?;
        len += 1;
    }
    if len == 0 {
        Err(None)
    } else {
        Ok((value, len))
    }
}

// ---------------------------------------------------------------------------------------------
// MariaDB
// ---------------------------------------------------------------------------------------------

/// One MariaDB GTID, `domain-server-seq`, e.g. `0-1-12` (the `last_gtid` a write reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MariaGtid {
    /// Replication domain: an independent stream of transactions with its own sequence.
    pub domain: u32,
    /// The server that originally wrote the transaction. Informational: ordering and
    /// containment go by `seq` within the domain (see [`MariaPos::contains`]).
    pub server: u32,
    /// Sequence number within the domain.
    pub seq: u64,
}

impl MariaGtid {
    /// A GTID from its three parts.
    pub const fn new(domain: u32, server: u32, seq: u64) -> Self {
        MariaGtid {
            domain,
            server,
            seq,
        }
    }

    /// Parses `domain-server-seq` (ASCII whitespace around it is ignored, as MariaDB does).
    pub fn parse(s: &str) -> Result<Self, GtidError> {
        let start = s.len() - s.trim_ascii_start().len();
        let end = s.trim_ascii_end().len().max(start);
        Self::parse_at(s, start, end)
    }

    /// Parses the GTID in `input[start..end]` (already trimmed); errors quote `input`.
    fn parse_at(input: &str, start: usize, end: usize) -> Result<Self, GtidError> {
        let bytes = input.as_bytes().get(start..end).unwrap_or(&[]);
        let err = |kind| GtidError::at(Flavour::MariaDb, kind, input, start);
        let syntax = || err(GtidErrorKind::Syntax("a GTID `domain-server-seq`"));
        let field = |s: &[u8], max: u64| match parse_digits(s, max) {
            Ok(v) => Ok(v),
            Err(Some(kind)) => Err(err(kind)),
            Err(None) => Err(syntax()),
        };
        let (domain, n1) = field(bytes, u64::from(u32::MAX))?;
        if bytes.get(n1) != Some(&b'-') {
            return Err(syntax());
        }
        let rest = &bytes[n1 + 1..];
        let (server, n2) = field(rest, u64::from(u32::MAX))?;
        if rest.get(n2) != Some(&b'-') {
            return Err(syntax());
        }
        let rest = &rest[n2 + 1..];
        let (seq, n3) = field(rest, u64::MAX)?;
        if n3 != rest.len() {
            return Err(syntax());
        }
        // The fields were bounded by u32::MAX above, so these conversions cannot fail.
        Ok(MariaGtid {
            domain: u32::try_from(domain).unwrap_or(u32::MAX),
            server: u32::try_from(server).unwrap_or(u32::MAX),
            seq,
        })
    }
}

impl fmt::Display for MariaGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

impl FromStr for MariaGtid {
    type Err = GtidError;
    fn from_str(s: &str) -> Result<Self, GtidError> {
        Self::parse(s)
    }
}

/// How many GTIDs a [`MariaPos`] stores without a heap allocation. Most clusters use one
/// domain; two covers a second domain (e.g. a multi-source replica) and keeps the type at
/// 40 bytes.
const INLINE: usize = 2;

/// Storage for a position's GTIDs, sorted by domain, one per domain: inline up to [`INLINE`]
/// entries so that cloning the common one-domain position never allocates.
#[derive(Clone)]
enum Gtids {
    Inline { len: u8, buf: [MariaGtid; INLINE] },
    Heap(Vec<MariaGtid>),
}

impl Gtids {
    const EMPTY: Gtids = Gtids::Inline {
        len: 0,
        buf: [MariaGtid::new(0, 0, 0); INLINE],
    };

    fn as_slice(&self) -> &[MariaGtid] {
        match self {
            Gtids::Inline { len, buf } => buf.get(..usize::from(*len)).unwrap_or(&[]),
            Gtids::Heap(v) => v,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [MariaGtid] {
        match self {
            Gtids::Inline { len, buf } => buf.get_mut(..usize::from(*len)).unwrap_or(&mut []),
            Gtids::Heap(v) => v,
        }
    }

    /// Inserts `g` at `idx` (`idx <= len`), spilling to the heap when the inline buffer is full.
    fn insert_at(&mut self, idx: usize, g: MariaGtid) {
        match self {
            Gtids::Inline { len, buf } if usize::from(*len) < INLINE => {
                let n = usize::from(*len);
                let idx = idx.min(n);
                buf.copy_within(idx..n, idx + 1);
                buf[idx] = g;
                *len += 1;
            }
            Gtids::Inline { .. } => {
                let mut v = Vec::with_capacity(INLINE * 2);
                v.extend_from_slice(self.as_slice());
                v.insert(idx.min(v.len()), g);
                *self = Gtids::Heap(v);
            }
            Gtids::Heap(v) => v.insert(idx.min(v.len()), g),
        }
    }

    fn push(&mut self, g: MariaGtid) {
        let n = self.as_slice().len();
        self.insert_at(n, g);
    }

    /// From a vector already sorted by domain without duplicates; moves short ones inline.
    fn from_sorted_vec(v: Vec<MariaGtid>) -> Self {
        if v.len() <= INLINE {
            let mut g = Gtids::EMPTY;
            for x in v {
                g.push(x);
            }
            g
        } else {
            Gtids::Heap(v)
        }
    }
}

/// A MariaDB GTID position: at most one GTID per domain, sorted by domain. Parsed from
/// `gtid_current_pos`, `gtid_slave_pos`, `gtid_binlog_pos` or `last_gtid`, e.g. `0-1-12,1-2-5`;
/// the empty string is the empty position.
///
/// Why one GTID per domain suffices: within a domain MariaDB applies transactions in sequence
/// order (and `gtid_strict_mode` refuses out-of-order sequence numbers), so "applied `d-s-n`"
/// implies "applied every earlier transaction of domain `d`".
///
/// Cost: up to two domains are stored inline, so [`Clone`] is a 40-byte copy with no
/// allocation; [`contains`](Self::contains) and equality are a linear walk over the (usually
/// one or two) domains.
#[derive(Clone)]
pub struct MariaPos {
    gtids: Gtids,
}

impl Default for MariaPos {
    fn default() -> Self {
        MariaPos::new()
    }
}

impl MariaPos {
    /// The empty position.
    pub const fn new() -> Self {
        MariaPos {
            gtids: Gtids::EMPTY,
        }
    }

    /// Parses a comma-separated GTID list, e.g. `0-1-12,1-2-5`. Whitespace around GTIDs is
    /// ignored; an empty (or all-whitespace) text is the empty position. Empty list elements
    /// (`0-1-1,,1-1-1`, trailing commas) and a domain named twice are errors, as MariaDB
    /// rejects them in `gtid_slave_pos`.
    /// The input's order does not matter; the position is kept sorted by domain.
    pub fn parse(s: &str) -> Result<Self, GtidError> {
        let mut gtids = Gtids::EMPTY;
        if s.trim_ascii().is_empty() {
            return Ok(MariaPos { gtids });
        }
        let mut sorted = true;
        let mut start = 0;
        loop {
            let end = s[start..].find(',').map_or(s.len(), |i| start + i);
            let piece = &s[start..end];
            let lead = piece.len() - piece.trim_ascii_start().len();
            let trail = piece.len() - piece.trim_ascii_end().len();
            let (a, b) = (start + lead, (end - trail).max(start + lead));
            if a == b {
                return Err(GtidError::at(
                    Flavour::MariaDb,
                    GtidErrorKind::Syntax("a GTID `domain-server-seq` between commas"),
                    s,
                    a,
                ));
            }
            let g = MariaGtid::parse_at(s, a, b)?;
            match gtids.as_slice().last() {
                Some(last) if last.domain == g.domain => {
                    return Err(GtidError::at(
                        Flavour::MariaDb,
                        GtidErrorKind::DuplicateDomain(g.domain),
                        s,
                        a,
                    ));
                }
                Some(last) if last.domain > g.domain => sorted = false,
                _ => {}
            }
            gtids.push(g);
            if end == s.len() {
                break;
            }
            start = end + 1;
        }
        if !sorted {
            let mut v = gtids.as_slice().to_vec();
            v.sort_unstable_by_key(|g| g.domain);
            if let Some(w) = v.windows(2).find(|w| w[0].domain == w[1].domain) {
                return Err(duplicate_domain_error(s, w[0].domain));
            }
            gtids = Gtids::from_sorted_vec(v);
        }
        Ok(MariaPos { gtids })
    }

    /// True when the position has no GTID.
    pub fn is_empty(&self) -> bool {
        self.gtids.as_slice().is_empty()
    }

    /// Number of domains.
    pub fn len(&self) -> usize {
        self.gtids.as_slice().len()
    }

    /// The GTIDs, sorted by domain.
    pub fn as_slice(&self) -> &[MariaGtid] {
        self.gtids.as_slice()
    }

    /// The GTIDs, sorted by domain.
    pub fn iter(&self) -> std::slice::Iter<'_, MariaGtid> {
        self.gtids.as_slice().iter()
    }

    /// The GTID recorded for `domain`.
    pub fn get(&self, domain: u32) -> Option<MariaGtid> {
        let s = self.gtids.as_slice();
        s.binary_search_by_key(&domain, |g| g.domain)
            .ok()
            .and_then(|i| s.get(i).copied())
    }

    /// The sequence number recorded for `domain`.
    pub fn seq(&self, domain: u32) -> Option<u64> {
        self.get(domain).map(|g| g.seq)
    }

    /// True when a server at this position has applied everything `other` names: for every
    /// domain of `other`, this position has the domain with a sequence number at least as
    /// high. The empty position is contained in every position.
    ///
    /// The server id is ignored: sequence numbers are per domain, so after a failover the new
    /// primary's `0-2-M` follows the old primary's `0-1-N` (`N <= M`) in the same history. With
    /// `gtid_strict_mode` MariaDB guarantees this order; without it, diverged histories can
    /// share sequence numbers and no position comparison can tell them apart.
    pub fn contains(&self, other: &MariaPos) -> bool {
        let mine = self.gtids.as_slice();
        let mut i = 0;
        for g in other.gtids.as_slice() {
            while mine.get(i).is_some_and(|m| m.domain < g.domain) {
                i += 1;
            }
            match mine.get(i) {
                Some(m) if m.domain == g.domain && m.seq >= g.seq => {}
                _ => return false,
            }
        }
        true
    }

    /// True when this position has reached `gtid` (its domain, with a sequence number at least
    /// `gtid.seq`); the server id is ignored, as in [`contains`](Self::contains).
    pub fn contains_gtid(&self, gtid: MariaGtid) -> bool {
        self.seq(gtid.domain).is_some_and(|s| s >= gtid.seq)
    }

    /// Records `gtid`: its domain moves forward to it if it is ahead of what the position
    /// holds (ties on sequence number go to the higher server id, so the result does not
    /// depend on the order of calls). Returns whether the position changed.
    pub fn insert(&mut self, gtid: MariaGtid) -> bool {
        let slice = self.gtids.as_mut_slice();
        match slice.binary_search_by_key(&gtid.domain, |g| g.domain) {
            Ok(i) => match slice.get_mut(i) {
                Some(cur) if ahead(&gtid, cur) => {
                    *cur = gtid;
                    true
                }
                _ => false,
            },
            Err(i) => {
                self.gtids.insert_at(i, gtid);
                true
            }
        }
    }

    /// Per-domain maximum of the two positions (by sequence number, ties to the higher server
    /// id): the result contains both. Commutative, associative and idempotent. Allocates only
    /// when `other` brings domains this position lacks and the result no longer fits inline.
    pub fn merge_max(&mut self, other: &MariaPos) {
        let theirs = other.gtids.as_slice();
        if theirs.is_empty() {
            return;
        }
        // Fast path: every domain of `other` is already here; update in place.
        let mine = self.gtids.as_mut_slice();
        let mut i = 0;
        let mut missing = false;
        for g in theirs {
            while mine.get(i).is_some_and(|m| m.domain < g.domain) {
                i += 1;
            }
            match mine.get_mut(i) {
                Some(m) if m.domain == g.domain => {
                    if ahead(g, m) {
                        *m = *g;
                    }
                }
                _ => missing = true,
            }
        }
        if !missing {
            return;
        }
        // Slow path: a sorted merge of the two lists (`self` is already updated for the
        // domains they share).
        let mine = self.gtids.as_slice();
        let mut out = Vec::with_capacity(mine.len() + theirs.len());
        let (mut a, mut b) = (mine.iter().peekable(), theirs.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => match x.domain.cmp(&y.domain) {
                    Ordering::Less => out.extend(a.next()),
                    Ordering::Greater => out.extend(b.next()),
                    Ordering::Equal => {
                        out.extend(a.next());
                        b.next();
                    }
                },
                (Some(_), None) => out.extend(a.next()),
                (None, Some(_)) => out.extend(b.next()),
                (None, None) => break,
            }
        }
        self.gtids = Gtids::from_sorted_vec(out);
    }
}

/// Whether `new` should replace `cur` for the same domain: higher sequence number, or the same
/// one from a higher server id (an arbitrary but order-independent tie-break).
fn ahead(new: &MariaGtid, cur: &MariaGtid) -> bool {
    (new.seq, new.server) > (cur.seq, cur.server)
}

/// The error for a domain named twice in an out-of-order list: finds the second occurrence to
/// quote it (error path only; one more pass over the input).
fn duplicate_domain_error(s: &str, domain: u32) -> GtidError {
    let mut seen = false;
    let mut start = 0;
    loop {
        let end = s[start..].find(',').map_or(s.len(), |i| start + i);
        let piece = &s[start..end];
        let lead = piece.len() - piece.trim_ascii_start().len();
        if MariaGtid::parse(piece).is_ok_and(|g| g.domain == domain) {
            if seen {
                return GtidError::at(
                    Flavour::MariaDb,
                    GtidErrorKind::DuplicateDomain(domain),
                    s,
                    start + lead,
                );
            }
            seen = true;
        }
        if end >= s.len() {
            return GtidError::at(
                Flavour::MariaDb,
                GtidErrorKind::DuplicateDomain(domain),
                s,
                0,
            );
        }
        start = end + 1;
    }
}

impl PartialEq for MariaPos {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for MariaPos {}

impl std::hash::Hash for MariaPos {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl fmt::Display for MariaPos {
    /// Canonical form: GTIDs sorted by domain, separated by `,` without spaces (what MariaDB
    /// prints, and what `MASTER_GTID_WAIT` accepts).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            fmt::Display::fmt(g, f)?;
        }
        Ok(())
    }
}

impl fmt::Debug for MariaPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MariaPos(\"{self}\")")
    }
}

impl FromStr for MariaPos {
    type Err = GtidError;
    fn from_str(s: &str) -> Result<Self, GtidError> {
        Self::parse(s)
    }
}

impl From<MariaGtid> for MariaPos {
    fn from(g: MariaGtid) -> Self {
        let mut p = MariaPos::new();
        p.gtids.push(g);
        p
    }
}

impl<'a> IntoIterator for &'a MariaPos {
    type Item = &'a MariaGtid;
    type IntoIter = std::slice::Iter<'a, MariaGtid>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

// ---------------------------------------------------------------------------------------------
// MySQL
// ---------------------------------------------------------------------------------------------

/// Largest MySQL transaction number: MySQL stores them as signed 64-bit integers.
pub const MYSQL_MAX_GNO: u64 = i64::MAX as u64;

/// A MySQL source UUID (`server_uuid`), 16 bytes. Parsed from the 8-4-4-4-12 hexadecimal form
/// in either case; displayed in lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MySqlUuid(pub [u8; 16]);

/// Length of a UUID's text form.
const UUID_LEN: usize = 36;

impl MySqlUuid {
    /// Parses `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX` (hex digits, either case).
    pub fn parse(s: &str) -> Result<Self, GtidError> {
        Self::from_text(s.as_bytes())
            .ok_or_else(|| GtidError::at(Flavour::MySql, GtidErrorKind::InvalidUuid, s, 0))
    }

    /// The UUID in exactly `b` (36 bytes), if valid.
    fn from_text(b: &[u8]) -> Option<Self> {
        if b.len() != UUID_LEN {
            return None;
        }
        let mut out = [0u8; 16];
        let mut n = 0;
        let mut hi: Option<u8> = None;
        for (i, &c) in b.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return None;
                }
                continue;
            }
            let v = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return None,
            };
            match hi.take() {
                None => hi = Some(v),
                Some(h) => {
                    *out.get_mut(n)? = (h << 4) | v;
                    n += 1;
                }
            }
        }
        Some(MySqlUuid(out))
    }
}

impl fmt::Display for MySqlUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; UUID_LEN];
        let mut j = 0;
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                buf[j] = b'-';
                j += 1;
            }
            buf[j] = HEX[usize::from(byte >> 4)];
            buf[j + 1] = HEX[usize::from(byte & 15)];
            j += 2;
        }
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl FromStr for MySqlUuid {
    type Err = GtidError;
    fn from_str(s: &str) -> Result<Self, GtidError> {
        Self::parse(s)
    }
}

/// Longest MySQL 8.4 GTID tag.
const TAG_LEN: usize = 32;

/// A MySQL 8.4 GTID tag (`uuid:tag:n`), or none (the empty tag, for classic GTIDs). Stored
/// lowercase (MySQL compares tags case-insensitively and prints them lowercase), zero-padded
/// inline so that it is `Copy` and orders like its text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MySqlTag([u8; TAG_LEN]);

impl MySqlTag {
    /// No tag: a classic `uuid:n` GTID.
    pub const NONE: MySqlTag = MySqlTag([0; TAG_LEN]);

    /// Parses a tag: 1 to 32 characters, a letter or `_` then letters, digits or `_`.
    pub fn parse(s: &str) -> Result<Self, GtidError> {
        Self::from_text(s.as_bytes())
            .ok_or_else(|| GtidError::at(Flavour::MySql, GtidErrorKind::InvalidTag, s, 0))
    }

    fn from_text(b: &[u8]) -> Option<Self> {
        let first = *b.first()?;
        if b.len() > TAG_LEN || !(first.is_ascii_alphabetic() || first == b'_') {
            return None;
        }
        let mut out = [0u8; TAG_LEN];
        for (slot, &c) in out.iter_mut().zip(b) {
            if !(c.is_ascii_alphanumeric() || c == b'_') {
                return None;
            }
            *slot = c.to_ascii_lowercase();
        }
        Some(MySqlTag(out))
    }

    /// True for [`MySqlTag::NONE`].
    pub fn is_none(&self) -> bool {
        self.0[0] == 0
    }

    /// The tag's text (empty for no tag).
    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(TAG_LEN);
        std::str::from_utf8(self.0.get(..len).unwrap_or(&[])).unwrap_or("")
    }
}

impl fmt::Display for MySqlTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for MySqlTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MySqlTag({:?})", self.as_str())
    }
}

/// A run of consecutive transaction numbers `start..=end` from one UUID (and tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MySqlGtidRange {
    pub uuid: MySqlUuid,
    pub tag: MySqlTag,
    /// First transaction number, `>= 1`.
    pub start: u64,
    /// Last transaction number, inclusive, `>= start` and `<=` [`MYSQL_MAX_GNO`].
    pub end: u64,
}

impl MySqlGtidRange {
    fn key_cmp(&self, other: &MySqlGtidRange) -> Ordering {
        (&self.uuid, &self.tag).cmp(&(&other.uuid, &other.tag))
    }
}

/// A MySQL GTID set, e.g. `3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7-9` (the form of
/// `gtid_executed`, `gtid_purged` and `WAIT_FOR_EXECUTED_GTID_SET`'s argument).
///
/// Stored as one flat vector of ranges sorted by (uuid, tag, start), each range maximal
/// (ranges of one uuid and tag neither overlap nor touch), so equal sets have equal
/// representations. [`Clone`] is one allocation and a copy; [`contains`](Self::contains) and
/// [`union_with`](Self::union_with) are one linear walk over both sets.
///
/// MySQL 8.4 tagged GTIDs are accepted: `uuid:tag:1-5`, `uuid:1-3:tag:1-5` (intervals after a
/// tag belong to that tag until the next tag). A tag and the same UUID untagged are distinct
/// GTID streams.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct MySqlGtidSet {
    ranges: Vec<MySqlGtidRange>,
}

impl MySqlGtidSet {
    /// The empty set.
    pub const fn new() -> Self {
        MySqlGtidSet { ranges: Vec::new() }
    }

    /// Parses a GTID set as MySQL prints or accepts it: entries `uuid:interval[:interval...]`
    /// separated by commas, intervals `n` or `a-b` (inclusive, from 1), tags (MySQL 8.4)
    /// before the intervals they apply to. Whitespace (including the newlines MySQL prints
    /// after commas) may surround any token, and empty entries are skipped, as MySQL does. An
    /// empty text is the empty set. Unlike MySQL, a reversed interval (`5-3`) is an error
    /// rather than an empty interval. Entries may come in any order and overlap; the result is
    /// canonical.
    pub fn parse(s: &str) -> Result<Self, GtidError> {
        let mut p = MySqlParser {
            input: s,
            bytes: s.as_bytes(),
            pos: 0,
        };
        let mut ranges = Vec::new();
        p.parse_set(&mut ranges)?;
        Ok(MySqlGtidSet {
            ranges: canonical(ranges),
        })
    }

    /// True when the set has no GTID.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The set's maximal ranges, sorted by (uuid, tag, start).
    pub fn ranges(&self) -> &[MySqlGtidRange] {
        &self.ranges
    }

    /// Number of GTIDs in the set (u128: a set can hold more than `u64::MAX`).
    pub fn count(&self) -> u128 {
        self.ranges
            .iter()
            .map(|r| u128::from(r.end - r.start) + 1)
            .sum()
    }

    /// True when every GTID of `other` is in this set (set inclusion).
    pub fn contains(&self, other: &MySqlGtidSet) -> bool {
        let mine = &self.ranges;
        let mut i = 0;
        for r in &other.ranges {
            // Skip our ranges that sort before `r` and cannot cover it. Both lists are sorted,
            // so `i` only moves forward: linear overall.
            loop {
                let Some(m) = mine.get(i) else {
                    return false;
                };
                match m.key_cmp(r) {
                    Ordering::Less => i += 1,
                    Ordering::Greater => return false,
                    Ordering::Equal if m.end < r.start => i += 1,
                    Ordering::Equal => break,
                }
            }
            // Our ranges are maximal, so only this one can cover `r`.
            match mine.get(i) {
                Some(m) if m.start <= r.start && r.end <= m.end => {}
                _ => return false,
            }
        }
        true
    }

    /// True when the set holds `uuid:gno` (untagged).
    pub fn contains_gtid(&self, uuid: MySqlUuid, gno: u64) -> bool {
        self.contains_tagged(uuid, MySqlTag::NONE, gno)
    }

    /// True when the set holds `uuid:tag:gno`.
    pub fn contains_tagged(&self, uuid: MySqlUuid, tag: MySqlTag, gno: u64) -> bool {
        let i = self
            .ranges
            .partition_point(|r| (r.uuid, r.tag, r.start) <= (uuid, tag, gno));
        i > 0
            && self
                .ranges
                .get(i - 1)
                .is_some_and(|r| r.uuid == uuid && r.tag == tag && r.end >= gno)
    }

    /// Adds `uuid:gno` (untagged). Returns whether the set changed; errors on `gno == 0` or
    /// `gno > MYSQL_MAX_GNO`, which no server produces.
    pub fn insert(&mut self, uuid: MySqlUuid, gno: u64) -> Result<bool, GtidError> {
        self.insert_tagged(uuid, MySqlTag::NONE, gno)
    }

    /// Adds `uuid:tag:gno`. Returns whether the set changed. O(log n) to find the place, plus
    /// a shift of the later ranges when a new range is needed.
    pub fn insert_tagged(
        &mut self,
        uuid: MySqlUuid,
        tag: MySqlTag,
        gno: u64,
    ) -> Result<bool, GtidError> {
        if gno == 0 || gno > MYSQL_MAX_GNO {
            let kind = if gno == 0 {
                GtidErrorKind::ZeroTransactionNumber
            } else {
                GtidErrorKind::NumberTooLarge
            };
            return Err(GtidError::at(
                Flavour::MySql,
                kind,
                &format!("{uuid}:{gno}"),
                37,
            ));
        }
        let same = |r: &MySqlGtidRange| r.uuid == uuid && r.tag == tag;
        // First range that starts after gno.
        let i = self
            .ranges
            .partition_point(|r| (r.uuid, r.tag, r.start) <= (uuid, tag, gno));
        let prev = i
            .checked_sub(1)
            .filter(|&p| self.ranges.get(p).is_some_and(same));
        let next_touches = self
            .ranges
            .get(i)
            .is_some_and(|r| same(r) && r.start == gno + 1);
        if let Some(p) = prev {
            let end = self.ranges[p].end;
            if end >= gno {
                return Ok(false);
            }
            if end + 1 == gno {
                if next_touches {
                    self.ranges[p].end = self.ranges[i].end;
                    self.ranges.remove(i);
                } else {
                    self.ranges[p].end = gno;
                }
                return Ok(true);
            }
        }
        if next_touches {
            self.ranges[i].start = gno;
        } else {
            self.ranges.insert(
                i,
                MySqlGtidRange {
                    uuid,
                    tag,
                    start: gno,
                    end: gno,
                },
            );
        }
        Ok(true)
    }

    /// Adds every GTID of `other` (set union, in place). Does not allocate when this set
    /// already contains `other`.
    pub fn union_with(&mut self, other: &MySqlGtidSet) {
        if other.ranges.is_empty() || self.contains(other) {
            return;
        }
        if self.ranges.is_empty() {
            self.ranges.clone_from(&other.ranges);
            return;
        }
        let mut out = Vec::with_capacity(self.ranges.len() + other.ranges.len());
        let (mut a, mut b) = (
            self.ranges.iter().peekable(),
            other.ranges.iter().peekable(),
        );
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => {
                    if x <= y {
                        out.extend(a.next());
                    } else {
                        out.extend(b.next());
                    }
                }
                (Some(_), None) => out.extend(a.next()),
                (None, Some(_)) => out.extend(b.next()),
                (None, None) => break,
            }
        }
        coalesce(&mut out);
        self.ranges = out;
    }

    /// The union of the two sets.
    pub fn union(&self, other: &MySqlGtidSet) -> MySqlGtidSet {
        let mut u = self.clone();
        u.union_with(other);
        u
    }
}

/// Sorts ranges by (uuid, tag, start) and merges overlapping or touching ranges of the same
/// uuid and tag. The sort is skipped (a linear check) when the input is already in order, as
/// server output is.
fn canonical(mut ranges: Vec<MySqlGtidRange>) -> Vec<MySqlGtidRange> {
    if !ranges.is_sorted() {
        ranges.sort_unstable();
    }
    coalesce(&mut ranges);
    ranges
}

/// Merges, in place, overlapping or touching ranges of the same uuid and tag in a sorted list.
fn coalesce(ranges: &mut Vec<MySqlGtidRange>) {
    // `dedup_by` passes (current, previous kept); returning true drops `current`.
    ranges.dedup_by(|cur, prev| {
        if prev.key_cmp(cur) == Ordering::Equal && cur.start <= prev.end.saturating_add(1) {
            prev.end = prev.end.max(cur.end);
            true
        } else {
            false
        }
    });
}

/// A one-pass cursor over a MySQL GTID set text.
struct MySqlParser<'a> {
    input: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl MySqlParser<'_> {
    fn err(&self, kind: GtidErrorKind, at: usize) -> GtidError {
        GtidError::at(Flavour::MySql, kind, self.input, at)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// `set := [entry] (',' [entry])*`, whitespace anywhere between tokens.
    fn parse_set(&mut self, out: &mut Vec<MySqlGtidRange>) -> Result<(), GtidError> {
        loop {
            self.skip_ws();
            match self.peek() {
                None => return Ok(()),
                Some(b',') => self.pos += 1,
                Some(_) => {
                    self.parse_entry(out)?;
                    self.skip_ws();
                    match self.peek() {
                        None => return Ok(()),
                        Some(b',') => self.pos += 1,
                        Some(_) => {
                            return Err(self.err(
                                GtidErrorKind::Syntax("`,` or `:` or the end of the set"),
                                self.pos,
                            ))
                        }
                    }
                }
            }
        }
    }

    /// `entry := uuid (':' (tag | interval))+` where every tag is followed by an interval.
    fn parse_entry(&mut self, out: &mut Vec<MySqlGtidRange>) -> Result<(), GtidError> {
        let uuid_at = self.pos;
        let uuid = self
            .bytes
            .get(uuid_at..uuid_at + UUID_LEN)
            .and_then(MySqlUuid::from_text)
            .ok_or_else(|| self.err(GtidErrorKind::InvalidUuid, uuid_at))?;
        self.pos += UUID_LEN;
        let mut tag = MySqlTag::NONE;
        // Start of a tag that has no interval yet; whether the entry has any interval.
        let mut pending: Option<usize> = None;
        let mut any = false;
        loop {
            self.skip_ws();
            if self.peek() != Some(b':') {
                break;
            }
            self.pos += 1;
            self.skip_ws();
            let at = self.pos;
            match self.peek() {
                Some(b) if b.is_ascii_digit() => {
                    let (start, end) = self.parse_interval()?;
                    out.push(MySqlGtidRange {
                        uuid,
                        tag,
                        start,
                        end,
                    });
                    pending = None;
                    any = true;
                }
                Some(b) if b.is_ascii_alphabetic() || b == b'_' => {
                    if let Some(p) = pending {
                        return Err(self.err(GtidErrorKind::MissingInterval, p));
                    }
                    let len = self.bytes[at..]
                        .iter()
                        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                        .count();
                    tag = MySqlTag::from_text(&self.bytes[at..at + len])
                        .ok_or_else(|| self.err(GtidErrorKind::InvalidTag, at))?;
                    self.pos += len;
                    pending = Some(at);
                }
                _ => {
                    return Err(self.err(
                        GtidErrorKind::Syntax("an interval (`n` or `a-b`) or a tag after `:`"),
                        at,
                    ))
                }
            }
        }
        match pending {
            Some(p) => Err(self.err(GtidErrorKind::MissingInterval, p)),
            None if !any => Err(self.err(GtidErrorKind::MissingInterval, uuid_at)),
            None => Ok(()),
        }
    }

    /// `interval := gno [ '-' gno ]`.
    fn parse_interval(&mut self) -> Result<(u64, u64), GtidError> {
        let at = self.pos;
        let start = self.parse_gno()?;
        self.skip_ws();
        if self.peek() != Some(b'-') {
            return Ok((start, start));
        }
        self.pos += 1;
        self.skip_ws();
        let end = self.parse_gno()?;
        if end < start {
            return Err(self.err(GtidErrorKind::ReversedInterval, at));
        }
        Ok((start, end))
    }

    fn parse_gno(&mut self) -> Result<u64, GtidError> {
        let at = self.pos;
        match parse_digits(&self.bytes[at..], MYSQL_MAX_GNO) {
            Ok((0, _)) => Err(self.err(GtidErrorKind::ZeroTransactionNumber, at)),
            Ok((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            Err(Some(kind)) => Err(self.err(kind, at)),
            Err(None) => Err(self.err(GtidErrorKind::Syntax("a transaction number"), at)),
        }
    }
}

impl fmt::Display for MySqlGtidSet {
    /// Canonical form: UUIDs lowercase and sorted; per UUID the untagged intervals, then each
    /// tag (sorted) with its intervals, as MySQL 8.4 prints them; entries separated by `,`
    /// (MySQL adds a newline after the comma; both parse the same).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut prev: Option<&MySqlGtidRange> = None;
        for r in &self.ranges {
            let same_uuid = prev.is_some_and(|p| p.uuid == r.uuid);
            if !same_uuid {
                if prev.is_some() {
                    f.write_str(",")?;
                }
                write!(f, "{}", r.uuid)?;
            }
            let same_tag = same_uuid && prev.is_some_and(|p| p.tag == r.tag);
            if !same_tag && !r.tag.is_none() {
                write!(f, ":{}", r.tag)?;
            }
            if r.start == r.end {
                write!(f, ":{}", r.start)?;
            } else {
                write!(f, ":{}-{}", r.start, r.end)?;
            }
            prev = Some(r);
        }
        Ok(())
    }
}

impl fmt::Debug for MySqlGtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MySqlGtidSet(\"{self}\")")
    }
}

impl FromStr for MySqlGtidSet {
    type Err = GtidError;
    fn from_str(s: &str) -> Result<Self, GtidError> {
        Self::parse(s)
    }
}

// ---------------------------------------------------------------------------------------------
// Either flavour
// ---------------------------------------------------------------------------------------------

/// A GTID position or set of either flavour. A cluster runs one flavour; values of different
/// flavours never contain each other, so a mix-up sends reads to the primary rather than to a
/// replica that may be behind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GtidSet {
    Maria(MariaPos),
    MySql(MySqlGtidSet),
}

impl GtidSet {
    /// Parses a MariaDB GTID list (see [`MariaPos::parse`]).
    pub fn parse_mariadb(s: &str) -> Result<Self, GtidError> {
        MariaPos::parse(s).map(GtidSet::Maria)
    }

    /// Parses a MySQL GTID set (see [`MySqlGtidSet::parse`]).
    pub fn parse_mysql(s: &str) -> Result<Self, GtidError> {
        MySqlGtidSet::parse(s).map(GtidSet::MySql)
    }

    /// Which flavour this is.
    pub fn flavour(&self) -> Flavour {
        match self {
            GtidSet::Maria(_) => Flavour::MariaDb,
            GtidSet::MySql(_) => Flavour::MySql,
        }
    }

    /// True when `self` has everything `other` has. Always false across flavours, even for
    /// empty values: a flavour mix-up is a configuration error, and "not contained" is the
    /// answer that keeps reads correct.
    pub fn contains(&self, other: &GtidSet) -> bool {
        match (self, other) {
            (GtidSet::Maria(a), GtidSet::Maria(b)) => a.contains(b),
            (GtidSet::MySql(a), GtidSet::MySql(b)) => a.contains(b),
            _ => false,
        }
    }

    /// Adds `other` into `self`: per-domain maximum for MariaDB ([`MariaPos::merge_max`]),
    /// union for MySQL. Across flavours `self` is left unchanged and a
    /// [`GtidErrorKind::FlavourMismatch`] error is returned.
    pub fn merge(&mut self, other: &GtidSet) -> Result<(), GtidError> {
        match (self, other) {
            (GtidSet::Maria(a), GtidSet::Maria(b)) => a.merge_max(b),
            (GtidSet::MySql(a), GtidSet::MySql(b)) => a.union_with(b),
            (this, _) => {
                return Err(GtidError {
                    flavour: this.flavour(),
                    kind: GtidErrorKind::FlavourMismatch,
                    offset: 0,
                    fragment: String::new(),
                })
            }
        }
        Ok(())
    }

    /// True when there is no GTID.
    pub fn is_empty(&self) -> bool {
        match self {
            GtidSet::Maria(p) => p.is_empty(),
            GtidSet::MySql(s) => s.is_empty(),
        }
    }
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GtidSet::Maria(p) => fmt::Display::fmt(p, f),
            GtidSet::MySql(s) => fmt::Display::fmt(s, f),
        }
    }
}

impl From<MariaPos> for GtidSet {
    fn from(p: MariaPos) -> Self {
        GtidSet::Maria(p)
    }
}

impl From<MySqlGtidSet> for GtidSet {
    fn from(s: MySqlGtidSet) -> Self {
        GtidSet::MySql(s)
    }
}

#[cfg(test)]
mod tests;
