//! The classification result types.

use core::fmt;

/// What a statement does, as far as routing is concerned.
///
/// # Restrictiveness
///
/// [`StatementClass::rank`] orders the classes from "anywhere" to "primary,
/// and the router must look closely"; multi-statement text takes the class of
/// its highest-ranked part (the last one on a tie, since later statements
/// override earlier session state):
///
/// | rank | class | where it can run |
/// |-----:|-------|------------------|
/// | 0 | [`Empty`](Self::Empty) | nothing to run |
/// | 1 | [`Meta`](Self::Meta) | a replica (except [`MetaKind::ShowDiagnostics`]: the backend that ran the previous statement) |
/// | 2 | [`Read`](Self::Read) | a replica |
/// | 3 | [`ReadPrimaryOnly`](Self::ReadPrimaryOnly) | the primary |
/// | 4 | [`LockingRead`](Self::LockingRead) | the primary |
/// | 5 | [`Write`](Self::Write) | the primary |
/// | 6 | [`Call`](Self::Call) | the primary; may change session or transaction state |
/// | 7 | [`SessionState`](Self::SessionState) | the primary; the router tracks/replays the state |
/// | 8 | [`Transaction`](Self::Transaction) | the primary; the router tracks the transaction |
/// | 9 | [`Unknown`](Self::Unknown) | the primary (fail safe) |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatementClass<'a> {
    /// Only comments and whitespace (or nothing).
    Empty,
    /// A plain read (`SELECT`, `TABLE`, `VALUES`, `WITH ... SELECT`).
    Read,
    /// A read with side effects or that depends on primary-only state:
    /// `SELECT ... INTO`, `@a :=`, `GET_LOCK()` & co, `LAST_INSERT_ID()`, sequences,
    /// `FOUND_ROWS()`/`SQL_CALC_FOUND_ROWS`, `ROW_COUNT()`, `CONNECTION_ID()`,
    /// `@@identity`/`@@last_insert_id`; also `DO` with any of those.
    ReadPrimaryOnly,
    /// `SELECT ... FOR UPDATE` / `FOR SHARE` / `LOCK IN SHARE MODE`.
    LockingRead,
    /// Data change, DDL, account management and administration
    /// (INSERT, UPDATE, DELETE, REPLACE, LOAD, CREATE, ALTER, DROP, TRUNCATE, RENAME,
    /// GRANT, REVOKE, ANALYZE/OPTIMIZE/REPAIR/CHECK TABLE, FLUSH, INSTALL, KILL,
    /// `SET GLOBAL`/`PERSIST`, `SET PASSWORD`, ...).
    Write,
    /// `CALL proc()`, MariaDB `BEGIN NOT ATOMIC ... END` and `EXECUTE IMMEDIATE`:
    /// server-side code that may read, write or change session/transaction state.
    Call,
    /// Metadata statements.
    Meta(MetaKind),
    /// Transaction control.
    Transaction(TransactionKind),
    /// Statements that create or change per-connection state.
    SessionState(SessionKind<'a>),
    /// Not understood (or malformed, e.g. an unterminated string): send to the primary.
    Unknown,
}

/// Kinds of metadata statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetaKind {
    /// `SHOW ...` (other than diagnostics).
    Show,
    /// `SHOW WARNINGS`, `SHOW ERRORS`, `SHOW COUNT(*) WARNINGS`, `GET DIAGNOSTICS`:
    /// they describe the previous statement, so they belong on the backend that ran it.
    ShowDiagnostics,
    /// `DESCRIBE t`, `DESC t`, `EXPLAIN t` (table description). Note that describing a
    /// temporary table needs the connection that created it: the router's job.
    Describe,
    /// Plain `EXPLAIN <statement>` (not executed, hence read-safe even for writes).
    /// `EXPLAIN ANALYZE` / `ANALYZE <statement>` execute and are classified as the statement.
    Explain,
    /// `HELP 'topic'`.
    Help,
    /// `DO expr` without primary-only functions (e.g. `DO SLEEP(1)`).
    Do,
}

