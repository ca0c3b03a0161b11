//! `/user/register`, `/user/login`, `/user/logout`, `/user/me`, `/user/lookup`.

use actix_web::{HttpRequest, HttpResponse, web};
use chat_model::{Envelope, LoginRequest, LookupQuery, RegisterRequest, RegisterResponse};

use crate::{
    auth::{Authenticated, client_addr},
    error::ApiError,
    state::AppState,
};

#[derive(Debug, Clone, Copy, Default)]
pub struct RegisterApi;

impl RegisterApi {
    /// `POST /user/register` → the new user's id.
    pub async fn register(
        req: HttpRequest,
        state: web::Data<AppState>,
        body: web::Json<RegisterRequest>,
    ) -> Result<HttpResponse, ApiError> {
        let client = client_addr(&req, state.settings.server.trust_forwarded_for);
        let id = state.services.register.register(body.into_inner(), client).await?;
        Ok(HttpResponse::Ok().json(Envelope::ok(RegisterResponse { id })))
    }

    /// `POST /user/login` → a token, its lifetime and the user.
    pub async fn login(
        req: HttpRequest,
        state: web::Data<AppState>,
        body: web::Json<LoginRequest>,
    ) -> Result<HttpResponse, ApiError> {
        let client = client_addr(&req, state.settings.server.trust_forwarded_for);
        let session = state.services.register.login(body.into_inner(), client).await?;
        Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(Envelope::ok(session)))
    }

    /// `POST /user/logout`: the session ends at once.
    pub async fn logout(state: web::Data<AppState>, user: Authenticated) -> Result<HttpResponse, ApiError> {
        state.services.register.logout(&user.0).await?;
        Ok(HttpResponse::Ok().json(Envelope::ok("logged out")))
    }

    /// `GET /user/me`: the logged-in user.
    pub async fn me(state: web::Data<AppState>, user: Authenticated) -> Result<HttpResponse, ApiError> {
        Ok(HttpResponse::Ok().json(Envelope::ok(state.services.register.profile(user.0.id).await?)))
    }

    /// `GET /user/lookup?user_name=`: a user's public fields; 404 if unknown.
    pub async fn lookup(
        state: web::Data<AppState>,
        user: Authenticated,
        query: web::Query<LookupQuery>,
    ) -> Result<HttpResponse, ApiError> {
        Ok(HttpResponse::Ok().json(Envelope::ok(state.services.register.lookup(user.0.id, &query.user_name).await?)))
    }
}
