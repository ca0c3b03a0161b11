//! The one place where an error becomes what a client sees: an HTTP status with the JSON
//! envelope, or a WebSocket error frame. The cause goes to the log, never to the client.

use actix_web::{HttpResponse, ResponseError, http::StatusCode, http::header};
use chat_model::{Envelope, ReplyCode, ServerFrame};
use chat_service::ServiceError;
use slog::{Logger, error, warn};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The request itself is malformed (body, query); the text says how.
    #[error("{0}")]
    BadRequest(String),
    #[error("no such route")]
    NoRoute,
    #[error("websocket handshake: {0}")]
    Handshake(String),
}

/// What a client is told: status, summary, reason.
fn client_view(err: &ApiError) -> (StatusCode, &'static str, String) {
    use ServiceError as S;
    match err {
        ApiError::BadRequest(why) => (StatusCode::BAD_REQUEST, "invalid request", why.clone()),
        ApiError::Handshake(why) => (StatusCode::BAD_REQUEST, "invalid request", why.clone()),
        ApiError::NoRoute => (StatusCode::NOT_FOUND, "not found", "no such route".into()),
        ApiError::Service(e) => match e {
            S::Validation { .. }
            | S::SelfChat
            | S::EmptyContent
            | S::ContentTooLarge { .. }
            | S::ClientMsgIdReused(_) => (StatusCode::BAD_REQUEST, "invalid request", e.to_string()),
            S::UserNameTaken => (StatusCode::CONFLICT, "conflict", e.to_string()),
            S::InvalidCredentials | S::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()),
            S::UserNotFound => (StatusCode::NOT_FOUND, "not found", e.to_string()),
            S::NoReplyLimit { .. } => (StatusCode::TOO_MANY_REQUESTS, "refused", e.to_string()),
            S::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string()),
            S::Dao(_) | S::Internal(_) => match e.unavailable_store() {
                Some(store) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store unavailable",
                    format!("{store} is unavailable; nothing was changed, try again"),
                ),
                None => (StatusCode::INTERNAL_SERVER_ERROR, "internal error", "internal error".into()),
            },
        },
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        client_view(self).0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, msg, reason) = client_view(self);
        let mut res = HttpResponse::build(status);
        if status == StatusCode::UNAUTHORIZED {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        res.json(Envelope::error(status.as_u16(), msg, reason))
    }
}

/// Logs what the client is not told: the cause of a server-side failure.
pub fn log_cause(log: &Logger, err: &ApiError) {
    let status = client_view(err).0;
    if status.is_server_error() {
        error!(log, "request failed"; "status" => status.as_u16(), "cause" => %err);
    }
}

/// The WebSocket error frame for a failed request on a connection (the connection stays open).
pub fn error_frame(log: &Logger, err: &ServiceError) -> ServerFrame {
    use ServiceError as S;
    let (code, text) = match err {
        S::EmptyContent => (ReplyCode::EmptyContent, err.to_string()),
        S::ContentTooLarge { .. } => (ReplyCode::ContentTooLarge, err.to_string()),
        S::NoReplyLimit { .. } => (ReplyCode::NoReplyLimit, err.to_string()),
        S::Unauthenticated => return ServerFrame::session_ended(),
        S::Validation { .. } | S::SelfChat | S::ClientMsgIdReused(_) => (ReplyCode::InvalidFrame, err.to_string()),
        S::Busy => (ReplyCode::Busy, err.to_string()),
        // the rest are refused before the upgrade (HTTP statuses), or a store failing
        S::UserNameTaken | S::InvalidCredentials | S::UserNotFound | S::Dao(_) | S::Internal(_) => {
            match err.unavailable_store() {
                Some(store) => {
                    warn!(log, "store unavailable"; "store" => %store, "cause" => %err);
                    (
                        ReplyCode::StoreUnavailable,
                        format!(
                            "{store} is unavailable; try again (a resend with the same client_msg_id is never stored twice)"
                        ),
                    )
                }
                None => {
                    error!(log, "request failed"; "cause" => %err);
                    (ReplyCode::Internal, "internal error; nothing was stored".into())
                }
            }
        }
    };
    ServerFrame::new(code, text)
}

/// A JSON body, query or path that does not parse: 400 in the envelope.
pub fn bad_request(err: impl std::fmt::Display) -> actix_web::Error {
    ApiError::BadRequest(err.to_string()).into()
}

/// `web::JsonConfig` for every route: small bodies, errors in the envelope.
pub fn json_config() -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default().limit(16 * 1024).error_handler(|e, _| bad_request(e))
}

/// `web::QueryConfig` for every route: errors in the envelope.
pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default().error_handler(|e, _| bad_request(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let s = |e: ServiceError| client_view(&ApiError::Service(e)).0.as_u16();
        assert_eq!(s(ServiceError::Validation { field: "password".into(), message: "x".into() }), 400);
        assert_eq!(s(ServiceError::UserNameTaken), 409);
        assert_eq!(s(ServiceError::InvalidCredentials), 401);
        assert_eq!(s(ServiceError::Unauthenticated), 401);
        assert_eq!(s(ServiceError::UserNotFound), 404);
        assert_eq!(s(ServiceError::Internal("secret detail".into())), 500);
        assert_eq!(client_view(&ApiError::Service(ServiceError::Internal("secret detail".into()))).2, "internal error");
    }
}
