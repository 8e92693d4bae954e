//! Errors of the actions.

use std::time::Duration;

use lagless_backend::BackendError;
use lagless_routing::gtid::GtidError;

use super::events::{Event, Step};

/// What went wrong in one step.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("address {0:?} is not host:port")]
    Address(String),
    #[error("connect: {0}")]
    Connect(#[source] BackendError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// An ERR from the server, or a lost connection.
    #[error("{0}")]
    Query(#[source] BackendError),
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    #[error("GTID position {text:?}: {source}")]
    Gtid {
        text: String,
        #[source]
        source: GtidError,
    },
    /// A condition the action needs does not hold (e.g. the switchover's target did not catch
    /// up in time, a repointed replica's IO thread failed).
    #[error("{0}")]
    Refused(String),
}

/// An action failed at `step` on `server`. `events` holds every step up to and including the
/// failed one, so the caller sees what was already changed.
#[derive(Debug, thiserror::Error)]
#[error("{step} on {server} failed: {cause}")]
pub struct FailoverError {
    pub server: String,
    pub step: Step,
    #[source]
    pub cause: Box<StepError>,
    pub events: Vec<Event>,
}

impl FailoverError {
    pub(crate) fn new(server: &str, step: Step, cause: StepError) -> Self {
        FailoverError {
            server: server.to_string(),
            step,
            cause: Box::new(cause),
            events: Vec::new(),
        }
    }

    pub(crate) fn with_events(mut self, events: Vec<Event>) -> Self {
        self.events = events;
        self
    }
}
