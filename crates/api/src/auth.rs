//! The bearer token: from `Authorization: Bearer <token>`, or (WebSocket from a browser, which
//! cannot set headers) the `token` query parameter.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use chat_service::{AuthUser, ServiceError};

use crate::{error::ApiError, state::AppState};

/// The address a request came from: the TCP peer, or (with `server.trust_forwarded_for`,
/// behind a proxy that appends to it) the last address of `X-Forwarded-For`, the one that proxy
/// saw; the ones before it are whatever the client wrote.
pub fn client_addr(req: &HttpRequest, trust_forwarded_for: bool) -> Option<std::net::IpAddr> {
    if trust_forwarded_for {
        let forwarded = req.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok()).last();
        if let Some(ip) = forwarded.and_then(|v| v.rsplit(',').next()).and_then(parse_addr) {
            return Some(ip);
        }
    }
    req.peer_addr().map(|a| a.ip())
}

/// An address with or without a port (`1.2.3.4`, `1.2.3.4:80`, `[::1]:80`, `::1`).
fn parse_addr(s: &str) -> Option<std::net::IpAddr> {
    let s = s.trim();
    s.parse().ok().or_else(|| s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

/// The token of the `Authorization: Bearer` header.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The session of a token: 401 without one, or with one that is not (or no longer) a session.
pub async fn authenticate(state: &AppState, token: Option<String>) -> Result<AuthUser, ApiError> {
    let token = token.ok_or(ServiceError::Unauthenticated)?;
    Ok(state.services.register.authenticate(&token).await?)
}

/// The logged-in user of a request; 401 otherwise.
#[derive(Debug, Clone)]
pub struct Authenticated(pub AuthUser);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(req).map(str::to_string);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Service(ServiceError::Internal("no app state".into())))?;
            Ok(Authenticated(authenticate(&state, token).await?))
        })
    }
}
