//! A control connection for the actions: every call bounded by a timeout and recorded as an
//! event. After a timeout or a lost connection the connection is out of sync: the action fails
//! and drops it.

use std::time::Duration;

use lagless_backend::{login, Login, QueryResult, TextResult};
use lagless_routing::gtid::MariaPos;
use tokio::time::{timeout, Instant};

use super::error::{FailoverError, StepError};
use super::events::{Outcome, Recorder, Step};
use super::{FailoverOptions, Member};

/// A logged-in control connection to one server.
pub(crate) struct Ctl {
    pub(crate) server: String,
    login: Login,
    statement_timeout: Duration,
}

impl Ctl {
    /// Connects and logs in with the admin account (bounded by the connect timeout), then sets
    /// `sql_mode = ''` for this session so that string literals quote the same everywhere.
    pub(crate) async fn connect(
        member: &Member,
        opts: &FailoverOptions,
        rec: &mut Recorder,
    ) -> Result<Ctl, FailoverError> {
        let started = Instant::now();
        let options = crate::login::control_login(
            &member.address,
            &opts.admin.user,
            &opts.admin.password,
            "lagless-failover",
            opts.connect_timeout,
            1 << 24,
        );
        let result = match timeout(opts.connect_timeout, login(&options)).await {
            Ok(Ok(login)) => Ok(login),
            Ok(Err(e)) => Err(StepError::Connect(e)),
            Err(_) => Err(StepError::Timeout(opts.connect_timeout)),
        };
        let mut ctl = match result {
            Ok(login) => Ctl {
                server: member.name.clone(),
                login,
                statement_timeout: opts.statement_timeout,
            },
            Err(cause) => {
                rec.record(
                    &member.name,
                    Step::Connect,
                    None,
                    started,
                    Outcome::Failed(cause.to_string()),
                );
                return Err(FailoverError::new(&member.name, Step::Connect, cause));
            }
        };
        let set = "SET SESSION sql_mode = ''";
        let result = ctl.bounded(set, opts.statement_timeout).await;
        let outcome = match &result {
            Ok(_) => Outcome::Done,
            Err(e) => Outcome::Failed(e.to_string()),
        };
        rec.record(&member.name, Step::Connect, None, started, outcome);
        result.map_err(|cause| FailoverError::new(&member.name, Step::Connect, cause))?;
        Ok(ctl)
    }

    async fn bounded(&mut self, sql: &str, after: Duration) -> Result<QueryResult, StepError> {
        match timeout(after, self.login.query(sql)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(StepError::Query(e)),
            Err(_) => Err(StepError::Timeout(after)),
        }
    }

    /// Runs `sql` within `after`, recording it as `step` (showing `shown` instead of the
    /// statement when given, to hide a password).
    pub(crate) async fn run_within(
        &mut self,
        rec: &mut Recorder,
        step: Step,
        sql: &str,
        shown: Option<&str>,
        after: Duration,
    ) -> Result<QueryResult, FailoverError> {
        let started = Instant::now();
        let result = self.bounded(sql, after).await;
        let outcome = match &result {
            Ok(_) => Outcome::Done,
            Err(e) => Outcome::Failed(e.to_string()),
        };
        rec.record(
            &self.server,
            step,
            Some(shown.unwrap_or(sql).to_string()),
            started,
            outcome,
        );
        result.map_err(|cause| FailoverError::new(&self.server, step, cause))
    }

    /// Runs a statement within the statement timeout.
    pub(crate) async fn exec(
        &mut self,
        rec: &mut Recorder,
        step: Step,
        sql: &str,
    ) -> Result<(), FailoverError> {
        let after = self.statement_timeout;
        self.run_within(rec, step, sql, None, after).await.map(drop)
    }

    /// Runs a query within the statement timeout and returns its rows.
    pub(crate) async fn rows(
        &mut self,
        rec: &mut Recorder,
        step: Step,
        sql: &str,
    ) -> Result<TextResult, FailoverError> {
        let after = self.statement_timeout;
        Ok(rows(self.run_within(rec, step, sql, None, after).await?))
    }

    /// Like [`Ctl::rows`], without recording (for polls).
    pub(crate) async fn rows_quiet(&mut self, sql: &str) -> Result<TextResult, StepError> {
        let after = self.statement_timeout;
        self.bounded(sql, after).await.map(rows)
    }

    /// Reads GTID variables (each named `@@name`) in one `SELECT`, as positions.
    pub(crate) async fn positions<const N: usize>(
        &mut self,
        rec: &mut Recorder,
        names: [&str; N],
    ) -> Result<[MariaPos; N], FailoverError> {
        let sql = format!(
            "SELECT {}",
            names
                .iter()
                .map(|n| format!("@@{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let result = self.rows(rec, Step::ReadPositions, &sql).await?;
        let fail = |cause| FailoverError::new(&self.server, Step::ReadPositions, cause);
        let row = result
            .rows
            .first()
            .ok_or_else(|| fail(StepError::Unexpected(format!("no row from {sql}"))))?;
        let mut out: [MariaPos; N] = std::array::from_fn(|_| MariaPos::new());
        for (i, slot) in out.iter_mut().enumerate() {
            let text = row.get(i).cloned().flatten().unwrap_or_default();
            *slot = parse_pos(&text).map_err(fail)?;
        }
        Ok(out)
    }
}

fn rows(r: QueryResult) -> TextResult {
    match r {
        QueryResult::Rows(rows) => rows,
        QueryResult::Ok(_) => TextResult::default(),
    }
}

pub(crate) fn parse_pos(text: &str) -> Result<MariaPos, StepError> {
    MariaPos::parse(text).map_err(|source| StepError::Gtid {
        text: text.to_string(),
        source,
    })
}
