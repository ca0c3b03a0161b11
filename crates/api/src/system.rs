//! `/ping`, `/healthz`, `/readyz`, `/metrics`, `/openapi.json`, `/frames.schema.json`.

use actix_web::{HttpResponse, http::header, web};
use chat_model::{Envelope, ErrorCode};
use serde_json::json;

use crate::{middleware::RequestLog, state::AppState};

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

    /// `GET /readyz`: 200 when the send path works (MongoDB answers, every worker runs), the
    /// node hears the others (its Redis pub/sub subscription is up, or Redis is down for every
    /// node alike) and the server is not shutting down, with each store's state (MySQL or Redis
    /// down is degraded, not unready); else 503 naming what is not.
    pub async fn readyz(state: web::Data<AppState>, log: RequestLog) -> HttpResponse {
        let readiness = state.services.health.check().await;
        let closing = state.services.chat.is_closing();
        use chat_service::health::Store;
        if readiness.is_ready() && !closing {
            let status = |s: Store| if readiness.stores.contains(&s) { "down" } else { "ok" };
            return HttpResponse::Ok().json(Envelope::ok(json!({
                "mysql": status(Store::Mysql),
                "redis": status(Store::Redis),
                "mongodb": status(Store::Mongo),
                "pubsub": if readiness.hears_other_nodes { "ok" } else { "down" },
            })));
        }
        let mut down: Vec<String> = readiness.stores.iter().map(ToString::to_string).collect();
        down.extend(readiness.workers.iter().map(|w| format!("worker {w}")));
        if readiness.deaf_alone() {
            down.push("pub/sub from the other nodes".into());
        }
        let code = if closing { ErrorCode::ShuttingDown } else { ErrorCode::NotReady };
        let error = if closing { "shutting down".to_string() } else { format!("not answering: {}", down.join(", ")) };
        slog::warn!(log.0, "not ready"; "down" => down.join(","), "closing" => closing);
        HttpResponse::ServiceUnavailable().json(Envelope::<()>::error(503, code, "not ready", error))
    }

    /// `GET /metrics`: every metric in the Prometheus (OpenMetrics) text format.
    pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &state.metrics).is_err() {
            return HttpResponse::InternalServerError().finish();
        }
        HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8"))
            .body(text)
    }

    /// `GET /openapi.json`: the description of every HTTP route.
    pub async fn openapi(descriptions: web::Data<Descriptions>) -> HttpResponse {
        HttpResponse::Ok().content_type("application/json").body(descriptions.openapi.clone())
    }

    /// `GET /frames.schema.json`: the JSON Schema of the WebSocket frames.
    pub async fn frames_schema(descriptions: web::Data<Descriptions>) -> HttpResponse {
        HttpResponse::Ok().content_type("application/schema+json").body(descriptions.frames.clone())
    }
}

/// The two descriptions, rendered once at start-up.
#[derive(Debug, Clone)]
pub struct Descriptions {
    openapi: String,
    frames: String,
}

impl Default for Descriptions {
    fn default() -> Self {
        Descriptions {
            openapi: crate::openapi::openapi_json().to_string(),
            frames: crate::openapi::frames_schema_json().to_string(),
        }
    }
}
