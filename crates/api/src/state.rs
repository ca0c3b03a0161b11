//! The one application state, shared by every worker through `web::Data`.

use std::sync::Arc;

use chat_model::Settings;
use chat_service::ServiceGroup;

#[derive(Clone)]
pub struct AppState {
    pub services: ServiceGroup,
    pub settings: Arc<Settings>,
    pub log: slog::Logger,
}

impl AppState {
    pub fn new(services: ServiceGroup, settings: Settings, log: slog::Logger) -> Self {
        AppState { services, settings: Arc::new(settings), log }
    }
}
