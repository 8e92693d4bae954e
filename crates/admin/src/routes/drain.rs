//! `POST /drain?server=NAME` and `POST /undrain?server=NAME` (optional `cluster=NAME`): take a
//! replica out of the read pool (sessions using it move at their next statement) or put it back
//! (refused with 409 until the monitor sees it reachable and caught up).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use lagless_proxy::ProxyContext;
use lagless_routing::ServerRef;
use serde::{Deserialize, Serialize};

use super::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainRequest {
    pub server: String,
    pub cluster: Option<String>,
}

#[derive(Serialize)]
pub struct DrainAnswer {
    pub server: String,
    pub drained: bool,
}

pub async fn drain(
    state: State<Arc<ProxyContext>>,
    query: Result<Query<DrainRequest>, QueryRejection>,
) -> Result<Json<DrainAnswer>, ApiError> {
    set(state, query, true)
}

pub async fn undrain(
    state: State<Arc<ProxyContext>>,
    query: Result<Query<DrainRequest>, QueryRejection>,
) -> Result<Json<DrainAnswer>, ApiError> {
    set(state, query, false)
}

fn set(
    State(ctx): State<Arc<ProxyContext>>,
    query: Result<Query<DrainRequest>, QueryRejection>,
    drained: bool,
) -> Result<Json<DrainAnswer>, ApiError> {
    let Query(req) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "{} (parameters: server=NAME, cluster=NAME)",
            e.body_text()
        ))
    })?;
    let conflict = |message: String| ApiError {
        status: StatusCode::CONFLICT,
        message,
    };
    let cluster = match &req.cluster {
        Some(n) => ctx
            .config
            .clusters
            .iter()
            .position(|c| c.name == *n)
            .ok_or_else(|| ApiError::bad_request(format!("no cluster is named `{n}`")))?,
        None => 0,
    };
    let server = ctx.config.clusters[cluster]
        .servers
        .iter()
        .position(|s| s.name == req.server)
        .ok_or_else(|| ApiError::bad_request(format!("no server is named `{}`", req.server)))?;
    ctx.cluster
        .set_drained(ServerRef { cluster, server }, drained)
        .map_err(conflict)?;
    Ok(Json(DrainAnswer {
        server: req.server,
        drained,
    }))
}
