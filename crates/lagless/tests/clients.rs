//! Real clients through the real `lagless` binary, in front of a real sandbox (1 primary +
//! 2 replicas): the mariadb CLI, mariadb-admin, PyMySQL and SQLAlchemy, sysbench, mysql_async.
//! Every test of this binary shares one environment; each uses its own tables.

use std::process::Command;

use lagless_e2e::{rt, shared_env, Env};
use mysql_async::prelude::*;

fn env() -> &'static Env {
    shared_env(env!("CARGO_BIN_EXE_lagless"))
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn cli_writes_then_reads_its_own_rows() {
    let out = env()
        .cli(
            "app",
            "lagless",
            "CREATE TABLE cli_t (id INT PRIMARY KEY, v VARCHAR(20));\n\
             INSERT INTO cli_t VALUES (1, 'first'), (2, 'second');\n\
             SELECT v FROM cli_t ORDER BY id;",
        )
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "first\nsecond\n");
}

#[test]
fn cli_wrong_password_gets_access_denied() {
    let out = env().cli("app", "not-the-password", "SELECT 1").unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("ERROR 1045") && err.contains("Access denied for user 'app'"),
        "{err}"
    );
}

#[test]
fn cli_use_switches_schema_with_com_init_db() {
    // The CLI's `use` is COM_INIT_DB; later statements run in that schema.
    let out = env()
        .cli("app", "lagless", "use sbtest\nSELECT DATABASE();")
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "sbtest\n");
    let out = env().cli("app", "lagless", "use no_such_db").unwrap();
    assert!(!out.status.success());
    // 1049 (unknown database) or, for an account without global privileges, 1044.
    let err = stderr(&out);
    assert!(err.contains("1049") || err.contains("1044"), "{err}");
}

#[test]
fn mariadb_admin_ping_and_status() {
    let admin = |cmd: &str| {
        Command::new("mariadb-admin")
            .args(["--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-P"])
            .arg(env().port().to_string())
            .args(["-u", "app", "-plagless", cmd])
            .output()
            .expect("mariadb-admin runs")
    };
    let ping = admin("ping"); // COM_PING
    assert!(ping.status.success(), "{}", stderr(&ping));
    assert!(stdout(&ping).contains("is alive"), "{}", stdout(&ping));
    let status = admin("status"); // COM_STATISTICS
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(stdout(&status).contains("Uptime:"), "{}", stdout(&status));
}

#[test]
fn python_pymysql_and_sqlalchemy() {
    lagless_e2e::python_checks("clients.py", &["--port".into(), env().port().to_string()]);
}

fn sysbench(args: &[&str]) -> std::process::Output {
    let mut all = vec!["--tables=2", "--table-size=1000"];
    all.extend_from_slice(args);
    lagless_e2e::sysbench(env().port(), &all)
}

#[test]
fn sysbench_oltp_read_write_text_and_prepared() {
    let prep = sysbench(&["prepare"]);
    assert!(
        prep.status.success(),
        "{}\n{}",
        stdout(&prep),
        stderr(&prep)
    );
    for mode in ["--db-ps-mode=disable", "--db-ps-mode=auto"] {
        // One thread: with more, InnoDB itself reports (and sysbench ignores) deadlocks between
        // the workers on this small data set, which would hide errors caused by the proxy.
        let run = sysbench(&[
            "--threads=1",
            "--time=10",
            "--report-interval=0",
            mode,
            "run",
        ]);
        let text = stdout(&run);
        assert!(run.status.success(), "{mode}: {text}\n{}", stderr(&run));
        let queries = text
            .lines()
            .find(|l| l.trim_start().starts_with("queries:"))
            .unwrap_or_else(|| panic!("no totals in: {text}"));
        assert!(
            text.contains("ignored errors:                      0"),
            "{mode}: {text}"
        );
        assert!(
            text.contains("reconnects:                          0"),
            "{mode}: {text}"
        );
        println!("{mode}: {}", queries.trim());
    }
}

async fn conn() -> mysql_async::Conn {
    mysql_async::Conn::from_url(env().url())
        .await
        .expect("connects through lagless")
}

