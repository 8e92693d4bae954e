//! `GET /health`: the process answers.

use axum::Json;

use crate::views::Health;

pub async fn get() -> Json<Health> {
    Json(Health { status: "ok" })
}
