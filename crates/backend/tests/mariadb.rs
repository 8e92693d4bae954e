//! Login against a real server when one is named: LAGLESS_TEST_MARIADB_PORT (on 127.0.0.1),
//! LAGLESS_TEST_USER (default root), LAGLESS_TEST_PASSWORD (default empty). Skipped otherwise.

use std::time::Duration;

use lagless_backend::{login, LoginOptions};
use lagless_protocol::consts::*;
use lagless_protocol::ok_err::{session_changes, SessionChange};

fn options() -> Option<LoginOptions> {
    let Ok(port) = std::env::var("LAGLESS_TEST_MARIADB_PORT") else {
        println!("skipped: LAGLESS_TEST_MARIADB_PORT not set");
        return None;
    };
    Some(LoginOptions {
        addr: format!("127.0.0.1:{port}"),
        user: std::env::var("LAGLESS_TEST_USER").unwrap_or_else(|_| "root".into()),
        password: std::env::var("LAGLESS_TEST_PASSWORD").unwrap_or_default(),
        database: None,
        capabilities: CLIENT_SESSION_TRACK
            | CLIENT_DEPRECATE_EOF
            | CLIENT_MULTI_RESULTS
            | CLIENT_MULTI_STATEMENTS
            | CLIENT_PS_MULTI_RESULTS
            | CLIENT_LONG_FLAG
            | MARIADB_CLIENT_CACHE_METADATA
            | MARIADB_CLIENT_EXTENDED_TYPE_INFO,
        charset: UTF8MB4_GENERAL_CI,
        connect_attrs: vec![("program_name".into(), "lagless-test".into())],
        connect_timeout: Duration::from_secs(5),
        max_packet: 1 << 24,
    })
}

#[tokio::test]
async fn select_one_and_session_tracking() {
    let Some(mut opts) = options() else { return };
    for deprecate_eof in [true, false] {
        if !deprecate_eof {
            opts.capabilities &= !CLIENT_DEPRECATE_EOF;
        }
        let mut conn = login(&opts).await.expect("login");
        assert!(!conn.server_version.is_empty());
        assert_ne!(conn.status & SERVER_STATUS_AUTOCOMMIT, 0);

        let rows = conn
            .query_rows("SELECT 1 AS one, NULL AS n, 'x' AS s")
            .await
            .unwrap();
        assert_eq!(rows.columns, ["one", "n", "s"]);
        assert_eq!(
            rows.rows,
            vec![vec![Some("1".into()), None, Some("x".into())]]
        );

        // Multi-statement: first result returned, the rest drained.
        let rows = conn.query_rows("SELECT 2; SELECT 3").await.unwrap();
        assert_eq!(rows.scalar(), Some("2"));
        assert_eq!(
            conn.query_rows("SELECT 4").await.unwrap().scalar(),
            Some("4")
        );

        if conn.capabilities & CLIENT_SESSION_TRACK != 0 {
            // Only this session's variables change.
            conn.query_ok("SET SESSION session_track_system_variables = 'autocommit,last_gtid'")
                .await
                .unwrap();
            let ok = conn.query_ok("SET autocommit = 1").await.unwrap();
            assert_ne!(ok.status & SERVER_SESSION_STATE_CHANGED, 0, "{ok:?}");
            let changes: Vec<_> = session_changes(&ok.session_state)
                .map(Result::unwrap)
                .collect();
            assert!(
                changes.contains(&SessionChange::SystemVariable {
                    name: b"autocommit",
                    value: b"ON"
                }),
                "{changes:?}"
            );
            assert_eq!(ok.last_gtid(), None);
        }
        let err = conn
            .query_ok("SELECT * FROM no_such_db.no_such_table")
            .await
            .unwrap_err();
        assert!(err.is_server_error(), "{err}");
        conn.ping().await.unwrap();
    }
}

#[tokio::test]
async fn wrong_password_is_refused() {
    let Some(mut opts) = options() else { return };
    opts.password.push_str("-wrong");
    match login(&opts).await {
        Err(lagless_backend::BackendError::Server { code, .. }) => assert_eq!(code, 1045),
        other => panic!("expected access denied, got {other:?}"),
    }
}
