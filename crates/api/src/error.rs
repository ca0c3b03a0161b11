//! The one place where an error becomes what a client sees: an HTTP status with the JSON
//! envelope, or a WebSocket error frame. The cause goes to the log, never to the client.

use actix_web::{HttpResponse, ResponseError, http::StatusCode, http::header};
use chat_model::{Envelope, ErrorCode, ReplyCode, ServerFrame};
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
    /// The path exists, not with this method; the methods it takes (`Allow`).
    #[error("method not allowed")]
    MethodNotAllowed(String),
    #[error("websocket handshake: {0}")]
    Handshake(String),
    /// The request is understood and refused (a WebSocket from a page of another origin).
    #[error("{0}")]
    Forbidden(String),
}

/// What a client is told.
struct ClientView {
    status: StatusCode,
    code: ErrorCode,
    msg: &'static str,
    reason: String,
    /// The request field at fault.
    field: Option<String>,
    /// Seconds until trying again may succeed (`Retry-After`).
    retry_after: Option<u64>,
}

fn view(status: StatusCode, code: ErrorCode, msg: &'static str, reason: impl Into<String>) -> ClientView {
    ClientView { status, code, msg, reason: reason.into(), field: None, retry_after: None }
}

fn client_view(err: &ApiError) -> ClientView {
    use ErrorCode as C;
    use ServiceError as S;
    const BAD: StatusCode = StatusCode::BAD_REQUEST;
    let invalid = |code: ErrorCode, why: String| view(BAD, code, "invalid request", why);
    match err {
        ApiError::BadRequest(why) => invalid(C::MalformedRequest, why.clone()),
        ApiError::Handshake(why) => invalid(C::NotWebsocket, why.clone()),
        ApiError::NoRoute => view(StatusCode::NOT_FOUND, C::RouteNotFound, "not found", "no such route"),
        ApiError::MethodNotAllowed(allow) => view(
            StatusCode::METHOD_NOT_ALLOWED,
            C::MethodNotAllowed,
            "method not allowed",
            format!("this route takes {allow}"),
        ),
        ApiError::Forbidden(why) => view(StatusCode::FORBIDDEN, C::OriginNotAllowed, "forbidden", why.clone()),
        ApiError::Service(e) => match e {
            S::Validation { field, .. } => {
                ClientView { field: Some(field.clone()), ..invalid(C::InvalidField, e.to_string()) }
            }
            S::SelfChat => invalid(C::SelfChat, e.to_string()),
            // sends are frames, not HTTP requests: these reach HTTP only through a misuse
            S::EmptyContent | S::ContentTooLarge { .. } | S::ClientMsgIdReused(_) | S::ClientMsgIdConflict(_) => {
                invalid(C::InvalidField, e.to_string())
            }
            S::UnknownUsers(_) => invalid(C::UnknownUsers, e.to_string()),
            S::TooManyMembers { .. } => invalid(C::TooManyMembers, e.to_string()),
            S::GroupNotFound => view(StatusCode::NOT_FOUND, C::GroupNotFound, "not found", e.to_string()),
            S::NotMember => view(StatusCode::FORBIDDEN, C::NotMember, "forbidden", e.to_string()),
            S::NotAllowed(_) => view(StatusCode::FORBIDDEN, C::NotAllowed, "forbidden", e.to_string()),
            S::UserNameTaken => ClientView {
                field: Some("user_name".into()),
                ..view(StatusCode::CONFLICT, C::UserNameTaken, "conflict", e.to_string())
            },
            S::InvalidCredentials => {
                view(StatusCode::UNAUTHORIZED, C::InvalidCredentials, "unauthorized", e.to_string())
            }
            S::Unauthenticated => view(StatusCode::UNAUTHORIZED, C::Unauthenticated, "unauthorized", e.to_string()),
            S::UserNotFound => view(StatusCode::NOT_FOUND, C::UserNotFound, "not found", e.to_string()),
            S::NoReplyLimit { .. } => view(StatusCode::TOO_MANY_REQUESTS, C::NoReplyLimit, "refused", e.to_string()),
            S::RateLimited { retry_after_ms } => ClientView {
                retry_after: Some(retry_after_ms.div_ceil(1000).max(1)),
                ..view(StatusCode::TOO_MANY_REQUESTS, C::RateLimited, "too many requests", e.to_string())
            },
            S::TooManyConnections { .. } => ClientView {
                retry_after: Some(1),
                ..view(StatusCode::TOO_MANY_REQUESTS, C::TooManyConnections, "too many connections", e.to_string())
            },
            S::Busy => ClientView {
                retry_after: Some(1),
                ..view(StatusCode::SERVICE_UNAVAILABLE, C::Busy, "busy", e.to_string())
            },
            S::ShuttingDown => ClientView {
                retry_after: Some(1),
                ..view(
                    StatusCode::SERVICE_UNAVAILABLE,
                    C::ShuttingDown,
                    "shutting down",
                    "the server is shutting down; try again",
                )
            },
            S::Dao(_) | S::Internal(_) | S::OutcomeUnknown => match e.unavailable_store() {
                Some(store) => ClientView {
                    retry_after: Some(1),
                    ..view(
                        StatusCode::SERVICE_UNAVAILABLE,
                        C::StoreUnavailable,
                        "store unavailable",
                        format!("{store} is unavailable; nothing was changed, try again"),
                    )
                },
                None => view(StatusCode::INTERNAL_SERVER_ERROR, C::Internal, "internal error", "internal error"),
            },
        },
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        client_view(self).status
    }

    fn error_response(&self) -> HttpResponse {
        let v = client_view(self);
        let mut res = HttpResponse::build(v.status);
        if v.status == StatusCode::UNAUTHORIZED {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if let ApiError::MethodNotAllowed(allow) = self {
            res.insert_header((header::ALLOW, allow.clone()));
        }
        if let Some(secs) = v.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.json(
            Envelope::error(v.status.as_u16(), v.code, v.msg, v.reason)
                .with_field(v.field)
                .with_retry_after(v.retry_after),
        )
    }
}

/// Logs what the client is not told: the cause of a server-side failure.
pub fn log_cause(log: &Logger, err: &ApiError) {
    let status = client_view(err).status;
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
        // on a device connection, a `to` that names nobody
        S::UserNotFound => (ReplyCode::InvalidFrame, "`to` names no user".to_string()),
        S::GroupNotFound => (ReplyCode::InvalidFrame, "`group` names no group (or it was dissolved)".to_string()),
        S::NotMember | S::NotAllowed(_) => (ReplyCode::NotMember, err.to_string()),
        S::UnknownUsers(_) | S::TooManyMembers { .. } => (ReplyCode::InvalidFrame, err.to_string()),
        S::ClientMsgIdConflict(_) => (ReplyCode::ClientMsgIdConflict, err.to_string()),
        S::Busy => (ReplyCode::Busy, err.to_string()),
        S::RateLimited { retry_after_ms } => {
            let frame =
                ServerFrame::new(ReplyCode::RateLimited, "too many sends; nothing was stored, send again later");
            return frame.with_retry_after_ms(*retry_after_ms);
        }
        S::ShuttingDown => (ReplyCode::ShuttingDown, err.to_string()),
        S::OutcomeUnknown => {
            error!(log, "send outcome lost"; "cause" => %err);
            (ReplyCode::Internal, err.to_string())
        }
        // the rest are refused before the upgrade (HTTP statuses), or a store failing
        S::UserNameTaken | S::InvalidCredentials | S::TooManyConnections { .. } | S::Dao(_) | S::Internal(_) => {
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

/// `web::PathConfig` for every route: a path segment that does not parse (`/groups/abc`) is a
/// 400 in the envelope.
pub fn path_config() -> actix_web::web::PathConfig {
    actix_web::web::PathConfig::default().error_handler(|e, _| bad_request(e))
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
        let s = |e: ServiceError| client_view(&ApiError::Service(e)).status.as_u16();
        assert_eq!(s(ServiceError::Validation { field: "password".into(), message: "x".into() }), 400);
        assert_eq!(s(ServiceError::UserNameTaken), 409);
        assert_eq!(s(ServiceError::InvalidCredentials), 401);
        assert_eq!(s(ServiceError::Unauthenticated), 401);
        assert_eq!(s(ServiceError::UserNotFound), 404);
        assert_eq!(s(ServiceError::Internal("secret detail".into())), 500);
        assert_eq!(
            client_view(&ApiError::Service(ServiceError::Internal("secret detail".into()))).reason,
            "internal error"
        );
        let taken = client_view(&ApiError::Service(ServiceError::UserNameTaken));
        assert_eq!((taken.code, taken.field.as_deref()), (ErrorCode::UserNameTaken, Some("user_name")));
        let limited = client_view(&ApiError::Service(ServiceError::RateLimited { retry_after_ms: 1500 }));
        assert_eq!((limited.status.as_u16(), limited.retry_after), (429, Some(2)));
    }
}
