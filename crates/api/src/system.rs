//! `/ping`, `/healthz`, `/readyz`.

use actix_web::{HttpResponse, web};
use chat_model::Envelope;
use serde_json::json;

use crate::state::AppState;

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemApi;

impl SystemApi {
    /// `GET /ping` → "SUCCESS", as the original.
    pub async fn ping() -> HttpResponse {
        HttpResponse::Ok().json(Envelope::ok("SUCCESS"))
    }

    /// `GET /healthz`: the process runs.
    pub async fn healthz() -> HttpResponse {
        HttpResponse::Ok().json(Envelope::ok("alive"))
    }

    /// `GET /readyz`: 200 when MySQL, Redis and MongoDB all answer; else 503 naming those that do not.
    pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
        let down = state.services.health.unready().await;
        if down.is_empty() {
            return HttpResponse::Ok().json(Envelope::ok(json!({"mysql": "ok", "redis": "ok", "mongodb": "ok"})));
        }
        let names: Vec<String> = down.iter().map(ToString::to_string).collect();
        slog::warn!(state.log, "not ready"; "down" => names.join(","));
        HttpResponse::ServiceUnavailable().json(Envelope::<()>::error(
            503,
            "not ready",
            format!("not answering: {}", names.join(", ")),
        ))
    }
}
