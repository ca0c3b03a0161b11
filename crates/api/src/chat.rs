//! `GET /ws`: the authenticated device connection, which carries every conversation of its
//! user; `GET /ws?toUid=<peer id>`: the demo's WebSocket of one conversation;
//! `GET /ws?groupId=<group id>`: the same for one group.
//!
//! Before the upgrade: a page of a foreign origin → 403; no or bad token → 401; a `toUid` or
//! `groupId` that is not a number (or both given) → 400, not a user or no such group → 404, a
//! group the user is not a member of → 403; the user holds too many connections → 429; the
//! server is shutting down → 503. After it, [`crate::session`] runs the connection.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use chat_model::Target;
use chat_service::ServiceError;
use serde::Deserialize;
use slog::o;

use crate::{
    auth::{authenticate, bearer},
    error::ApiError,
    middleware::RequestLog,
    session,
    state::AppState,
};

#[derive(Debug, Clone, Copy, Default)]
pub struct ChatApi;

/// The query of `/ws`. `toUid` as in the original; the token only for browsers.
#[derive(Deserialize)]
pub struct WsQuery {
    #[serde(rename = "toUid")]
    pub to_uid: Option<String>,
    #[serde(rename = "groupId")]
    pub group_id: Option<String>,
    pub token: Option<String>,
}

impl ChatApi {
    /// `GET /ws[?toUid=<peer id>]` with `Authorization: Bearer <token>` or `token=<token>`.
    pub async fn ws(
        req: HttpRequest,
        body: web::Payload,
        query: web::Query<WsQuery>,
        state: web::Data<AppState>,
        request_log: RequestLog,
    ) -> Result<HttpResponse, ApiError> {
        if state.services.chat.is_closing() {
            return Err(ServiceError::ShuttingDown.into());
        }
        check_origin(&req, &state.settings.server.allowed_origins)?;
        let query = query.into_inner();
        let user = authenticate(&state, bearer(&req).map(str::to_string).or(query.token)).await?;
        let id = |s: &str, what: &str| s.trim().parse::<u64>().map_err(|_| ApiError::BadRequest(what.into()));
        let pin = match (query.to_uid.as_deref(), query.group_id.as_deref()) {
            (None, None) => None,
            (Some(_), Some(_)) => return Err(ApiError::BadRequest("give toUid or groupId, not both".into())),
            (Some(s), None) => Some(Target::User(id(s, "toUid must be the peer's user id")?)),
            (None, Some(s)) => Some(Target::Group(id(s, "groupId must be the group's id")?)),
        };
        // the handshake has no effects until its response goes out, so it is checked first
        let (response, ws, stream) = actix_ws::handle(&req, body).map_err(|e| ApiError::Handshake(e.to_string()))?;
        let conn = state.services.chat.connect(user.id, pin, user.session.clone()).await?;
        let max = state.settings.chat.max_frame_bytes;
        let stream = stream.max_frame_size(max).aggregate_continuations().max_continuation_size(max);
        let log = match conn.pin {
            Some(Target::User(peer)) => {
                request_log.0.new(o!("conn_id" => conn.conn_id, "user_id" => conn.user, "peer_id" => peer))
            }
            Some(Target::Group(g)) => {
                request_log.0.new(o!("conn_id" => conn.conn_id, "user_id" => conn.user, "group_id" => g))
            }
            None => request_log.0.new(o!("conn_id" => conn.conn_id, "user_id" => conn.user)),
        };
        actix_web::rt::spawn(session::run(state.into_inner(), conn, ws, stream, log));
        Ok(response)
    }
}

/// A browser says which page opens a WebSocket (`Origin`); only the server's own pages and the
/// configured origins may. A client that sends no `Origin` is not a browser page: not checked.
fn check_origin(req: &HttpRequest, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
    if origin_allowed(origin, &req.connection_info().host().to_ascii_lowercase(), allowed) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("WebSocket connections from {origin} are not allowed")))
    }
}

/// Whether `origin` (`scheme://host[:port]`) is the server's own (its host and port are those
/// the request was sent to) or one of `allowed` (`*` allows any).
fn origin_allowed(origin: &str, host: &str, allowed: &[String]) -> bool {
    let same_host = origin.split_once("://").is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host));
    same_host || allowed.iter().any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

#[cfg(test)]
mod tests {
    use super::origin_allowed;

    #[test]
    fn the_servers_own_origin_and_the_configured_ones() {
        let none: Vec<String> = Vec::new();
        assert!(origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080", &none));
        assert!(origin_allowed("https://Chat.Example.com", "chat.example.com", &none));
        assert!(!origin_allowed("https://evil.example", "chat.example.com", &none));
        assert!(!origin_allowed("http://127.0.0.1:9999", "127.0.0.1:8080", &none));
        assert!(!origin_allowed("null", "127.0.0.1:8080", &none));
        let some = vec!["https://app.example.com/".to_string()];
        assert!(origin_allowed("https://app.example.com", "chat.example.com", &some));
        assert!(!origin_allowed("http://app.example.com", "chat.example.com", &some));
        assert!(origin_allowed("https://anything", "h", &["*".to_string()]));
    }
}
