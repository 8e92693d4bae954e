//! A tiny control-plane client on a [`Login`]: one statement at a time, whole results in memory.
//! For set-up statements (`SET session_track_system_variables=...`), health checks and
//! replication monitoring; not for forwarding client traffic.
//!
//! These calls have no timeout of their own: wrap them in `tokio::time::timeout`. After any error
//! other than [`BackendError::Server`] the connection is out of sync and must be dropped.

use lagless_protocol::consts::*;
use lagless_protocol::lenenc::Reader;
use lagless_protocol::ok_err::{
    is_eof_packet, is_ok_terminator, EofPacket, ErrPacket, OkPacket, EOF_HEADER, ERR_HEADER,
    OK_HEADER,
};
use lagless_protocol::packet::Packet;

use crate::io::{read_packet, write_packet};
use crate::{BackendError, Login};

/// Largest packet accepted on the control plane.
const CONTROL_MAX_PAYLOAD: usize = 64 << 20;

/// A text result set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl TextResult {
    /// The first column of the first row, if any and not NULL.
    pub fn scalar(&self) -> Option<&str> {
        self.rows.first()?.first()?.as_deref()
    }

    /// The index of a column by name (case-insensitive, as SQL column names are).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
    }
}

/// The first result of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryResult {
    Ok(OkPacket),
    Rows(TextResult),
}

impl Login {
    /// Runs `sql` and returns its first result; later results (multi-statements, procedures)
    /// are read and dropped, and an ERR among them is returned as the error.
    pub async fn query(&mut self, sql: &str) -> Result<QueryResult, BackendError> {
        let mut payload = Vec::with_capacity(1 + sql.len());
        payload.push(Command::Query as u8);
        payload.extend_from_slice(sql.as_bytes());
        write_packet(&mut self.stream, 0, &payload).await?;
        let (first, mut status) = self.read_result().await?;
        while status & SERVER_MORE_RESULTS_EXISTS != 0 {
            status = self.read_result().await?.1;
        }
        Ok(first)
    }

    /// Runs a statement that returns no rows (SET, USE, DDL, DML) and returns its OK.
    pub async fn query_ok(&mut self, sql: &str) -> Result<OkPacket, BackendError> {
        match self.query(sql).await? {
            QueryResult::Ok(ok) => Ok(ok),
            QueryResult::Rows(_) => Err(BackendError::Unexpected(format!(
                "statement returned rows: {}",
                sql.chars().take(60).collect::<String>()
            ))),
        }
    }

    /// Runs a query and returns its rows (empty for a statement that returns an OK).
    pub async fn query_rows(&mut self, sql: &str) -> Result<TextResult, BackendError> {
        match self.query(sql).await? {
            QueryResult::Ok(_) => Ok(TextResult::default()),
            QueryResult::Rows(rows) => Ok(rows),
        }
    }

    /// Sends COM_PING and waits for its OK.
    pub async fn ping(&mut self) -> Result<(), BackendError> {
        write_packet(&mut self.stream, 0, &[Command::Ping as u8]).await?;
        let pkt = self.read().await?;
        self.expect_ok(&pkt).map(|_| ())
    }

    /// Reads the next packet, skipping MariaDB progress reports (ERR header, code 0xFFFF).
    async fn read(&mut self) -> Result<Packet, BackendError> {
        loop {
            let p = read_packet(&mut self.stream, &mut self.read_buf, CONTROL_MAX_PAYLOAD).await?;
            let progress = self.capabilities & MARIADB_CLIENT_PROGRESS != 0
                && p.payload.starts_with(&[ERR_HEADER, 0xff, 0xff]);
            if !progress {
                return Ok(p);
            }
        }
    }

    fn expect_ok(&mut self, pkt: &Packet) -> Result<OkPacket, BackendError> {
        match pkt.payload.first().copied() {
            Some(OK_HEADER) => {
                let ok = OkPacket::parse(&pkt.payload, self.capabilities)?;
                self.status = ok.status;
                Ok(ok)
            }
            Some(ERR_HEADER) => Err(ErrPacket::parse(&pkt.payload)?.into()),
            other => Err(BackendError::Unexpected(format!(
                "expected OK, got {other:?}"
            ))),
        }
    }

