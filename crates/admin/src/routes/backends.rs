//! `GET /backends`: every configured server with its health and counters.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use lagless_proxy::ProxyContext;
use tokio::time::Instant;

use crate::views::Backends;

pub async fn get(State(ctx): State<Arc<ProxyContext>>) -> Json<Backends> {
    let view = ctx.cluster.view(Instant::now());
    Json(Backends::collect(&ctx, &view))
}