#[test]
fn prepared_statement_with_every_column_type() {
    rt().block_on(async {
        let mut c = conn().await;
        c.query_drop(
            "CREATE TABLE ps_types (
                id INT PRIMARY KEY, ti TINYINT, si SMALLINT UNSIGNED, mi MEDIUMINT, bi BIGINT,
                bu BIGINT UNSIGNED, f FLOAT, d DOUBLE, dec1 DECIMAL(20,6), dt DATE, dtm DATETIME(6),
                ts TIMESTAMP(3) NULL, tm TIME(6), y YEAR, ch CHAR(5), vc VARCHAR(100), bn BINARY(4),
                vb VARBINARY(10), tb TINYBLOB, bl MEDIUMBLOB, tx TEXT, lt LONGTEXT, en ENUM('a','b'),
                st SET('x','y'), bt BIT(9), js JSON, nul INT NULL, gm GEOMETRY NULL
             ) DEFAULT CHARSET = utf8mb4",
        )
        .await
        .unwrap();
        let insert = c
            .prep(
                "INSERT INTO ps_types VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
                 ?, ?, ?, ?, b'100000001', ?, ?, ST_GeomFromText('POINT(1 2)'))",
            )
            .await
            .unwrap();
        let params: Vec<mysql_async::Value> = vec![
            1.into(),
            (-128i8).into(),
            65535u16.into(),
            (-8_388_608i32).into(),
            i64::MIN.into(),
            u64::MAX.into(),
            1.5f32.into(),
            (-2.25f64).into(),
            "12345678901234.123456".into(),
            mysql_async::Value::Date(2024, 2, 29, 0, 0, 0, 0),
            mysql_async::Value::Date(2024, 2, 29, 23, 59, 58, 123_456),
            mysql_async::Value::Date(2030, 1, 1, 0, 0, 0, 500_000),
            mysql_async::Value::Time(true, 1, 2, 3, 4, 5),
            2024u16.into(),
            "abc".into(),
            "héllo wörld ✓".into(),
            vec![0u8, 1, 2, 255].into(),
            vec![9u8; 10].into(),
            vec![7u8; 200].into(),
            vec![0u8; 70_000].into(),
            "some text".into(),
            "x".repeat(100_000).into(),
            "b".into(),
            "x,y".into(),
            r#"{"k": [1, 2]}"#.into(),
            mysql_async::Value::NULL,
        ];
        c.exec_drop(&insert, params).await.unwrap();
        let row: mysql_async::Row = c
            .exec_first("SELECT * FROM ps_types WHERE id = ?", (1,))
            .await
            .unwrap()
            .expect("row");
        assert_eq!(row.get::<i8, _>("ti"), Some(-128));
        assert_eq!(row.get::<u16, _>("si"), Some(65535));
        assert_eq!(row.get::<i32, _>("mi"), Some(-8_388_608));
        assert_eq!(row.get::<i64, _>("bi"), Some(i64::MIN));
        assert_eq!(row.get::<u64, _>("bu"), Some(u64::MAX));
        assert_eq!(row.get::<f32, _>("f"), Some(1.5));
        assert_eq!(row.get::<f64, _>("d"), Some(-2.25));
        assert_eq!(row.get::<String, _>("dec1").as_deref(), Some("12345678901234.123456"));
        assert_eq!(row.get::<String, _>("vc").as_deref(), Some("héllo wörld ✓"));
        assert_eq!(row.get::<Vec<u8>, _>("bn"), Some(vec![0, 1, 2, 255]));
        assert_eq!(row.get::<Vec<u8>, _>("bl").map(|b| b.len()), Some(70_000));
        assert_eq!(row.get::<String, _>("lt").map(|s| s.len()), Some(100_000));
        assert_eq!(row.get::<String, _>("en").as_deref(), Some("b"));
        assert_eq!(row.get::<String, _>("st").as_deref(), Some("x,y"));
        assert_eq!(row.get::<Vec<u8>, _>("bt"), Some(vec![1, 1]));
        assert_eq!(row.get::<mysql_async::Value, _>("nul"), Some(mysql_async::Value::NULL));
        assert_eq!(
            row.get::<mysql_async::Value, _>("dtm"),
            Some(mysql_async::Value::Date(2024, 2, 29, 23, 59, 58, 123_456))
        );
        assert_eq!(
            row.get::<mysql_async::Value, _>("tm"),
            Some(mysql_async::Value::Time(true, 1, 2, 3, 4, 5))
        );
        let gm: Option<Vec<u8>> = row.get("gm");
        assert_eq!(gm.map(|g| g.len()), Some(25), "WKB point with SRID");
        // The same statement executed many times on one prepared handle.
        let sel = c.prep("SELECT ti + ? FROM ps_types WHERE id = 1").await.unwrap();
        for i in 0..200i32 {
            let v: Option<i32> = c.exec_first(&sel, (i,)).await.unwrap();
            assert_eq!(v, Some(-128 + i));
        }
        c.close(sel).await.unwrap(); // COM_STMT_CLOSE
        c.disconnect().await.unwrap();
    });
}