    /// Reads one result (OK or result set); returns it with the status that ends it.
    async fn read_result(&mut self) -> Result<(QueryResult, u16), BackendError> {
        let first = self.read().await?;
        match first.payload.first().copied() {
            Some(OK_HEADER) | Some(ERR_HEADER) => {
                let ok = self.expect_ok(&first)?;
                let status = ok.status;
                return Ok((QueryResult::Ok(ok), status));
            }
            Some(0xfb) => {
                return Err(BackendError::Unsupported("LOCAL INFILE request".into()));
            }
            _ => {}
        }
        let caps = self.capabilities;
        let mut r = Reader::new(&first.payload);
        let mut metadata_follows = true;
        if caps & CLIENT_OPTIONAL_RESULTSET_METADATA != 0 {
            metadata_follows = r.u8()? != 0;
        }
        let count = usize::try_from(r.lenenc_int()?).unwrap_or(usize::MAX);
        if caps & MARIADB_CLIENT_CACHE_METADATA != 0 && !r.is_empty() {
            metadata_follows = r.u8()? != 0;
        }
        if count == 0 || count > 4096 {
            return Err(BackendError::Unexpected(format!("column count {count}")));
        }
        let mut result = TextResult::default();
        if metadata_follows {
            for _ in 0..count {
                let def = self.read().await?;
                result.columns.push(column_name(&def.payload)?);
            }
        } else {
            result.columns = (0..count).map(|i| format!("column{i}")).collect();
        }
        if caps & CLIENT_DEPRECATE_EOF == 0 {
            let eof = self.read().await?;
            if !is_eof_packet(&eof.payload) {
                return Err(BackendError::Unexpected(
                    "missing EOF after column definitions".into(),
                ));
            }
        }
        loop {
            let row = self.read().await?;
            let p = &row.payload[..];
            let status = match p.first().copied() {
                Some(ERR_HEADER) => return Err(ErrPacket::parse(p)?.into()),
                Some(EOF_HEADER) if caps & CLIENT_DEPRECATE_EOF != 0 && is_ok_terminator(p) => {
                    OkPacket::parse(p, caps)?.status
                }
                Some(EOF_HEADER) if caps & CLIENT_DEPRECATE_EOF == 0 && is_eof_packet(p) => {
                    EofPacket::parse(p)?.status
                }
                _ => {
                    result.rows.push(text_row(p, count)?);
                    continue;
                }
            };
            self.status = status;
            return Ok((QueryResult::Rows(result), status));
        }
    }
}

/// The column alias from a column definition packet.
fn column_name(def: &[u8]) -> Result<String, BackendError> {
    let mut r = Reader::new(def);
    for _ in 0..4 {
        r.lenenc_bytes()?; // catalog, schema, table alias, table
    }
    Ok(String::from_utf8_lossy(r.lenenc_bytes()?).into_owned())
}

fn text_row(payload: &[u8], count: usize) -> Result<Vec<Option<String>>, BackendError> {
    let mut r = Reader::new(payload);
    (0..count)
        .map(|_| {
            Ok(r.lenenc_bytes_or_null()?
                .map(|v| String::from_utf8_lossy(v).into_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_column_name_and_rows() {
        let def =
            b"\x03def\x00\x00\x00\x01x\x00\x0c\x3f\x00\x01\x00\x00\x00\x08\x81\x00\x00\x00\x00";
        assert_eq!(column_name(def).unwrap(), "x");
        assert!(column_name(b"\x03def").is_err());
        assert_eq!(
            text_row(b"\x011\xfb\x00", 3).unwrap(),
            vec![Some("1".into()), None, Some(String::new())]
        );
        assert!(text_row(b"\x011", 2).is_err());
    }

    #[test]
    fn scalar_and_column_lookup() {
        let r = TextResult {
            columns: vec!["Slave_IO_Running".into()],
            rows: vec![vec![Some("Yes".into())]],
        };
        assert_eq!(r.scalar(), Some("Yes"));
        assert_eq!(r.column("slave_io_running"), Some(0));
        assert_eq!(TextResult::default().scalar(), None);
    }
}
