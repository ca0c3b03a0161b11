//! `GET /conversations`.

use actix_web::{HttpResponse, web};
use chat_model::Envelope;

use crate::{auth::Authenticated, error::ApiError, state::AppState};

#[derive(Debug, Clone, Copy, Default)]
pub struct ConversationApi;

impl ConversationApi {
    /// The logged-in user's conversations, newest first: peer, last message, unread count.
    pub async fn list(state: web::Data<AppState>, user: Authenticated) -> Result<HttpResponse, ApiError> {
        let list = state.services.conversation.list(user.0.id).await?;
        Ok(HttpResponse::Ok().json(Envelope::ok(list)))
    }
}
