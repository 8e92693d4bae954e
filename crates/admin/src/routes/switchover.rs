//! `POST /switchover?to=NAME&cluster=NAME`: a planned change of primary with no lost write.
//! Answers `{"report": "..."}`, or `{"error": "..."}` with 409 when it could not be done.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use lagless_proxy::ProxyContext;
use serde::{Deserialize, Serialize};

use super::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchoverRequest {
    /// The server to promote (default: the best candidate).
    pub to: Option<String>,
    /// The cluster (default: the first).
    pub cluster: Option<String>,
}

#[derive(Serialize)]
pub struct SwitchoverAnswer {
    pub report: String,
}

pub async fn post(
    State(ctx): State<Arc<ProxyContext>>,
    query: Result<Query<SwitchoverRequest>, QueryRejection>,
) -> Result<Json<SwitchoverAnswer>, ApiError> {
    let Query(req) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "{} (parameters: to=SERVER, cluster=NAME)",
            e.body_text()
        ))
    })?;
    lagless_proxy::failover_driver::switchover(&ctx, req.cluster.as_deref(), req.to.as_deref())
        .await
        .map(|report| Json(SwitchoverAnswer { report }))
        .map_err(|message| ApiError {
            status: StatusCode::CONFLICT,
            message,
        })
}
