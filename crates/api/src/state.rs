//! The one application state, shared by every worker through `web::Data`.

use std::sync::Arc;

use chat_model::Settings;
use chat_service::ServiceGroup;
use prometheus_client::registry::Registry;

#[derive(Clone)]
pub struct AppState {
    pub services: ServiceGroup,
    pub settings: Arc<Settings>,
    /// Every metric of the process, for `/metrics`.
    pub metrics: Arc<Registry>,
    pub log: slog::Logger,
}

impl AppState {
    pub fn new(services: ServiceGroup, settings: Settings, metrics: Registry, log: slog::Logger) -> Self {
        AppState { services, settings: Arc::new(settings), metrics: Arc::new(metrics), log }
    }
}
