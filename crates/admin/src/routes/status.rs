//! `GET /status`: the proxy's counters and a summary of its configuration.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use lagless_proxy::ProxyContext;

use crate::views::Status;

pub async fn get(State(ctx): State<Arc<ProxyContext>>) -> Json<Status> {
    Json(Status::collect(&ctx))
}
