//! `chat-routers`: the route table. One router per api module, gathered in [`RouterGroup`];
//! [`RouterGroup::configure`] mounts them all on an actix `App`.
//!
//! | route | api | auth |
//! |---|---|---|
//! | `GET /ping`, `GET /healthz`, `GET /readyz`, `GET /metrics`, `GET /openapi.json`, `GET /frames.schema.json` | [`SystemApi`] | public |
//! | `POST /user/register`, `POST /user/login` | [`RegisterApi`] | public |
//! | `POST /user/logout`, `GET /user/me`, `GET /user/lookup` | [`RegisterApi`] | bearer token |
//! | `GET /conversations` | [`ConversationApi`] | bearer token |
//! | `POST /groups`, `GET /groups`, `GET/PATCH/DELETE /groups/{id}`, `POST /groups/{id}/members`, `DELETE /groups/{id}/members/{user}`, `PUT /groups/{id}/members/{user}/role`, `POST /groups/{id}/owner` | [`GroupApi`] | bearer token |
//! | `GET /`, `GET /assets/{file}` | [`WebApi`] | public |
//! | `GET /ws`, `GET /ws?toUid=`, `GET /ws?groupId=` | [`ChatApi`] | bearer token or `token` query |
//!
//! Each router mounts its routes through a [`Table`]: what the app serves (each path one
//! resource, 405 with `Allow` for a method it does not take), or a list of (method, path) when [`RouterGroup::routes`] asks which routes exist (the test that
//! every route is described in the OpenAPI document uses it).

use actix_web::{
    FromRequest, Handler, HttpResponse, Responder,
    http::Method,
    web::{self, ServiceConfig},
};
use chat_api::{
    ApiError, ApiGroup, ChatApi, ConversationApi, GroupApi, RegisterApi, SystemApi, WebApi, error, system::Descriptions,
};

/// Where routes are mounted: what the app serves, or a list that records them.
pub trait Table {
    fn add<F, Args>(&mut self, method: Method, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static;

    fn get<F, Args>(&mut self, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::GET, path, handler)
    }

    fn post<F, Args>(&mut self, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::POST, path, handler)
    }
}

/// What the app mounts: each path once, with every method it takes; another method gets 405
/// with `Allow`.
#[derive(Default)]
struct Mounting(Vec<(&'static str, Vec<(Method, actix_web::Route)>)>);

impl Table for Mounting {
    fn add<F, Args>(&mut self, method: Method, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let route = web::method(method.clone()).to(handler);
        match self.0.iter_mut().find(|(p, _)| *p == path) {
            Some((_, routes)) => routes.push((method, route)),
            None => self.0.push((path, vec![(method, route)])),
        }
        self
    }
}

impl Mounting {
    fn mount(self, cfg: &mut ServiceConfig) {
        for (path, routes) in self.0 {
            let allow = routes.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>().join(", ");
            let mut resource = web::resource(path);
            for (_, route) in routes {
                resource = resource.route(route);
            }
            cfg.service(resource.default_service(web::to(move || {
                let allow = allow.clone();
                async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allow)) }
            })));
        }
    }
}

/// The routes a table was given, in order.
#[derive(Debug, Default)]
pub struct RouteList(pub Vec<(Method, &'static str)>);

impl Table for RouteList {
    fn add<F, Args>(&mut self, method: Method, path: &'static str, _: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.0.push((method, path));
        self
    }
}

/// `/ping`, `/healthz`, `/readyz`, `/metrics`, `/openapi.json`, `/frames.schema.json`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRouter {
    pub api: SystemApi,
}

impl SystemRouter {
    pub fn configure(&self, t: &mut impl Table) {
        t.get("/ping", SystemApi::ping)
            .get("/healthz", SystemApi::healthz)
            .get("/readyz", SystemApi::readyz)
            .get("/metrics", SystemApi::metrics)
            .get("/openapi.json", SystemApi::openapi)
            .get("/frames.schema.json", SystemApi::frames_schema);
    }
}

/// `/user/*`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RegisterRouter {
    pub api: RegisterApi,
}

