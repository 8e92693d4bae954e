//! Case-insensitive keyword lookup through a compile-time hash table (no allocation).

macro_rules! keywords {
    ($($name:ident = $text:literal,)*) => {
        /// Keywords (and function names) the classifier cares about.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Kw {
            /// Not a keyword we know.
            None,
            $($name,)*
        }

        const LIST: &[(&str, Kw)] = &[$(($text, Kw::$name),)*];
    };
}

keywords! {
    // statement starters
    Select = "SELECT", With = "WITH", Table = "TABLE", Values = "VALUES", Insert = "INSERT",
    Replace = "REPLACE", Update = "UPDATE", Delete = "DELETE", Load = "LOAD", Create = "CREATE",
    Alter = "ALTER", Drop = "DROP", Truncate = "TRUNCATE", Rename = "RENAME", Grant = "GRANT",
    Revoke = "REVOKE", Analyze = "ANALYZE", Optimize = "OPTIMIZE", Repair = "REPAIR",
    Check = "CHECK", Checksum = "CHECKSUM", Flush = "FLUSH", Reset = "RESET", Purge = "PURGE",
    Install = "INSTALL", Uninstall = "UNINSTALL", Kill = "KILL", Change = "CHANGE",
    Start = "START", Stop = "STOP", Cache = "CACHE", Import = "IMPORT", Shutdown = "SHUTDOWN",
    Restart = "RESTART", Clone = "CLONE", Binlog = "BINLOG", Backup = "BACKUP", Set = "SET",
    Use = "USE", Prepare = "PREPARE", Execute = "EXECUTE", Deallocate = "DEALLOCATE",
    Lock = "LOCK", Unlock = "UNLOCK", Handler = "HANDLER", Call = "CALL", Begin = "BEGIN",
    Commit = "COMMIT", Rollback = "ROLLBACK", Savepoint = "SAVEPOINT", Release = "RELEASE",
    Xa = "XA", Show = "SHOW", Describe = "DESCRIBE", Desc = "DESC", Explain = "EXPLAIN",
    Help = "HELP", Do = "DO", Get = "GET",
    // transaction / SET vocabulary
    Work = "WORK", Not = "NOT", Atomic = "ATOMIC", Transaction = "TRANSACTION", Read = "READ",
    Only = "ONLY", Write = "WRITE", Consistent = "CONSISTENT", Snapshot = "SNAPSHOT", And = "AND",
    No = "NO", Chain = "CHAIN", To = "TO", Statement = "STATEMENT", For = "FOR", Global = "GLOBAL",
    Session = "SESSION", Local = "LOCAL", Persist = "PERSIST", PersistOnly = "PERSIST_ONLY",
    Names = "NAMES", Character = "CHARACTER", Charset = "CHARSET", Password = "PASSWORD",
    Default = "DEFAULT", Role = "ROLE", Resource = "RESOURCE", On = "ON", Off = "OFF",
    True = "TRUE", False = "FALSE", Temporary = "TEMPORARY", Or = "OR", Tables = "TABLES",
    Format = "FORMAT", Extended = "EXTENDED", Partitions = "PARTITIONS", Immediate = "IMMEDIATE",
    Warnings = "WARNINGS", Errors = "ERRORS", Count = "COUNT", Diagnostics = "DIAGNOSTICS",
    Current = "CURRENT", Stacked = "STACKED", NoWriteToBinlog = "NO_WRITE_TO_BINLOG",
    Recover = "RECOVER", End = "END",
    // body scan
    Share = "SHARE", In = "IN", Into = "INTO", Next = "NEXT", Previous = "PREVIOUS",
    Value = "VALUE", Key = "KEY", SqlCalcFoundRows = "SQL_CALC_FOUND_ROWS", Nextval = "NEXTVAL",
    Currval = "CURRVAL", Lastval = "LASTVAL",
    // primary-only functions (matched when followed by '(')
    GetLock = "GET_LOCK", ReleaseLock = "RELEASE_LOCK", ReleaseAllLocks = "RELEASE_ALL_LOCKS",
    IsUsedLock = "IS_USED_LOCK", IsFreeLock = "IS_FREE_LOCK", LastInsertId = "LAST_INSERT_ID",
    Setval = "SETVAL", FoundRows = "FOUND_ROWS", RowCount = "ROW_COUNT",
    ConnectionId = "CONNECTION_ID",
    // table extraction
    From = "FROM", Join = "JOIN", StraightJoin = "STRAIGHT_JOIN", Dual = "DUAL",
    LowPriority = "LOW_PRIORITY", Delayed = "DELAYED", HighPriority = "HIGH_PRIORITY",
    Ignore = "IGNORE", Quick = "QUICK", If = "IF", Exists = "EXISTS", Outfile = "OUTFILE",
    Dumpfile = "DUMPFILE", As = "AS", References = "REFERENCES", Columns = "COLUMNS",
    Fields = "FIELDS", Index = "INDEX", Indexes = "INDEXES", Keys = "KEYS", Lateral = "LATERAL",
    Where = "WHERE", Like = "LIKE", Using = "USING", Group = "GROUP", Order = "ORDER",
    Limit = "LIMIT", Having = "HAVING", Union = "UNION", Window = "WINDOW", Partition = "PARTITION",
    Status = "STATUS", Full = "FULL", Left = "LEFT", Right = "RIGHT", Inner = "INNER",
    Cross = "CROSS", Natural = "NATURAL", Outer = "OUTER", Force = "FORCE", Except = "EXCEPT",
    Intersect = "INTERSECT", Returning = "RETURNING", Procedure = "PROCEDURE",
}

