//! The routes: one module per endpoint, each a thin handler over [`crate::views`] or
//! [`crate::explain`], and [`error`] for the JSON error answers.

mod backends;
mod drain;
pub mod error;
mod explain;
mod health;
mod replication;
mod status;
mod switchover;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use lagless_proxy::ProxyContext;

/// Every route, with the JSON 404 and 405 answers, over the proxy's shared state. Serve it with
/// [`crate::serve`], or call it directly in tests (`tower::ServiceExt::oneshot`).
pub fn router(ctx: Arc<ProxyContext>) -> Router {
    Router::new()
        .route("/health", get(health::get))
        .route("/backends", get(backends::get))
        .route("/replication", get(replication::get))
        .route("/status", get(status::get))
        .route("/explain", get(explain::get))
        .route("/switchover", post(switchover::post))
        .route("/drain", post(drain::drain))
        .route("/undrain", post(drain::undrain))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(ctx)
}