impl RegisterRouter {
    pub fn configure(&self, t: &mut impl Table) {
        // public
        t.post("/user/register", RegisterApi::register)
            .post("/user/login", RegisterApi::login)
            // authenticated: the handler takes an `Authenticated` user
            .post("/user/logout", RegisterApi::logout)
            .get("/user/me", RegisterApi::me)
            .get("/user/lookup", RegisterApi::lookup);
    }
}

/// `/ws`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChatRouter {
    pub api: ChatApi,
}

impl ChatRouter {
    pub fn configure(&self, t: &mut impl Table) {
        t.get("/ws", ChatApi::ws);
    }
}

/// `/conversations`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConversationRouter {
    pub api: ConversationApi,
}

impl ConversationRouter {
    pub fn configure(&self, t: &mut impl Table) {
        t.get("/conversations", ConversationApi::list);
    }
}

/// `/groups`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupRouter {
    pub api: GroupApi,
}

impl GroupRouter {
    pub fn configure(&self, t: &mut impl Table) {
        t.post("/groups", GroupApi::create)
            .get("/groups", GroupApi::list)
            .get("/groups/{id}", GroupApi::get)
            .add(Method::PATCH, "/groups/{id}", GroupApi::rename)
            .add(Method::DELETE, "/groups/{id}", GroupApi::dissolve)
            .post("/groups/{id}/members", GroupApi::add)
            .add(Method::DELETE, "/groups/{id}/members/{user}", GroupApi::remove)
            .add(Method::PUT, "/groups/{id}/members/{user}/role", GroupApi::set_role)
            .post("/groups/{id}/owner", GroupApi::transfer);
    }
}

/// The web client: `/` and `/assets/{file}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebRouter {
    pub api: WebApi,
}

impl WebRouter {
    pub fn configure(&self, t: &mut impl Table) {
        t.get("/", WebApi::index).get("/assets/{file}", WebApi::asset);
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
    pub fn configure(&self, cfg: &mut ServiceConfig) {
        cfg.app_data(error::json_config())
            .app_data(error::query_config())
            .app_data(error::path_config())
            .app_data(web::Data::new(Descriptions::default()));
        let mut mounting = Mounting::default();
        self.mount(&mut mounting);
        mounting.mount(cfg);
        cfg.default_service(web::to(not_found));
    }

    /// Every route, as (method, path).
    pub fn routes(&self) -> Vec<(Method, &'static str)> {
        let mut list = RouteList::default();
        self.mount(&mut list);
        list.0
    }

    fn mount(&self, t: &mut impl Table) {
        self.system.configure(t);
        self.register.configure(t);
        self.chat.configure(t);
        self.conversation.configure(t);
        self.group.configure(t);
        self.web.configure(t);
    }
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NoRoute)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every mounted route is described in `/openapi.json`, and every description is of a
    /// mounted route.
    #[test]
    fn every_route_is_described_and_every_description_routed() {
        let doc = chat_api::openapi::openapi_json();
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        let routes = RouterGroup::default().routes();
        let mut missing = Vec::new();
        for (method, path) in &routes {
            let op = paths.get(*path).and_then(|p| p.get(method.as_str().to_ascii_lowercase()));
            match op {
                Some(op)
                    if op.get("responses").is_some_and(|r| {
                        r.get("200").is_some() || r.get("201").is_some() || r.get("101").is_some()
                    }) => {}
                _ => missing.push(format!("{method} {path}")),
            }
        }
        assert!(missing.is_empty(), "routes without a description: {missing:?}");
        for (path, item) in &paths {
            for method in item.as_object().into_iter().flat_map(|o| o.keys()) {
                if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    let routed = routes.iter().any(|(m, p)| p == path && m.as_str().eq_ignore_ascii_case(method));
                    assert!(routed, "{method} {path} is described but not routed");
                }
            }
        }
        assert_eq!(routes.len(), 24, "{routes:?}");
    }
}
