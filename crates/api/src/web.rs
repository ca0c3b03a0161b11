//! The web client: `GET /` and `GET /assets/<file>`, from `crates/api/web/`, embedded in the
//! binary at build time (in debug builds rust-embed reads the folder at run time).

use actix_web::{HttpResponse, http::header, web};
use rust_embed::RustEmbed;

use crate::error::ApiError;

#[derive(RustEmbed)]
#[folder = "web/"]
struct Assets;

/// Only same-origin scripts, styles and sockets; no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

#[derive(Debug, Clone, Copy, Default)]
pub struct WebApi;

impl WebApi {
    /// `GET /`: the client.
    pub async fn index() -> Result<HttpResponse, ApiError> {
        serve("index.html")
    }

    /// `GET /assets/{file}`.
    pub async fn asset(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
        serve(&path.into_inner())
    }
}

fn serve(name: &str) -> Result<HttpResponse, ApiError> {
    let file = Assets::get(name).ok_or(ApiError::NoRoute)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, file.metadata.mimetype().to_string()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(file.data.into_owned()))
}