/// Kinds of transaction-control statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransactionKind {
    /// `BEGIN [WORK]`, `START TRANSACTION [READ ONLY | READ WRITE | WITH CONSISTENT SNAPSHOT]`.
    Begin {
        /// `START TRANSACTION READ ONLY`.
        read_only: bool,
        /// `WITH CONSISTENT SNAPSHOT`.
        consistent_snapshot: bool,
    },
    /// `COMMIT [WORK] [AND [NO] CHAIN] [[NO] RELEASE]`.
    Commit {
        /// `AND CHAIN`: a new transaction starts at once.
        chain: bool,
        /// `RELEASE`: the server closes the connection.
        release: bool,
    },
    /// `ROLLBACK [WORK] [AND [NO] CHAIN] [[NO] RELEASE]`.
    Rollback {
        /// `AND CHAIN`: a new transaction starts at once.
        chain: bool,
        /// `RELEASE`: the server closes the connection.
        release: bool,
    },
    /// `ROLLBACK [WORK] TO [SAVEPOINT] name` (the transaction stays open).
    RollbackToSavepoint,
    /// `SAVEPOINT name`.
    Savepoint,
    /// `RELEASE SAVEPOINT name`.
    ReleaseSavepoint,
    /// `XA ...`.
    Xa(XaKind),
    /// `SET autocommit = 0|1` (any scope spelling) as the only assignment of a SET.
    SetAutocommit(bool),
    /// `SET [SESSION | GLOBAL] TRANSACTION ...`, or a SET of only `transaction_isolation`,
    /// `transaction_read_only` (and their `tx_` aliases).
    SetTransaction {
        /// Next transaction only, or the whole session.
        scope: TxScope,
        /// `READ ONLY` → `Some(true)`, `READ WRITE` → `Some(false)`, not given → `None`.
        read_only: Option<bool>,
    },
}

/// Scope of `SET TRANSACTION`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxScope {
    /// `SET TRANSACTION ...` without a scope: applies to the next transaction only.
    Next,
    /// `SET SESSION|LOCAL TRANSACTION ...` or `SET @@session.transaction_* = ...`.
    Session,
    /// `SET GLOBAL TRANSACTION ...`: the server default for new sessions; nothing for the
    /// router to track, but it must run on the server it is meant for (the primary).
    Global,
}

/// `XA` statement kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XaKind {
    /// `XA START|BEGIN xid`
    Start,
    /// `XA END xid`
    End,
    /// `XA PREPARE xid`
    Prepare,
    /// `XA COMMIT xid [ONE PHASE]`
    Commit,
    /// `XA ROLLBACK xid`
    Rollback,
    /// `XA RECOVER`
    Recover,
}