const SLOTS: usize = 512;
const MAX_LEN: usize = 24;
const FOLD: u64 = 0x2020_2020_2020_2020;

/// Keywords the body scan of a statement needs (see `Cursor::drain`): everything
/// `Cursor::observe_kw` and the `(` check look at, plus the main-statement keywords
/// of `WITH`.
const BODY: &[Kw] = &[
    Kw::For,
    Kw::Update,
    Kw::Share,
    Kw::In,
    Kw::Lock,
    Kw::Value,
    Kw::Next,
    Kw::Previous,
    Kw::Into,
    Kw::SqlCalcFoundRows,
    Kw::Nextval,
    Kw::Currval,
    Kw::Lastval,
    Kw::Insert,
    Kw::Delete,
    Kw::Replace,
    Kw::Key,
    Kw::On,
    Kw::GetLock,
    Kw::ReleaseLock,
    Kw::ReleaseAllLocks,
    Kw::IsUsedLock,
    Kw::IsFreeLock,
    Kw::LastInsertId,
    Kw::Setval,
    Kw::FoundRows,
    Kw::RowCount,
    Kw::ConnectionId,
    Kw::Select,
    Kw::Table,
    Kw::Values,
];

/// A keyword packed as three little-endian u64 words, ASCII-case-folded with `| 0x20`
/// (safe here: keywords hold only letters and '_', and no other word byte folds onto those).
#[derive(Clone, Copy)]
struct Entry {
    w: [u64; 3],
    len: usize,
    kw: Kw,
}

/// An open-addressing hash table plus a one-bit-per-(length, first, last byte) filter
/// that rejects most identifiers without probing. Built at compile time.
struct Table {
    filter: [u64; 64],
    slots: [u8; SLOTS],
    entries: [Entry; N],
}

const fn pack(b: &[u8]) -> [u64; 3] {
    let mut w = [0u64; 3];
    let mut i = 0;
    while i < b.len() {
        w[i / 8] |= ((b[i] | 0x20) as u64) << ((i % 8) * 8);
        i += 1;
    }
    w
}

#[inline(always)]
const fn hash(w0: u64, len: usize) -> usize {
    ((w0 ^ len as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 55) as usize
}

#[inline(always)]
const fn filter_hash(len: usize, first: u8, last: u8) -> usize {
    (len * 0x35 + ((first | 0x20) as usize) * 0x1f + ((last | 0x20) as usize) * 0x7) & 4095
}

const N: usize = LIST.len();

const fn contains(set: &[Kw], k: Kw) -> bool {
    let mut i = 0;
    while i < set.len() {
        if set[i] as u8 == k as u8 {
            return true;
        }
        i += 1;
    }
    false
}

/// Build a table of the keywords of `LIST` that are in `only` (all if `only` is None).
const fn build(only: Option<&[Kw]>) -> Table {
    const { assert!(N < 255) };
    let mut t = Table {
        filter: [0; 64],
        slots: [0; SLOTS],
        entries: [Entry {
            w: [0; 3],
            len: 0,
            kw: Kw::None,
        }; N],
    };
    let mut i = 0;
    while i < N {
        let s = LIST[i].0.as_bytes();
        let k = LIST[i].1;
        assert!(s.len() <= MAX_LEN && s.len() >= 2);
        let wanted = match only {
            Some(set) => contains(set, k),
            None => true,
        };
        if wanted {
            let w = pack(s);
            t.entries[i] = Entry {
                w,
                len: s.len(),
                kw: k,
            };
            let h = filter_hash(s.len(), s[0], s[s.len() - 1]);
            t.filter[h / 64] |= 1 << (h % 64);
            let mut j = hash(w[0], s.len()) & (SLOTS - 1);
            while t.slots[j] != 0 {
                j = (j + 1) & (SLOTS - 1);
            }
            t.slots[j] = (i + 1) as u8;
        }
        i += 1;
    }
    t
}

static ALL: Table = build(None);
static BODY_TABLE: Table = build(Some(BODY));

/// Load `n` (1..=8) bytes of `src` at `at`, folded, zero-padded.
#[inline(always)]
fn load(src: &[u8], at: usize, n: usize) -> u64 {
    let raw = match src.get(at..at + 8) {
        Some(chunk) => u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])),
        None => load_tail(src, at, n),
    };
    (raw | FOLD) & (u64::MAX >> (64 - 8 * n))
}

