//! `GET /replication`: the replication monitor's latest view of every server.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use lagless_proxy::ProxyContext;
use tokio::time::Instant;

use crate::views::Replication;

pub async fn get(State(ctx): State<Arc<ProxyContext>>) -> Json<Replication> {
    Json(Replication::collect(&ctx, Instant::now()))
}
