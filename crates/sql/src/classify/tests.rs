use super::*;
use crate::class::{TxScope, XaKind};
use StatementClass as C;

fn c(sql: &str) -> StatementClass<'_> {
    classify(sql, &LexOptions::default()).class
}

#[test]
fn reads() {
    assert_eq!(c("SELECT c FROM sbtest1 WHERE id=1"), C::Read);
    assert_eq!(c("select 1"), C::Read);
    assert_eq!(c("(SELECT 1) UNION (SELECT 2)"), C::Read);
    assert_eq!(c("TABLE t"), C::Read);
    assert_eq!(c("VALUES ROW(1,2)"), C::Read);
    assert_eq!(
        c("SELECT REPLACE(a, 'x', 'y'), INSERT (a, 1, 2, 'b') FROM t"),
        C::Read
    );
    assert_eq!(c("SELECT t.update, t.delete FROM t"), C::Read);
    assert_eq!(c("SELECT SLEEP(1)"), C::Read);
    assert_eq!(c("SELECT 'FOR UPDATE', \"GET_LOCK(\" FROM t"), C::Read);
    assert_eq!(c("SELECT @a"), C::Read);
    assert!(classify("SELECT @a", &LexOptions::default()).uses_user_variables);
    assert_eq!(c("SELECT @@session.transaction_read_only"), C::Read);
}

#[test]
fn locking_and_primary_reads() {
    assert_eq!(c("SELECT * FROM t WHERE id = 1 FOR UPDATE"), C::LockingRead);
    assert_eq!(c("SELECT * FROM t FOR SHARE SKIP LOCKED"), C::LockingRead);
    assert_eq!(c("SELECT * FROM t LOCK IN SHARE MODE"), C::LockingRead);
    assert_eq!(c("SELECT * FROM t FOR UPDATE NOWAIT"), C::LockingRead);
    assert_eq!(c("SELECT a INTO @x FROM t"), C::ReadPrimaryOnly);
    assert_eq!(
        c("SELECT * FROM t INTO OUTFILE '/tmp/x'"),
        C::ReadPrimaryOnly
    );
    assert_eq!(c("SELECT @a := 1"), C::ReadPrimaryOnly);
    assert_eq!(c("SELECT GET_LOCK('x', 10)"), C::ReadPrimaryOnly);
    assert_eq!(c("SELECT release_all_locks()"), C::ReadPrimaryOnly);
    assert_eq!(c("SELECT LAST_INSERT_ID()"), C::ReadPrimaryOnly);
    assert_eq!(c("SELECT NEXT VALUE FOR s"), C::ReadPrimaryOnly);
    assert_eq!(c("SELECT PREVIOUS VALUE FOR s"), C::ReadPrimaryOnly);
    assert_eq!(
        c("SELECT NEXTVAL(s), LASTVAL(s), SETVAL(s, 10)"),
        C::ReadPrimaryOnly
    );
    assert_eq!(c("SELECT s.nextval"), C::ReadPrimaryOnly);
    assert_eq!(
        c("SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 10"),
        C::ReadPrimaryOnly
    );
    assert_eq!(c("SELECT FOUND_ROWS()"), C::ReadPrimaryOnly);
    assert_eq!(c("SELECT ROW_COUNT()"), C::ReadPrimaryOnly);
    assert_eq!(c("SELECT @@identity"), C::ReadPrimaryOnly);
    assert_eq!(
        c("SELECT GET_LOCK('x', 1) FROM t FOR UPDATE"),
        C::LockingRead
    );
}

#[test]
fn writes() {
    for s in [
        "INSERT INTO t VALUES (1)",
        "insert into t select * from u",
        "UPDATE t SET a = 1",
        "DELETE FROM t",
        "REPLACE INTO t VALUES (1)",
        "LOAD DATA LOCAL INFILE 'x' INTO TABLE t",
        "CREATE TABLE t (a int)",
        "CREATE USER 'u'@'%' IDENTIFIED BY 'p'",
        "ALTER TABLE t ADD COLUMN b int",
        "DROP TABLE t",
        "TRUNCATE TABLE t",
        "RENAME TABLE a TO b",
        "GRANT SELECT ON *.* TO 'u'@'%'",
        "REVOKE ALL ON *.* FROM u",
        "ANALYZE TABLE t",
        "OPTIMIZE TABLE t",
        "REPAIR TABLE t",
        "FLUSH PRIVILEGES",
        "INSTALL PLUGIN x SONAME 'x.so'",
        "KILL QUERY 5",
        "SET GLOBAL max_connections = 10",
        "SET @@global.x = 1",
        "SET PASSWORD = 'x'",
        "EXPLAIN ANALYZE UPDATE t SET a = 1",
        "ANALYZE UPDATE t SET a = 1",
        "ANALYZE FORMAT=JSON DELETE FROM t",
        "WITH x AS (SELECT 1) UPDATE t SET a = 1",
        "WITH x AS (SELECT id FROM t) DELETE FROM t WHERE id IN (SELECT id FROM x)",
        "SET STATEMENT max_statement_time=1 FOR UPDATE t SET a = 1",
        "START SLAVE",
    ] {
        assert_eq!(c(s), C::Write, "{s}");
    }
}

