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

const SLOTS: usize = 1024;
const MAX_LEN: usize = 24;

const fn fold(b: u8) -> u8 {
    b | 0x20
}

const fn hash(b: &[u8]) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < b.len() {
        h ^= fold(b[i]) as u32;
        h = h.wrapping_mul(0x0100_0193);
        i += 1;
    }
    (h ^ (h >> 15)) as usize
}

const fn build() -> [u16; SLOTS] {
    let mut t = [0u16; SLOTS];
    let mut i = 0;
    while i < LIST.len() {
        let s = LIST[i].0.as_bytes();
        assert!(s.len() <= MAX_LEN);
        let mut j = hash(s) & (SLOTS - 1);
        while t[j] != 0 {
            j = (j + 1) & (SLOTS - 1);
        }
        t[j] = (i + 1) as u16;
        i += 1;
    }
    t
}

static TABLE: [u16; SLOTS] = build();

/// Look up `word` (ASCII case-insensitive). Unknown words give [`Kw::None`].
#[inline]
pub(crate) fn kw(word: &str) -> Kw {
    let b = word.as_bytes();
    if b.len() < 2 || b.len() > MAX_LEN || !b[0].is_ascii_alphabetic() {
        return Kw::None;
    }
    let mut j = hash(b) & (SLOTS - 1);
    loop {
        let e = TABLE[j];
        if e == 0 {
            return Kw::None;
        }
        let (s, k) = LIST[e as usize - 1];
        if s.len() == b.len() && s.as_bytes().eq_ignore_ascii_case(b) {
            return k;
        }
        j = (j + 1) & (SLOTS - 1);
    }
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
