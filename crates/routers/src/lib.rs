//! `chat-routers`: the route table. One router per api module, gathered in [`RouterGroup`];
//! [`RouterGroup::configure`] mounts them all on an actix `App`.
//!
//! | route | api | auth |
//! |---|---|---|
//! | `GET /ping`, `GET /healthz`, `GET /readyz`, `GET /metrics` | [`SystemApi`] | public |
//! | `POST /user/register`, `POST /user/login` | [`RegisterApi`] | public |
//! | `POST /user/logout`, `GET /user/me`, `GET /user/lookup` | [`RegisterApi`] | bearer token |
//! | `GET /conversations` | [`ConversationApi`] | bearer token |
//! | `POST /groups`, `GET /groups`, `GET/PATCH/DELETE /groups/{id}`, `POST /groups/{id}/members`, `DELETE /groups/{id}/members/{user}`, `PUT /groups/{id}/members/{user}/role`, `POST /groups/{id}/owner` | [`GroupApi`] | bearer token |
//! | `GET /`, `GET /assets/{file}` | [`WebApi`] | public |
//! | `GET /ws`, `GET /ws?toUid=`, `GET /ws?groupId=` | [`ChatApi`] | bearer token or `token` query |

use actix_web::{HttpResponse, web};
use chat_api::{ApiError, ApiGroup, ChatApi, ConversationApi, GroupApi, RegisterApi, SystemApi, WebApi, error};

/// `/ping`, `/healthz`, `/readyz`, `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRouter {
    pub api: SystemApi,
}

impl SystemRouter {
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.route("/ping", web::get().to(SystemApi::ping))
            .route("/healthz", web::get().to(SystemApi::healthz))
            .route("/readyz", web::get().to(SystemApi::readyz))
            .route("/metrics", web::get().to(SystemApi::metrics));
    }
}

/// `/user/*`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RegisterRouter {
    pub api: RegisterApi,
}

impl RegisterRouter {
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.service(
            web::scope("/user")
                // public
                .route("/register", web::post().to(RegisterApi::register))
                .route("/login", web::post().to(RegisterApi::login))
                // authenticated: the handler takes an `Authenticated` user
                .route("/logout", web::post().to(RegisterApi::logout))
                .route("/me", web::get().to(RegisterApi::me))
                .route("/lookup", web::get().to(RegisterApi::lookup)),
        );
    }
}

/// `/ws`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChatRouter {
    pub api: ChatApi,
}

impl ChatRouter {
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.route("/ws", web::get().to(ChatApi::ws));
    }
}

/// `/conversations`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConversationRouter {
    pub api: ConversationApi,
}

impl ConversationRouter {
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.route("/conversations", web::get().to(ConversationApi::list));
    }
}

/// `/groups`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupRouter {
    pub api: GroupApi,
}

impl GroupRouter {
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.service(
            web::scope("/groups")
                .route("", web::post().to(GroupApi::create))
                .route("", web::get().to(GroupApi::list))
                .route("/{id}", web::get().to(GroupApi::get))
                .route("/{id}", web::patch().to(GroupApi::rename))
                .route("/{id}", web::delete().to(GroupApi::dissolve))
                .route("/{id}/members", web::post().to(GroupApi::add))
                .route("/{id}/members/{user}", web::delete().to(GroupApi::remove))
                .route("/{id}/members/{user}/role", web::put().to(GroupApi::set_role))
                .route("/{id}/owner", web::post().to(GroupApi::transfer)),
        );
    }
}

/// The web client: `/` and `/assets/{file}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebRouter {
    pub api: WebApi,
}

impl WebRouter {
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.route("/", web::get().to(WebApi::index)).route("/assets/{file}", web::get().to(WebApi::asset));
    }
}

/// Every router, one per api group.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouterGroup {
    pub system: SystemRouter,
    pub register: RegisterRouter,
    pub chat: ChatRouter,
    pub conversation: ConversationRouter,
    pub group: GroupRouter,
    pub web: WebRouter,
}

impl RouterGroup {
    pub fn new(api: ApiGroup) -> Self {
        RouterGroup {
            system: SystemRouter { api: api.system },
            register: RegisterRouter { api: api.register },
            chat: ChatRouter { api: api.chat },
            conversation: ConversationRouter { api: api.conversation },
            group: GroupRouter { api: api.group },
            web: WebRouter { api: api.web },
        }
    }

    /// Mounts every route, the body and query error handlers, and the 404 for the rest.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(error::json_config()).app_data(error::query_config()).app_data(error::path_config());
        self.system.configure(cfg);
        self.register.configure(cfg);
        self.chat.configure(cfg);
        self.conversation.configure(cfg);
        self.group.configure(cfg);
        self.web.configure(cfg);
        cfg.default_service(web::to(not_found));
    }
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NoRoute)
}