#[test]
fn cte() {
    assert_eq!(
        c("WITH RECURSIVE cte (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM cte WHERE n < 5) SELECT * FROM cte"),
        C::Read
    );
    assert_eq!(
        c("WITH a AS (SELECT 1), b AS (SELECT 2) SELECT * FROM a, b FOR UPDATE"),
        C::LockingRead
    );
    assert_eq!(c("WITH a AS (SELECT 1) (SELECT * FROM a)"), C::Read);
    assert_eq!(
        c("WITH a AS (DELETE FROM t RETURNING id) SELECT * FROM a"),
        C::Write
    );
    assert_eq!(c("WITH a AS (SELECT 1)"), C::Unknown);
}

#[test]
fn meta() {
    assert_eq!(c("SHOW FULL COLUMNS FROM `t`"), C::Meta(MetaKind::Show));
    assert_eq!(c("SHOW WARNINGS"), C::Meta(MetaKind::ShowDiagnostics));
    assert_eq!(
        c("SHOW COUNT(*) ERRORS"),
        C::Meta(MetaKind::ShowDiagnostics)
    );
    assert_eq!(c("DESCRIBE t"), C::Meta(MetaKind::Describe));
    assert_eq!(c("desc `db`.`t`"), C::Meta(MetaKind::Describe));
    assert_eq!(c("EXPLAIN SELECT 1"), C::Meta(MetaKind::Explain));
    assert_eq!(c("EXPLAIN UPDATE t SET a=1"), C::Meta(MetaKind::Explain));
    assert_eq!(
        c("EXPLAIN FORMAT=JSON DELETE FROM t"),
        C::Meta(MetaKind::Explain)
    );
    assert_eq!(c("EXPLAIN ANALYZE SELECT * FROM t"), C::Read);
    assert_eq!(c("HELP 'contents'"), C::Meta(MetaKind::Help));
    assert_eq!(c("DO SLEEP(1)"), C::Meta(MetaKind::Do));
    assert_eq!(c("DO GET_LOCK('a', 1)"), C::ReadPrimaryOnly);
}

#[test]
fn transactions() {
    let tx = C::Transaction;
    assert_eq!(
        c("BEGIN"),
        tx(TransactionKind::Begin {
            read_only: false,
            consistent_snapshot: false
        })
    );
    assert_eq!(
        c("begin work"),
        tx(TransactionKind::Begin {
            read_only: false,
            consistent_snapshot: false
        })
    );
    assert_eq!(
        c("START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT"),
        tx(TransactionKind::Begin {
            read_only: true,
            consistent_snapshot: true
        })
    );
    assert_eq!(
        c("START TRANSACTION READ WRITE"),
        tx(TransactionKind::Begin {
            read_only: false,
            consistent_snapshot: false
        })
    );
    assert_eq!(c("BEGIN NOT ATOMIC SELECT 1; END"), C::Unknown); // body split by ';' fails safe
    assert_eq!(
        c("COMMIT"),
        tx(TransactionKind::Commit {
            chain: false,
            release: false
        })
    );
    assert_eq!(
        c("COMMIT WORK AND CHAIN NO RELEASE"),
        tx(TransactionKind::Commit {
            chain: true,
            release: false
        })
    );
    assert_eq!(
        c("ROLLBACK AND NO CHAIN RELEASE"),
        tx(TransactionKind::Rollback {
            chain: false,
            release: true
        })
    );
    assert_eq!(
        c("ROLLBACK TO SAVEPOINT sa_savepoint_1"),
        tx(TransactionKind::RollbackToSavepoint)
    );
    assert_eq!(
        c("ROLLBACK WORK TO s1"),
        tx(TransactionKind::RollbackToSavepoint)
    );
    assert_eq!(
        c("SAVEPOINT sa_savepoint_1"),
        tx(TransactionKind::Savepoint)
    );
    assert_eq!(
        c("RELEASE SAVEPOINT sa_savepoint_1"),
        tx(TransactionKind::ReleaseSavepoint)
    );
    assert_eq!(c("XA START 'x'"), tx(TransactionKind::Xa(XaKind::Start)));
    assert_eq!(
        c("XA COMMIT 'x' ONE PHASE"),
        tx(TransactionKind::Xa(XaKind::Commit))
    );
    assert_eq!(
        c("SET autocommit=0"),
        tx(TransactionKind::SetAutocommit(false))
    );
    assert_eq!(
        c("SET @@session.autocommit = ON"),
        tx(TransactionKind::SetAutocommit(true))
    );
    assert_eq!(
        c("SET TRANSACTION READ ONLY"),
        tx(TransactionKind::SetTransaction {
            scope: TxScope::Next,
            read_only: Some(true)
        })
    );
    assert_eq!(
        c("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"),
        tx(TransactionKind::SetTransaction {
            scope: TxScope::Session,
            read_only: None
        })
    );
    assert_eq!(
        c("SET @@SESSION.transaction_read_only = 0"),
        tx(TransactionKind::SetTransaction {
            scope: TxScope::Session,
            read_only: Some(false)
        })
    );
}

