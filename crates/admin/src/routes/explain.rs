//! `GET /explain?sql=...`: where a new session would send a statement now, and why.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use lagless_proxy::ProxyContext;
use tokio::time::Instant;

use super::error::ApiError;
use crate::explain::{explain, ExplainRequest, Explanation};

pub async fn get(
    State(ctx): State<Arc<ProxyContext>>,
    query: Result<Query<ExplainRequest>, QueryRejection>,
) -> Result<Json<Explanation>, ApiError> {
    let Query(req) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "{} (parameters: sql=STATEMENT, optional in_transaction=true|false, user=NAME, schema=NAME)",
            e.body_text()
        ))
    })?;
    if req.sql.trim().is_empty() {
        return Err(ApiError::bad_request("sql must not be empty"));
    }
    let view = ctx.cluster.view(Instant::now());
    Ok(Json(explain(&ctx.config, &view, &req, ctx.now_ms())))
}
