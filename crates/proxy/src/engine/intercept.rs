//! Statements Lagless answers itself: `SHOW LAGLESS BACKENDS`, `SHOW LAGLESS STATUS`,
//! `SHOW LAGLESS EXPLAIN <statement>`, and the session variables `@lagless_consistency` and
//! `@lagless_token` (SET and SELECT). They are valid SQL for every driver, never forwarded.

use std::sync::atomic::Ordering;

use lagless_protocol::consts::{CLIENT_DEPRECATE_EOF, SERVER_STATUS_AUTOCOMMIT};
use lagless_protocol::lenenc::{put_lenenc_bytes, put_lenenc_int};
use lagless_protocol::ok_err::{EofPacket, OkPacket};
use lagless_routing::ServerRef;

use crate::client::ClientConn;

/// A command for Lagless itself, recognised from the statement text.
#[derive(Debug, PartialEq, Eq)]
pub enum Intercepted<'a> {
    Backends,
    /// `SHOW LAGLESS REPLICATION`: the monitor's view.
    Replication,
    Status,
    Explain(&'a str),
    /// `SET @lagless_consistency = 'MODE'`
    SetConsistency(&'a str),
    /// `SELECT @lagless_consistency`
    GetConsistency,
    /// `SET @lagless_token = '...'`
    SetToken(&'a str),
    /// `SELECT @lagless_token`
    GetToken,
}

/// Recognises the statements above (case-insensitive, after leading whitespace). Anything else,
/// including other uses of these variables, is an ordinary statement.
pub fn intercept(sql: &str) -> Option<Intercepted<'_>> {
    let t = sql.trim_start();
    if let Some(rest) = strip_word(t, "set") {
        let rest = rest.trim_start();
        let (var, value) = rest.split_once(['=']).map(|(a, b)| (a.trim(), b.trim()))?;
        let value = unquote(value.trim_end_matches(';').trim_end())?;
        return match var.to_ascii_lowercase().as_str() {
            "@lagless_consistency" => Some(Intercepted::SetConsistency(value)),
            "@lagless_token" => Some(Intercepted::SetToken(value)),
            _ => None,
        };
    }
    if let Some(rest) = strip_word(t, "select") {
        // Compared in place: this runs for every SELECT, so no lower-cased copy, and an
        // ordinary SELECT is told apart by its first character, without walking to its end.
        let rest = rest.trim_start();
        if !rest.starts_with('@') {
            return None;
        }
        let var = rest.trim_end().trim_end_matches(';').trim_end();
        return if var.eq_ignore_ascii_case("@lagless_consistency") {
            Some(Intercepted::GetConsistency)
        } else if var.eq_ignore_ascii_case("@lagless_token") {
            Some(Intercepted::GetToken)
        } else {
            None
        };
    }
    let rest = strip_word(t, "show")?;
    let rest = strip_word(rest.trim_start(), "lagless")?.trim_start();
    let (word, tail) = rest
        .split_once(|c: char| c.is_whitespace())
        .unwrap_or((rest, ""));
    match word.trim_end_matches(';').to_ascii_lowercase().as_str() {
        "backends" => Some(Intercepted::Backends),
        "replication" => Some(Intercepted::Replication),
        "status" => Some(Intercepted::Status),
        "explain" => Some(Intercepted::Explain(tail.trim().trim_end_matches(';'))),
        _ => None,
    }
}

/// `/* lagless:consistency=MODE */` in the statement's first comment (also inside `/*+ */`).
pub fn consistency_hint(sql: &str) -> Option<lagless_config::Consistency> {
    const KEY: &str = "lagless:consistency=";
    let t = sql.trim_start();
    let body = t.strip_prefix("/*")?;
    let comment = &body[..body.find("*/")?];
    let at = comment.find(KEY)? + KEY.len();
    let value = comment[at..]
        .split(|c: char| c.is_whitespace() || c == ',')
        .next()?;
    value.parse().ok()
}

/// `'text'` or `"text"` without escapes (modes and tokens need none).
fn unquote(v: &str) -> Option<&str> {
    let inner = v.strip_prefix('\'').and_then(|x| x.strip_suffix('\''));
    let inner = inner.or_else(|| v.strip_prefix('"').and_then(|x| x.strip_suffix('"')))?;
    (!inner.contains(['\'', '"', '\\'])).then_some(inner)
}

fn strip_word<'a>(s: &'a str, word: &str) -> Option<&'a str> {
    let head = s.get(..word.len())?;
    let next = s[word.len()..].chars().next();
    (head.eq_ignore_ascii_case(word) && next.is_none_or(char::is_whitespace))
        .then(|| &s[word.len()..])
}

