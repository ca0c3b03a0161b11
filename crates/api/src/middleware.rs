//! The middleware every request goes through, in one place: its request id (the client's
//! `X-Request-Id` when it is a sensible one, else a new UUID), answered in the response's
//! `X-Request-Id` and carried by every record of the request ([`RequestLog`]); the log of the
//! cause of a server-side failure; and a debug record of each request (its path, never its
//! query, which may hold a token).

use std::{future::Future, pin::Pin, time::Instant};

use actix_web::{
    FromRequest, HttpMessage as _, HttpRequest,
    body::MessageBody,
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
    web,
};
use slog::{Logger, o};

use crate::{ApiError, error::log_cause, state::AppState};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The logger of one request: the application's, with `component` and `request_id`.
#[derive(Debug, Clone)]
pub struct RequestLog(pub Logger);

impl FromRequest for RequestLog {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let log = req.extensions().get::<RequestLog>().cloned().unwrap_or_else(|| {
            let base = req.app_data::<web::Data<AppState>>().map(|s| s.log.clone());
            RequestLog(base.unwrap_or_else(|| Logger::root(slog::Discard, o!())))
        });
        Box::pin(async move { Ok(log) })
    }
}

/// A client's request id is kept when it is 1 to 128 of `A-Z a-z 0-9 - _ . : /`; anything
/// else (which could forge log lines or headers) is replaced.
fn request_id(req: &ServiceRequest) -> String {
    let given = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::trim);
    match given {
        Some(id)
            if (1..=128).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b)) =>
        {
            id.to_string()
        }
        _ => uuid::Uuid::new_v4().to_string(),
    }
}

/// `App::wrap(from_fn(request_context))`.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let id = request_id(&req);
    let base = req.app_data::<web::Data<AppState>>().map(|s| s.log.clone());
    let log = base
        .unwrap_or_else(|| Logger::root(slog::Discard, o!()))
        .new(o!("component" => "http", "request_id" => id.clone()));
    req.extensions_mut().insert(RequestLog(log.clone()));
    let (method, path) = (req.method().to_string(), req.path().to_string());
    let started = Instant::now();
    let mut res = next.call(req).await?;
    if let Some(api) = res.response().error().and_then(|e| e.as_error::<ApiError>()) {
        log_cause(&log, api);
    }
    slog::debug!(log, "request"; "method" => method, "path" => path,
        "status" => res.status().as_u16(), "ms" => started.elapsed().as_millis() as u64);
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}