#[test]
fn session() {
    let s = C::SessionState;
    assert_eq!(
        c("SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci"),
        s(SessionKind::SetVariables)
    );
    assert_eq!(c("SET CHARACTER SET utf8"), s(SessionKind::SetVariables));
    assert_eq!(
        c("SET sql_mode = 'ANSI', time_zone = '+00:00'"),
        s(SessionKind::SetVariables)
    );
    assert!(classify("SET sql_mode = 'ANSI'", &LexOptions::default()).sets_sql_mode);
    assert_eq!(
        c("SET @a = 1, @b := (SELECT 1)"),
        s(SessionKind::SetUserVariable)
    );
    let r = classify("SET autocommit = 1, NAMES utf8", &LexOptions::default());
    assert_eq!(r.class, s(SessionKind::SetVariables));
    assert_eq!(r.autocommit, Some(true));
    assert_eq!(c("SET autocommit = @x"), C::Unknown);
    assert_eq!(c("USE `my db`"), s(SessionKind::Use("my db")));
    assert_eq!(
        c("PREPARE st FROM 'SELECT 1'"),
        s(SessionKind::Prepare("st"))
    );
    assert_eq!(c("EXECUTE st USING @a"), s(SessionKind::Execute("st")));
    assert_eq!(c("DEALLOCATE PREPARE st"), s(SessionKind::Deallocate("st")));
    assert_eq!(c("DROP PREPARE st"), s(SessionKind::Deallocate("st")));
    assert_eq!(
        c("CREATE TEMPORARY TABLE t (a int)"),
        s(SessionKind::CreateTemporaryTable)
    );
    assert_eq!(
        c("CREATE OR REPLACE TEMPORARY TABLE t (a int)"),
        s(SessionKind::CreateTemporaryTable)
    );
    assert_eq!(
        c("DROP TEMPORARY TABLE IF EXISTS t"),
        s(SessionKind::DropTemporaryTable)
    );
    assert_eq!(c("LOCK TABLES t READ"), s(SessionKind::LockTables));
    assert_eq!(c("UNLOCK TABLES"), s(SessionKind::UnlockTables));
    assert_eq!(c("HANDLER t OPEN"), s(SessionKind::Handler));
    assert_eq!(
        c("SET STATEMENT max_statement_time=1 FOR SELECT 1"),
        C::Read
    );
    assert_eq!(c("EXECUTE IMMEDIATE 'SELECT 1'"), C::Call);
    assert_eq!(c("CALL p(1)"), C::Call);
}

#[test]
fn empty_unknown_multi() {
    assert_eq!(c(""), C::Empty);
    assert_eq!(c("  /* x */ -- y\n ; ;"), C::Empty);
    assert_eq!(c("SELECT 'abc"), C::Unknown);
    assert_eq!(c("SELECT 1 /* abc"), C::Unknown);
    assert_eq!(c("FOO BAR"), C::Unknown);
    assert_eq!(c("123"), C::Unknown);
    let r = classify(
        "SELECT 1; UPDATE t SET a=1; SELECT 2;",
        &LexOptions::default(),
    );
    assert_eq!(r.class, C::Write);
    assert_eq!(r.statement_count, 3);
    assert!(r.multi);
    let r = classify("SELECT ';'; ", &LexOptions::default());
    assert_eq!((r.class, r.statement_count, r.multi), (C::Read, 1, false));
    let r = classify("BEGIN; SELECT 1; COMMIT", &LexOptions::default());
    assert_eq!(
        r.class,
        C::Transaction(TransactionKind::Commit {
            chain: false,
            release: false
        })
    );
}

#[test]
fn hints_and_first_keyword() {
    let r = classify("/* lagless:replica */ SELECT 1", &LexOptions::default());
    assert_eq!(r.hint, Some(RoutingHint::Replica));
    assert_eq!(r.first_keyword, Some("SELECT"));
    let r = classify("select /*+ lagless:backend=b1 */ 1", &LexOptions::default());
    assert_eq!(r.hint, Some(RoutingHint::Backend("b1")));
    assert_eq!(r.first_keyword, Some("select"));
    let r = classify(
        "/* app */ SELECT /* lagless:primary */ 1",
        &LexOptions::default(),
    );
    assert_eq!(r.hint, None);
    let r = classify("/*!40101 SET NAMES utf8 */", &LexOptions::default());
    assert_eq!(r.first_keyword, Some("SET"));
    assert_eq!(r.hint, None);
}

#[test]
fn statements_iter() {
    let v: Vec<_> = statements(
        "SELECT 1; /* lagless:primary */ INSERT INTO t VALUES (';') ;;",
        &LexOptions::default(),
    )
    .collect();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].text, "SELECT 1");
    assert_eq!(v[0].hint, None);
    assert_eq!(v[1].text, "INSERT INTO t VALUES (';')");
    assert_eq!(v[1].class, C::Write);
    assert_eq!(v[1].hint, Some(RoutingHint::Primary));
}