#[cold]
#[inline(never)]
fn load_tail(src: &[u8], at: usize, n: usize) -> u64 {
    let mut v = 0u64;
    for (i, &b) in src[at..at + n].iter().enumerate() {
        v |= (b as u64) << (i * 8);
    }
    v
}

#[inline(always)]
fn lookup(t: &Table, src: &[u8], at: usize, len: usize) -> Kw {
    if !(2..=MAX_LEN).contains(&len) || at + len > src.len() {
        return Kw::None;
    }
    let h = filter_hash(len, src[at], src[at + len - 1]);
    if t.filter[h / 64] & (1 << (h % 64)) == 0 {
        return Kw::None;
    }
    let w0 = load(src, at, len.min(8));
    let mut j = hash(w0, len) & (SLOTS - 1);
    loop {
        let e = t.slots[j];
        if e == 0 {
            return Kw::None;
        }
        let ent = &t.entries[e as usize - 1];
        if ent.len == len
            && ent.w[0] == w0
            && (len <= 8 || ent.w[1] == load(src, at + 8, (len - 8).min(8)))
            && (len <= 16 || ent.w[2] == load(src, at + 16, len - 16))
        {
            return ent.kw;
        }
        j = (j + 1) & (SLOTS - 1);
    }
}

/// Look up the word `src[at..at + len]` (ASCII case-insensitive). Unknown words give
/// [`Kw::None`]. Reads up to 8 bytes past the word when the input has them.
#[inline]
pub(crate) fn kw_at(src: &[u8], at: usize, len: usize) -> Kw {
    lookup(&ALL, src, at, len)
}

/// Like [`kw_at`], but knows only the keywords of `BODY` (others give [`Kw::None`]).
#[inline]
pub(crate) fn body_kw_at(src: &[u8], at: usize, len: usize) -> Kw {
    lookup(&BODY_TABLE, src, at, len)
}

/// Look up `word` (ASCII case-insensitive). Unknown words give [`Kw::None`].
#[inline]
pub(crate) fn kw(word: &str) -> Kw {
    kw_at(word.as_bytes(), 0, word.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_keyword_is_found_in_any_case() {
        for &(s, k) in LIST {
            assert_eq!(kw(s), k, "{s}");
            assert_eq!(kw(&s.to_ascii_lowercase()), k, "{s}");
        }
        assert_eq!(kw("sbtest1"), Kw::None);
        assert_eq!(kw("x"), Kw::None);
        assert_eq!(kw("SELECTS"), Kw::None);
        assert_eq!(kw("sElEcT"), Kw::Select);
        assert_eq!(kw("SQL_CALC_FOUND_ROWS"), Kw::SqlCalcFoundRows);
        assert_eq!(kw("SQL_CALC_FOUND_ROWZ"), Kw::None);
        assert_eq!(kw("NO_WRITE_TO_BINLOH"), Kw::None);
        assert_eq!(kw("select_"), Kw::None);
        assert_eq!(kw("sélect"), Kw::None);
        assert_eq!(kw(""), Kw::None);
        // in context: reads past the word are masked off
        let src = b"xxSELECTED FROM";
        assert_eq!(kw_at(src, 2, 6), Kw::Select);
        assert_eq!(kw_at(src, 11, 4), Kw::From);
    }

    #[test]
    fn body_table() {
        for &(s, k) in LIST {
            let want = if BODY.contains(&k) { k } else { Kw::None };
            assert_eq!(body_kw_at(s.as_bytes(), 0, s.len()), want, "{s}");
        }
    }

    #[test]
    fn no_duplicates() {
        for (i, a) in LIST.iter().enumerate() {
            for b in &LIST[i + 1..] {
                assert_ne!(a.0, b.0);
            }
        }
    }
}