#[test]
fn multi_statement_and_multi_results() {
    rt().block_on(async {
        let mut c = conn().await;
        let mut result = c
            .query_iter("SELECT 1 AS a; SELECT 'x' AS b, 'y' AS c; DO 1; SELECT 3")
            .await
            .unwrap();
        let first: Vec<i32> = result.collect().await.unwrap();
        let second: Vec<(String, String)> = result.collect().await.unwrap();
        let third: Vec<i32> = result.collect().await.unwrap();
        let fourth: Vec<i32> = result.collect().await.unwrap();
        assert_eq!(first, vec![1]);
        assert_eq!(second, vec![("x".to_string(), "y".to_string())]);
        assert!(third.is_empty());
        assert_eq!(fourth, vec![3]);
        drop(result);
        // An error in the middle ends the response; the connection stays usable.
        let err = c
            .query_drop("SELECT 1; SELECT * FROM no_such_table; SELECT 2")
            .await;
        assert!(err.is_err());
        let v: Option<i32> = c.query_first("SELECT 5").await.unwrap();
        assert_eq!(v, Some(5));
    });
}

#[test]
fn rows_and_statements_over_16_mib() {
    rt().block_on(async {
        let mut c = conn().await;
        c.query_drop("CREATE TABLE big_rows (id INT PRIMARY KEY, b LONGBLOB)")
            .await
            .unwrap();
        let size = 17 * 1024 * 1024 + 123;
        let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        // Client → proxy: a COM_QUERY over 16 MiB is split into several packets.
        let hexed = format!(
            "INSERT INTO big_rows VALUES (1, x'{}')",
            hex_encode(&payload)
        );
        c.query_drop(hexed).await.unwrap();
        // And a prepared statement with a large parameter.
        c.exec_drop("INSERT INTO big_rows VALUES (?, ?)", (2, payload.clone()))
            .await
            .unwrap();
        // Proxy → client: rows over 16 MiB arrive split too, in text and binary protocols.
        let text: Option<Vec<u8>> = c
            .query_first("SELECT b FROM big_rows WHERE id = 1")
            .await
            .unwrap();
        assert!(text.as_ref() == Some(&payload), "text row differs");
        let bin: Option<Vec<u8>> = c
            .exec_first("SELECT b FROM big_rows WHERE id = ?", (2,))
            .await
            .unwrap();
        assert!(bin.as_ref() == Some(&payload), "binary row differs");
        let len: Option<u64> = c
            .query_first("SELECT SUM(LENGTH(b)) FROM big_rows")
            .await
            .unwrap();
        assert_eq!(len, Some(2 * size as u64));
    });
}

fn hex_encode(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = Vec::with_capacity(b.len() * 2);
    for x in b {
        s.push(DIGITS[(x >> 4) as usize]);
        s.push(DIGITS[(x & 15) as usize]);
    }
    String::from_utf8(s).unwrap()
}

#[test]
fn ping_reset_and_change_user() {
    rt().block_on(async {
        let mut c = conn().await;
        c.ping().await.unwrap(); // COM_PING
        c.query_drop("SET @marker = 42").await.unwrap();
        c.reset().await.unwrap(); // COM_RESET_CONNECTION clears user variables
        let v: Option<Option<i32>> = c.query_first("SELECT @marker").await.unwrap();
        assert_eq!(v, Some(None));
        let opts = mysql_async::ChangeUserOpts::default()
            .with_user(Some("nativeonly".into()))
            .with_pass(Some("nativepass".into()))
            .with_db_name(Some("sbtest".into()));
        c.change_user(opts).await.unwrap(); // COM_CHANGE_USER, verified by Lagless
        let db: Option<String> = c.query_first("SELECT DATABASE()").await.unwrap();
        assert_eq!(db.as_deref(), Some("sbtest"));
        let bad = mysql_async::ChangeUserOpts::default()
            .with_user(Some("nativeonly".into()))
            .with_pass(Some("wrong".into()));
        assert!(c.change_user(bad).await.is_err());
    });
}

#[test]
fn caching_sha2_user_with_a_rust_driver() {
    rt().block_on(async {
        let url = env().url_for("sha2only", "sha2pass");
        for _ in 0..2 {
            let mut c = mysql_async::Conn::from_url(&url).await.expect("sha2 login");
            let v: Option<i32> = c.query_first("SELECT 7").await.unwrap();
            assert_eq!(v, Some(7));
            c.disconnect().await.unwrap();
        }
        let bad = env().url_for("sha2only", "nope");
        match mysql_async::Conn::from_url(&bad).await {
            Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1045),
            other => panic!("expected access denied, got {other:?}"),
        }
    });
}