/// Statements that create or change per-connection state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionKind<'a> {
    /// SET of session variables (`SET x=1`, `SET SESSION x=1`, `SET @@session.x=1`,
    /// `SET NAMES ...`, `SET CHARACTER SET ...`, `SET CHARSET ...`, `SET ROLE ...`),
    /// possibly mixed with user variables.
    SetVariables,
    /// SET of user variables only (`SET @a = 1, @b := 2`).
    SetUserVariable,
    /// `USE db`; the name is unquoted (doubled quote characters, if any, kept).
    Use(&'a str),
    /// `PREPARE name FROM ...`.
    Prepare(&'a str),
    /// `EXECUTE name [USING ...]`.
    Execute(&'a str),
    /// `DEALLOCATE PREPARE name` / `DROP PREPARE name`.
    Deallocate(&'a str),
    /// `CREATE [OR REPLACE] TEMPORARY TABLE ...`.
    CreateTemporaryTable,
    /// `DROP TEMPORARY TABLE ...`.
    DropTemporaryTable,
    /// `LOCK TABLE[S] ...`.
    LockTables,
    /// `UNLOCK TABLE[S]`.
    UnlockTables,
    /// `HANDLER t OPEN|READ|CLOSE ...`.
    Handler,
}

impl StatementClass<'_> {
    /// Restrictiveness rank (see the table on [`StatementClass`]).
    pub fn rank(&self) -> u8 {
        match self {
            StatementClass::Empty => 0,
            StatementClass::Meta(_) => 1,
            StatementClass::Read => 2,
            StatementClass::ReadPrimaryOnly => 3,
            StatementClass::LockingRead => 4,
            StatementClass::Write => 5,
            StatementClass::Call => 6,
            StatementClass::SessionState(_) => 7,
            StatementClass::Transaction(_) => 8,
            StatementClass::Unknown => 9,
        }
    }

    /// True if, judged on this statement alone, a replica can answer it: [`Read`](Self::Read)
    /// and [`Meta`](Self::Meta) other than diagnostics. The router still has to weigh the
    /// hint, the transaction state, temporary tables and `uses_user_variables`.
    pub fn replica_safe(&self) -> bool {
        matches!(
            self,
            StatementClass::Read
                | StatementClass::Meta(
                    MetaKind::Show
                        | MetaKind::Describe
                        | MetaKind::Explain
                        | MetaKind::Help
                        | MetaKind::Do
                )
        )
    }
}

fn flags(f: &mut fmt::Formatter<'_>, items: &[(bool, &str)]) -> fmt::Result {
    let mut first = true;
    for (on, name) in items {
        if *on {
            f.write_str(if first { "(" } else { "," })?;
            f.write_str(name)?;
            first = false;
        }
    }
    if !first {
        f.write_str(")")?;
    }
    Ok(())
}

/// Compact labels, used by the corpus test: `read`, `read_primary`, `locking_read`,
/// `write`, `call`, `empty`, `unknown`, `meta:show`, `tx:begin(read_only)`,
/// `tx:autocommit=0`, `session:use(db)`, ...
impl fmt::Display for StatementClass<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatementClass::Empty => f.write_str("empty"),
            StatementClass::Read => f.write_str("read"),
            StatementClass::ReadPrimaryOnly => f.write_str("read_primary"),
            StatementClass::LockingRead => f.write_str("locking_read"),
            StatementClass::Write => f.write_str("write"),
            StatementClass::Call => f.write_str("call"),
            StatementClass::Unknown => f.write_str("unknown"),
            StatementClass::Meta(m) => f.write_str(match m {
                MetaKind::Show => "meta:show",
                MetaKind::ShowDiagnostics => "meta:show_diagnostics",
                MetaKind::Describe => "meta:describe",
                MetaKind::Explain => "meta:explain",
                MetaKind::Help => "meta:help",
                MetaKind::Do => "meta:do",
            }),
            StatementClass::Transaction(t) => match t {
                TransactionKind::Begin {
                    read_only,
                    consistent_snapshot,
                } => {
                    f.write_str("tx:begin")?;
                    flags(
                        f,
                        &[
                            (*read_only, "read_only"),
                            (*consistent_snapshot, "consistent_snapshot"),
                        ],
                    )
                }
                TransactionKind::Commit { chain, release } => {
                    f.write_str("tx:commit")?;
                    flags(f, &[(*chain, "chain"), (*release, "release")])
                }
                TransactionKind::Rollback { chain, release } => {
                    f.write_str("tx:rollback")?;
                    flags(f, &[(*chain, "chain"), (*release, "release")])
                }
                TransactionKind::RollbackToSavepoint => f.write_str("tx:rollback_to_savepoint"),
                TransactionKind::Savepoint => f.write_str("tx:savepoint"),
                TransactionKind::ReleaseSavepoint => f.write_str("tx:release_savepoint"),
                TransactionKind::Xa(x) => f.write_str(match x {
                    XaKind::Start => "tx:xa_start",
                    XaKind::End => "tx:xa_end",
                    XaKind::Prepare => "tx:xa_prepare",
                    XaKind::Commit => "tx:xa_commit",
                    XaKind::Rollback => "tx:xa_rollback",
                    XaKind::Recover => "tx:xa_recover",
                }),
                TransactionKind::SetAutocommit(on) => f.write_str(if *on {
                    "tx:autocommit=1"
                } else {
                    "tx:autocommit=0"
                }),
                TransactionKind::SetTransaction { scope, read_only } => {
                    f.write_str(match scope {
                        TxScope::Next => "tx:set_transaction(next",
                        TxScope::Session => "tx:set_transaction(session",
                        TxScope::Global => "tx:set_transaction(global",
                    })?;
                    f.write_str(match read_only {
                        None => ")",
                        Some(true) => ",read_only)",
                        Some(false) => ",read_write)",
                    })
                }
            },
            StatementClass::SessionState(s) => match s {
                SessionKind::SetVariables => f.write_str("session:set_variables"),
                SessionKind::SetUserVariable => f.write_str("session:set_user_variable"),
                SessionKind::Use(db) => write!(f, "session:use({db})"),
                SessionKind::Prepare(n) => write!(f, "session:prepare({n})"),
                SessionKind::Execute(n) => write!(f, "session:execute({n})"),
                SessionKind::Deallocate(n) => write!(f, "session:deallocate({n})"),
                SessionKind::CreateTemporaryTable => f.write_str("session:create_temporary_table"),
                SessionKind::DropTemporaryTable => f.write_str("session:drop_temporary_table"),
                SessionKind::LockTables => f.write_str("session:lock_tables"),
                SessionKind::UnlockTables => f.write_str("session:unlock_tables"),
                SessionKind::Handler => f.write_str("session:handler"),
            },
        }
    }
}