/// A text result set built by Lagless (all columns strings).
pub struct TextResult {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl TextResult {
    /// Queues the result set as a response to a command (sequence ids from 1).
    pub fn queue(&self, client: &mut ClientConn) {
        let deprecate_eof = client.capabilities & CLIENT_DEPRECATE_EOF != 0;
        let mut seq = 1u8;
        let mut buf = Vec::new();
        put_lenenc_int(&mut buf, self.columns.len() as u64);
        seq = client.queue(seq, &buf);
        for name in &self.columns {
            buf.clear();
            for part in [&b"def"[..], b"", b"", b""] {
                put_lenenc_bytes(&mut buf, part);
            }
            put_lenenc_bytes(&mut buf, name.as_bytes());
            put_lenenc_bytes(&mut buf, name.as_bytes());
            buf.push(0x0c);
            buf.extend_from_slice(&45u16.to_le_bytes()); // utf8mb4_general_ci
            buf.extend_from_slice(&1024u32.to_le_bytes());
            buf.push(0xfd); // VAR_STRING
            buf.extend_from_slice(&0u16.to_le_bytes());
            buf.push(0);
            buf.extend_from_slice(&[0, 0]);
            seq = client.queue(seq, &buf);
        }
        let eof = EofPacket {
            warnings: 0,
            status: SERVER_STATUS_AUTOCOMMIT,
        };
        if !deprecate_eof {
            seq = client.queue(seq, &eof.encode());
        }
        for row in &self.rows {
            buf.clear();
            for cell in row {
                match cell {
                    Some(v) => put_lenenc_bytes(&mut buf, v.as_bytes()),
                    None => buf.push(0xfb),
                }
            }
            seq = client.queue(seq, &buf);
        }
        if deprecate_eof {
            let ok = OkPacket {
                header: 0xfe,
                status: SERVER_STATUS_AUTOCOMMIT,
                ..OkPacket::default()
            };
            client.queue_ok(seq, &ok);
        } else {
            client.queue(seq, &eof.encode());
        }
    }
}

/// `SHOW LAGLESS BACKENDS`: one row per server with what routing knows and counted.
pub fn backends(engine: &super::Engine, now: tokio::time::Instant) -> TextResult {
    let view = engine.ctx.cluster.view(now);
    let mut rows = Vec::new();
    for (ci, c) in engine.config.clusters.iter().enumerate() {
        for (si, s) in c.servers.iter().enumerate() {
            let r = ServerRef {
                cluster: ci,
                server: si,
            };
            let stats = engine.ctx.cluster.stats(r);
            let stream = engine.ctx.cluster.stream(r);
            let n = |a: &std::sync::atomic::AtomicU64| Some(a.load(Ordering::Relaxed).to_string());
            rows.push(vec![
                Some(c.name.clone()),
                Some(s.name.clone()),
                Some(s.address.clone()),
                Some(format!("{:?}", s.role).to_lowercase()),
                Some(if view.is_usable(r) { "up" } else { "down" }.to_string()),
                Some(stats.sessions.load(Ordering::Relaxed).to_string()),
                n(&stats.reads),
                n(&stats.writes),
                n(&stats.other),
                n(&stats.failures),
                Some(engine.ctx.pool.idle_count(r).to_string()),
                engine.ctx.pool.open_count(r).map(|n| n.to_string()),
                Some(engine.ctx.cluster.gtid_source(r).to_string()),
                stream.as_ref().map(|s| match s.state.reason() {
                    Some(why) => format!("{}: {why}", s.state.name()),
                    None => s.state.name().to_string(),
                }),
                view.server(r)
                    .replica
                    .as_ref()
                    .and_then(|x| x.gtids.as_ref())
                    .map(ToString::to_string),
                view.server(r)
                    .streamed_binlog
                    .as_ref()
                    .map(|b| b.pos.to_string()),
            ]);
        }
    }
    TextResult {
        columns: vec![
            "cluster",
            "server",
            "address",
            "role",
            "health",
            "sessions",
            "reads",
            "writes",
            "other",
            "failures",
            "pool_idle",
            "pool_open",
            "gtid_source",
            "binlog_stream",
            "executed_gtid",
            "streamed_binlog_pos",
        ],
        rows,
    }
}

/// `SHOW LAGLESS REPLICATION`: per server, what the monitor saw last.
pub fn replication(engine: &super::Engine) -> TextResult {
    let text = |v: Option<String>| v;
    let rows = engine
        .ctx
        .cluster
        .observations()
        .into_iter()
        .map(|o| {
            let r = o.replication.as_ref();
            vec![
                Some(o.name.clone()),
                Some(
                    if o.looks_like_primary() {
                        "primary"
                    } else if r.is_some() {
                        "replica"
                    } else {
                        "unknown"
                    }
                    .into(),
                ),
                Some(if o.reachable { "up" } else { "down" }.into()),
                o.read_only.map(|b| b.to_string()),
                r.map(|r| format!("{:?}/{:?}", r.io_running, r.sql_running)),
                r.and_then(|r| r.seconds_behind_master)
                    .map(|s| s.to_string()),
                o.heartbeat_lag.map(|d| d.as_millis().to_string()),
                text(o.gtid_current_pos.clone()),
                r.map(|r| r.gtid_io_pos.clone()),
                r.map(|r| format!("{}:{}", r.master_log_file, r.read_master_log_pos)),
                r.map(|r| format!("{}:{}", r.relay_master_log_file, r.exec_master_log_pos)),
                o.binlog.as_ref().map(|b| format!("{}:{}", b.file, b.pos)),
                o.semi_sync.master_status.map(|b| b.to_string()),
                o.semi_sync.master_clients.map(|n| n.to_string()),
                o.semi_sync.slave_status.map(|b| b.to_string()),
                o.rtt.map(|d| d.as_micros().to_string()),
                o.error.clone(),
            ]
        })
        .collect();
    TextResult {
        columns: vec![
            "server",
            "role",
            "health",
            "read_only",
            "io/sql",
            "seconds_behind_master",
            "heartbeat_lag_ms",
            "gtid_current_pos",
            "gtid_io_pos",
            "read_master_pos",
            "exec_master_pos",
            "binlog_pos",
            "semi_sync_master",
            "semi_sync_clients",
            "semi_sync_slave",
            "rtt_us",
            "error",
        ],
        rows,
    }
}

/// Sessions per worker runtime, e.g. `3,4` (one number with the multi-threaded runtime).
fn worker_sessions(engine: &super::Engine) -> String {
    let counts: Vec<String> = engine
        .ctx
        .worker_sessions
        .iter()
        .map(|n| n.load(Ordering::Relaxed).to_string())
        .collect();
    counts.join(",")
}

/// `SHOW LAGLESS STATUS`: proxy-wide counters and this session's routing state.
pub fn status(engine: &super::Engine) -> TextResult {
    let st = &engine.ctx.stats;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed).to_string();
    let s = &engine.routing;
    // Where the session's last write ends in the primary's binlog, as the position modes see
    // it now.
    let view = engine.ctx.cluster.view(tokio::time::Instant::now());
    let write_pos = match view.write_position(s.cluster, &s.write) {
        _ if s.write.gtids.is_empty() => "none".to_string(),
        Some((p, source)) => format!("{p} ({})", source.name()),
        None => "not known yet".to_string(),
    };
    let pairs = [
        ("connections_active", n(&st.connections_active)),
        ("connections_accepted", n(&st.connections_accepted)),
        ("commands", n(&st.commands)),
        ("unknown_statements", n(&st.unknown_statements)),
        ("set_names_answered", n(&st.set_names_answered)),
        ("hints_ignored", n(&st.hints_ignored)),
        ("optimistic_moved", n(&st.optimistic_moved)),
        ("optimistic_differed", n(&st.optimistic_differed)),
        ("optimistic_unreplayable", n(&st.optimistic_unreplayable)),
        ("transactions_resumed", n(&st.transactions_resumed)),
        ("transactions_not_resumed", n(&st.transactions_not_resumed)),
        ("read_retries", n(&st.read_retries)),
        ("reads_behind_to_primary", n(&st.reads_behind)),
        ("reads_schema_behind_to_primary", n(&st.reads_schema_behind)),
        ("backend_logins", n(&engine.ctx.pool.logins)),
        ("worker_sessions", worker_sessions(engine)),
        ("session_worker", engine.backends.shard().to_string()),
        ("session_in_transaction", s.trx.active.to_string()),
        (
            "session_transaction_server",
            match s.trx.server.filter(|_| s.trx.active) {
                None => "none".to_string(),
                Some(r) => {
                    let name = &engine.config.clusters[r.cluster].servers[r.server].name;
                    if s.trx.optimistic {
                        format!("{name} (optimistic)")
                    } else {
                        name.clone()
                    }
                }
            },
        ),
        ("session_autocommit", s.trx.autocommit.to_string()),
        (
            "session_pinned",
            s.pins.describe().unwrap_or_else(|| "no".into()),
        ),
        (
            "session_replica",
            s.sticky
                .get(s.cluster)
                .copied()
                .flatten()
                .map(|r| {
                    engine.config.clusters[r.cluster].servers[r.server]
                        .name
                        .clone()
                })
                .unwrap_or_else(|| "none".into()),
        ),
        ("session_consistency", s.consistency.to_string()),
        (
            "session_write_gtids",
            if s.write.gtids.is_empty() {
                "none".to_string()
            } else {
                s.write.gtids.to_string()
            },
        ),
        ("session_write_binlog_pos", write_pos),
    ];
    TextResult {
        columns: vec!["variable", "value"],
        rows: pairs
            .into_iter()
            .map(|(k, v)| vec![Some(k.to_string()), Some(v)])
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_show_lagless() {
        assert_eq!(
            intercept("SHOW LAGLESS BACKENDS"),
            Some(Intercepted::Backends)
        );
        assert_eq!(
            intercept("  show lagless status;"),
            Some(Intercepted::Status)
        );
        assert_eq!(
            intercept("SHOW LAGLESS EXPLAIN SELECT * FROM t;"),
            Some(Intercepted::Explain("SELECT * FROM t"))
        );
        assert_eq!(intercept("SHOW TABLES"), None);
        assert_eq!(intercept("SHOW LAGLESSX BACKENDS"), None);
        assert_eq!(intercept("SELECT 1"), None);
        assert_eq!(intercept("SHOW LAGLESS NONSENSE"), None);
    }

    #[test]
    fn consistency_hints() {
        use lagless_config::Consistency;
        assert_eq!(
            consistency_hint("/* lagless:consistency=primary */ SELECT 1"),
            Some(Consistency::Primary)
        );
        assert_eq!(
            consistency_hint("  /*+ lagless:consistency=gtid_wait(50) */ SELECT 1"),
            Some(Consistency::GtidWait(std::time::Duration::from_millis(50)))
        );
        assert_eq!(
            consistency_hint("SELECT 1 /* lagless:consistency=primary */"),
            None
        );
        assert_eq!(
            consistency_hint("/* lagless:consistency=bogus */ SELECT 1"),
            None
        );
        assert_eq!(
            consistency_hint("/* unterminated lagless:consistency=primary"),
            None
        );
    }

    #[test]
    fn recognises_lagless_variables() {
        assert_eq!(
            intercept("SET @lagless_consistency = 'gtid_wait(100)'"),
            Some(Intercepted::SetConsistency("gtid_wait(100)"))
        );
        assert_eq!(
            intercept("set @LAGLESS_TOKEN=\"gtid:0-1-5\";"),
            Some(Intercepted::SetToken("gtid:0-1-5"))
        );
        assert_eq!(
            intercept("SELECT @lagless_token"),
            Some(Intercepted::GetToken)
        );
        assert_eq!(
            intercept("select @lagless_consistency;"),
            Some(Intercepted::GetConsistency)
        );
        // Other statements touching user variables are ordinary SQL.
        assert_eq!(intercept("SET @lagless_token = 'a', @b = 1"), None);
        assert_eq!(intercept("SET @other = 'x'"), None);
        assert_eq!(intercept("SELECT @lagless_token, 1"), None);
        assert_eq!(intercept("SETTINGS"), None);
    }
}
