//! Connections through the proxy (or straight to a server), every step under a timeout.

use std::future::Future;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};

use super::mode::Mode;

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub database: String,
    pub timeout: Duration,
}

impl Endpoint {
    /// `host:port` (an IPv6 host in brackets) plus credentials.
    pub fn parse(
        addr: &str,
        user: &str,
        password: &str,
        database: &str,
        timeout: Duration,
    ) -> Result<Endpoint> {
        let (host, port) = addr
            .rsplit_once(':')
            .with_context(|| format!("`{addr}` is not host:port"))?;
        let port = port
            .parse()
            .with_context(|| format!("`{addr}`: bad port"))?;
        Ok(Endpoint {
            host: host.trim_start_matches('[').trim_end_matches(']').into(),
            port,
            user: user.into(),
            password: password.into(),
            database: database.into(),
            timeout,
        })
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn opts(&self) -> Opts {
        OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(Some(self.password.clone()))
            .db_name(Some(self.database.clone()))
            // Otherwise mysql_async asks the server for its unix socket and reconnects there,
            // around the proxy: every read would come from the primary and prove nothing.
            .prefer_socket(false)
            .into()
    }

    pub async fn connect(&self) -> Result<Conn> {
        timed(self.timeout, Conn::new(self.opts()))
            .await
            .with_context(|| format!("cannot connect to {}", self.addr()))
    }

    /// A proxy session in `mode`. A refused mode is an error naming the statement. For
    /// `direct` (this endpoint is then the primary) nothing is set: a plain session.
    pub async fn session(&self, mode: Mode) -> Result<Conn> {
        let mut conn = self.connect().await?;
        if let Some(sql) = mode.set_sql() {
            query_drop(&mut conn, &sql, self.timeout).await?;
        }
        Ok(conn)
    }
}

/// Runs `fut` for at most `limit`: a statement that hangs becomes an error, never a stuck run.
pub async fn timed<T, E>(limit: Duration, fut: impl Future<Output = Result<T, E>>) -> Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(anyhow::Error::from),
        Err(_) => Err(anyhow!("timed out after {limit:?}")),
    }
}

pub async fn query_drop(conn: &mut Conn, sql: &str, limit: Duration) -> Result<()> {
    timed(limit, conn.query_drop(sql))
        .await
        .with_context(|| format!("`{sql}`"))
}

/// The first row of `sql`, decoded as `T`.
pub async fn query_first<T>(conn: &mut Conn, sql: &str, limit: Duration) -> Result<Option<T>>
where
    T: mysql_async::prelude::FromRow + Send + 'static,
{
    timed(limit, conn.query_first::<T, _>(sql))
        .await
        .with_context(|| format!("`{sql}`"))
}

/// Closes politely, without waiting long for a proxy or server that stopped answering.
pub async fn close(conn: Conn, limit: Duration) {
    let _ = tokio::time::timeout(limit, conn.disconnect()).await;
}

/// A SQL string literal (the token is opaque text from the proxy).
pub fn quote(s: &str) -> String {
    lagless_sql::quote_literal(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_and_quote() {
        let t = Duration::from_secs(1);
        let e = Endpoint::parse("127.0.0.1:6033", "app", "pw", "app", t).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 6033));
        let e = Endpoint::parse("[::1]:6033", "app", "pw", "app", t).unwrap();
        assert_eq!(e.host, "::1");
        assert!(Endpoint::parse("localhost", "a", "b", "c", t).is_err());
        assert_eq!(quote("0-1-12"), "'0-1-12'");
        assert_eq!(quote("a'b\\c"), "'a''b\\\\c'");
    }
}
