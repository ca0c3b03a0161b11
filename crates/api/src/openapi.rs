//! The HTTP API's description (OpenAPI 3.1, `GET /openapi.json`) and the WebSocket frames'
//! JSON Schema (`GET /frames.schema.json`), both generated from the model's types.
//!
//! Handlers are associated functions of the api structs, where `#[utoipa::path]` cannot go (it
//! writes items of its own), so each operation is described here, by a function of the same
//! name. The route table's test fails when a mounted route has no description here, or a
//! description no route. Every operation may also answer the errors [`CommonErrors`] adds.

use chat_model::{
    ConversationView, Envelope, ErrorCode, LoginRequest, LoginResponse, PublicUser, RegisterRequest, RegisterResponse,
    frame::{RawClientFrame, ServerFrame},
    group::{AddMembersRequest, GroupView, NewGroupRequest, OwnerRequest, RenameGroupRequest, RoleRequest},
};
use serde_json::Value;
use utoipa::{
    Modify, OpenApi,
    openapi::{
        self, RefOr, Response, ResponseBuilder,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

/// The description of every route.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "chat",
        description = "An instant-messaging server: accounts and sessions, direct and group \
            conversations, and a WebSocket per device (`/ws`) whose frames `/frames.schema.json` \
            describes. Every reply is the JSON envelope `{status, msg, data}`; an error adds \
            `error` (for people), `code` (for programs, stable) and, where a field is at fault, \
            `field`."
    ),
    paths(
        ops::ping, ops::healthz, ops::readyz, ops::metrics, ops::openapi_document, ops::frames_schema, ops::register, ops::login, ops::logout, ops::me, ops::lookup, ops::conversations, ops::create_group, ops::list_groups, ops::get_group, ops::rename_group, ops::dissolve_group, ops::add_members, ops::remove_member, ops::set_role, ops::transfer_owner, ops::index, ops::asset, ops::ws,
    ),
    components(schemas(ErrorCode)),
    modifiers(&CommonErrors),
    tags(
        (name = "system", description = "Liveness, readiness, metrics and these descriptions"),
        (name = "user", description = "Accounts and sessions"),
        (name = "conversation", description = "The logged-in user's conversations"),
        (name = "group", description = "Groups and their members"),
        (name = "web", description = "The web client"),
        (name = "chat", description = "The WebSocket"),
    )
)]
pub struct ApiDoc;

/// The description as JSON.
pub fn openapi_json() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}

/// The JSON Schema of the WebSocket frames: `$defs/ClientFrame` is what a client sends (a
/// text frame of JSON), `$defs/ServerFrame` what the server sends; a frame is one of them.
pub fn frames_schema_json() -> Value {
    let mut defs = serde_json::Map::new();
    for (name, schema) in
        [("ClientFrame", schemars::schema_for!(RawClientFrame)), ("ServerFrame", schemars::schema_for!(ServerFrame))]
    {
        let mut root = schema.to_value();
        if let Some(obj) = root.as_object_mut() {
            // one document: the types both refer to are kept once, at its root
            if let Some(Value::Object(inner)) = obj.remove("$defs") {
                defs.extend(inner);
            }
            obj.remove("$schema");
        }
        defs.insert(name.into(), root);
    }
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "chat WebSocket frames",
        "description": "Text frames of JSON on /ws: ClientFrame is what a client sends, ServerFrame what the server sends.",
        "$defs": defs,
        "anyOf": [{"$ref": "#/$defs/ClientFrame"}, {"$ref": "#/$defs/ServerFrame"}],
    })
}

/// Adds the bearer scheme and, to every operation, the errors any of them may answer: 400
/// (malformed), 429 (rate limited), 500 and 503 (a store down, busy, shutting down); and 401 to
/// those that take the token.
struct CommonErrors;

fn error_reply(what: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(what)
        .content(
            "application/json",
            openapi::content::ContentBuilder::new()
                .schema(Some(RefOr::Ref(openapi::Ref::from_schema_name("ErrorReply"))))
                .build(),
        )
        .into()
}

impl Modify for CommonErrors {
    fn modify(&self, api: &mut openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let (name, schema) = error_schema();
        components.schemas.insert(name, schema);
        // `Envelope<Value>` refers to `Value`: any JSON
        components.schemas.insert("Value".into(), <Value as utoipa::PartialSchema>::schema());
        for item in api.paths.paths.values_mut() {
            for op in
                [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
            {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let r = &mut op.responses.responses;
                let mut add = |status: &str, what: &str| {
                    r.entry(status.to_string()).or_insert_with(|| error_reply(what));
                };
                add("400", "The request does not parse, or a field breaks a rule (`code`, `field`)");
                if secured {
                    add("401", "No token, or not a live session (`unauthenticated`)");
                }
                add("429", "Too many requests (`rate_limited`): try again after `Retry-After` seconds");
                add("500", "Something failed on the server (`internal`)");
                add(
                    "503",
                    "A store does not answer, or the server is busy or shutting down: try again after `Retry-After` seconds",
                );
            }
        }
    }
}

/// The envelope of an error, as the description has it.
struct ErrorReply;

impl utoipa::PartialSchema for ErrorReply {
    fn schema() -> RefOr<openapi::schema::Schema> {
        error_schema().1
    }
}

impl utoipa::ToSchema for ErrorReply {
    fn name() -> std::borrow::Cow<'static, str> {
        "ErrorReply".into()
    }
}

/// `ErrorReply`: the envelope of an error (`data` null; `error` and `code` always there).
fn error_schema() -> (String, RefOr<openapi::schema::Schema>) {
    use openapi::schema::{ObjectBuilder, Type};
    let of = |t: Type, what: &str| ObjectBuilder::new().schema_type(t).description(Some(what));
    let schema = ObjectBuilder::new()
        .property("status", of(Type::Integer, "The HTTP status"))
        .property("msg", of(Type::String, "The status in words"))
        .property("data", of(Type::Null, "Always null"))
        .property("error", of(Type::String, "What went wrong, for a person"))
        .property("code", RefOr::Ref(openapi::Ref::from_schema_name("ErrorCode")))
        .property("field", of(Type::String, "The request field at fault"))
        .property("retry_after", of(Type::Integer, "429 and 503: seconds until trying again may succeed"))
        .required("status")
        .required("msg")
        .required("data")
        .required("error")
        .required("code")
        .build();
    ("ErrorReply".to_string(), RefOr::T(schema.into()))
}

/// One empty function per operation: utoipa reads their attributes, nothing calls them.
#[allow(dead_code)]
mod ops {
    use super::*;

    // --- system -----------------------------------------------------------------

    /// Liveness as the demo had it: always "SUCCESS".
    #[utoipa::path(get, path = "/ping", tag = "system", responses((status = 200, body = Envelope<String>)))]
    fn ping() {}

    /// The process runs.
    #[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = Envelope<String>)))]
    fn healthz() {}

    /// Whether this node takes sends: MongoDB answers, every worker runs, it hears the other nodes
    /// and is not shutting down. `data` names each store's state (`ok` or `down`; MySQL or Redis
    /// down is degraded, not unready) and `pubsub`'s.
    #[utoipa::path(get, path = "/readyz", tag = "system", responses(
        (status = 200, description = "Ready (possibly degraded)", body = Envelope<Value>,
            example = json!({"status": 200, "msg": "ok", "data": {"mysql": "ok", "redis": "ok", "mongodb": "ok", "pubsub": "ok"}})),
        (status = 503, description = "Not ready (`not_ready`, `shutting_down`); `error` says what is down", body = ErrorReply),
    ))]
    fn readyz() {}

    /// Every metric in the OpenMetrics text format.
    #[utoipa::path(get, path = "/metrics", tag = "system", responses(
        (status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String),
    ))]
    fn metrics() {}

    /// This description.
    #[utoipa::path(get, path = "/openapi.json", tag = "system", responses((status = 200, description = "OpenAPI 3.1", body = Value)))]
    fn openapi_document() {}

    /// The JSON Schema of the WebSocket frames (`client` and `server`).
    #[utoipa::path(get, path = "/frames.schema.json", tag = "system", responses((status = 200, description = "JSON Schema", content_type = "application/schema+json", body = Value)))]
    fn frames_schema() {}

    // --- user -------------------------------------------------------------------

    /// Registers an account; its id.
    #[utoipa::path(post, path = "/user/register", tag = "user", request_body = RegisterRequest, responses(
        (status = 200, body = Envelope<RegisterResponse>),
        (status = 409, description = "The user name is taken (`user_name_taken`, `field`: `user_name`)", body = ErrorReply),
    ))]
    fn register() {}

    /// Logs in: a bearer token, its lifetime in seconds, and the user. Failed attempts are
    /// throttled per account and per address (429 with `Retry-After`).
    #[utoipa::path(post, path = "/user/login", tag = "user", request_body = LoginRequest, responses(
        (status = 200, body = Envelope<LoginResponse>),
        (status = 401, description = "Wrong user name or password, or the account is disabled (`invalid_credentials`)", body = ErrorReply),
    ))]
    fn login() {}

    /// Ends the session at once; its WebSockets close with 50108.
    #[utoipa::path(post, path = "/user/logout", tag = "user", security(("bearer" = [])), responses((status = 200, body = Envelope<String>)))]
    fn logout() {}

    /// The logged-in user.
    #[utoipa::path(get, path = "/user/me", tag = "user", security(("bearer" = [])), responses(
        (status = 200, body = Envelope<PublicUser>),
        (status = 404, description = "The account is gone (`user_not_found`)", body = ErrorReply),
    ))]
    fn me() {}

    /// A user's public fields by user name (without regard to case).
    #[utoipa::path(get, path = "/user/lookup", tag = "user", security(("bearer" = [])), params(chat_model::LookupQuery), responses(
        (status = 200, body = Envelope<PublicUser>),
        (status = 404, description = "No such user (`user_not_found`)", body = ErrorReply),
    ))]
    fn lookup() {}

    // --- conversations ----------------------------------------------------------

    /// The logged-in user's conversations, the newest first: the peer or group, the last message,
    /// the unread count, both read positions and the peer's presence.
    #[utoipa::path(get, path = "/conversations", tag = "conversation", security(("bearer" = [])), responses(
        (status = 200, body = Envelope<Vec<ConversationView>>),
    ))]
    fn conversations() {}

    // --- groups -----------------------------------------------------------------

    /// Creates a group; the caller is its owner.
    #[utoipa::path(post, path = "/groups", tag = "group", security(("bearer" = [])), request_body = NewGroupRequest, responses(
        (status = 201, body = Envelope<GroupView>),
    ))]
    fn create_group() {}

    /// The caller's groups, the newest first.
    #[utoipa::path(get, path = "/groups", tag = "group", security(("bearer" = [])), responses((status = 200, body = Envelope<Vec<GroupView>>)))]
    fn list_groups() {}

    const GROUP: &str = "The group's id";

    /// A group with its members and their read positions.
    #[utoipa::path(get, path = "/groups/{id}", tag = "group", security(("bearer" = [])), params(("id" = u64, Path, description = GROUP)), responses(
        (status = 200, body = Envelope<GroupView>),
        (status = 403, description = "Not a member (`not_member`)", body = ErrorReply),
        (status = 404, description = "No such group (`group_not_found`)", body = ErrorReply),
    ))]
    fn get_group() {}

    /// Renames a group (the owner and admins).
    #[utoipa::path(patch, path = "/groups/{id}", tag = "group", security(("bearer" = [])), params(("id" = u64, Path, description = GROUP)), request_body = RenameGroupRequest, responses(
        (status = 200, body = Envelope<GroupView>),
        (status = 403, description = "Not a member, or not allowed (`not_member`, `not_allowed`)", body = ErrorReply),
        (status = 404, description = "No such group (`group_not_found`)", body = ErrorReply),
    ))]
    fn rename_group() {}

    /// Dissolves a group (the owner).
    #[utoipa::path(delete, path = "/groups/{id}", tag = "group", security(("bearer" = [])), params(("id" = u64, Path, description = GROUP)), responses(
        (status = 200, description = "Dissolved (`data` is null)", body = Envelope<Value>),
        (status = 403, description = "Not a member, or not the owner (`not_member`, `not_allowed`)", body = ErrorReply),
        (status = 404, description = "No such group (`group_not_found`)", body = ErrorReply),
    ))]
    fn dissolve_group() {}

    /// Adds members (the owner and admins).
    #[utoipa::path(post, path = "/groups/{id}/members", tag = "group", security(("bearer" = [])), params(("id" = u64, Path, description = GROUP)), request_body = AddMembersRequest, responses(
        (status = 200, body = Envelope<GroupView>),
        (status = 403, description = "Not a member, or not allowed (`not_member`, `not_allowed`)", body = ErrorReply),
        (status = 404, description = "No such group (`group_not_found`)", body = ErrorReply),
    ))]
    fn add_members() {}

    /// Removes a member (the owner and admins), or leaves (anyone, themselves): the group as it is
    /// now, `null` after leaving.
    #[utoipa::path(delete, path = "/groups/{id}/members/{user}", tag = "group", security(("bearer" = [])),
        params(("id" = u64, Path, description = GROUP), ("user" = u64, Path, description = "The member's user id")), responses(
        (status = 200, body = Envelope<Option<GroupView>>),
        (status = 403, description = "Not a member, or not allowed (`not_member`, `not_allowed`)", body = ErrorReply),
        (status = 404, description = "No such group (`group_not_found`)", body = ErrorReply),
    ))]
    fn remove_member() {}

    /// Makes a member an admin or a plain member (the owner).
    #[utoipa::path(put, path = "/groups/{id}/members/{user}/role", tag = "group", security(("bearer" = [])),
        params(("id" = u64, Path, description = GROUP), ("user" = u64, Path, description = "The member's user id")), request_body = RoleRequest, responses(
        (status = 200, body = Envelope<GroupView>),
        (status = 403, description = "Not a member, or not the owner (`not_member`, `not_allowed`)", body = ErrorReply),
        (status = 404, description = "No such group (`group_not_found`)", body = ErrorReply),
    ))]
    fn set_role() {}

    /// Hands the group to another member (the owner).
    #[utoipa::path(post, path = "/groups/{id}/owner", tag = "group", security(("bearer" = [])), params(("id" = u64, Path, description = GROUP)), request_body = OwnerRequest, responses(
        (status = 200, body = Envelope<GroupView>),
        (status = 403, description = "Not a member, or not the owner (`not_member`, `not_allowed`)", body = ErrorReply),
        (status = 404, description = "No such group (`group_not_found`)", body = ErrorReply),
    ))]
    fn transfer_owner() {}

    // --- web client -------------------------------------------------------------

    /// The web client's page.
    #[utoipa::path(get, path = "/", tag = "web", responses((status = 200, description = "HTML", content_type = "text/html", body = String)))]
    fn index() {}

    /// One of the web client's files.
    #[utoipa::path(get, path = "/assets/{file}", tag = "web", params(("file" = String, Path, description = "A file name")), responses(
        (status = 200, description = "The file, typed by its name", content_type = "*/*", body = String),
        (status = 404, description = "No such file (`route_not_found`)", body = ErrorReply),
    ))]
    fn asset() {}

    // --- WebSocket --------------------------------------------------------------

    /// Opens a WebSocket: the device connection (all of the user's conversations), or with `toUid`
    /// or `groupId` one conversation's. The token goes in `Authorization: Bearer` or, from a
    /// browser, in `token`. The frames are described by `/frames.schema.json` and the README.
    #[utoipa::path(get, path = "/ws", tag = "chat", security(("bearer" = [])),
        params(
            ("toUid" = Option<u64>, Query, description = "Pin the socket to the direct conversation with this user"),
            ("groupId" = Option<u64>, Query, description = "Pin the socket to this group's conversation"),
            ("token" = Option<String>, Query, description = "The bearer token, for browsers (which cannot set headers)"),
        ),
        responses(
            (status = 101, description = "Switching protocols: the WebSocket is open; its first frame is 50002"),
            (status = 403, description = "A page of an origin not allowed (`origin_not_allowed`), or not a member of the group (`not_member`)", body = ErrorReply),
            (status = 404, description = "No such user or group (`user_not_found`, `group_not_found`)", body = ErrorReply),
        ))]
    fn ws() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_the_common_errors() {
        let doc = openapi_json();
        let login = &doc["paths"]["/user/login"]["post"]["responses"];
        for status in ["200", "400", "401", "429", "500", "503"] {
            assert!(login.get(status).is_some(), "{status}: {login}");
        }
        assert!(doc["paths"]["/user/me"]["get"]["responses"].get("401").is_some());
        assert!(doc["components"]["schemas"].get("ErrorCode").is_some());
    }

    /// A validator of one side's frames.
    fn side(name: &str) -> jsonschema::Validator {
        let doc = frames_schema_json();
        let schema = serde_json::json!({"$defs": doc["$defs"], "$ref": format!("#/$defs/{name}")});
        jsonschema::validator_for(&schema).unwrap()
    }

    /// Every frame example in the README (`> {…}` sent, `< {…}` received, and the client
    /// frames of the tables) is valid JSON and valid under the frames' schema.
    #[test]
    fn the_readme_frame_examples_validate_against_the_schema() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
        let (client, server) = (side("ClientFrame"), side("ServerFrame"));
        let mut checked = (0, 0);
        for line in readme.lines() {
            let mut examples: Vec<(bool, &str)> = Vec::new();
            if let Some(f) = line.strip_prefix("> {").map(|_| &line[2..]) {
                examples.push((true, f));
            } else if let Some(f) = line.strip_prefix("< {").map(|_| &line[2..]) {
                examples.push((false, f));
            } else if line.starts_with('|') {
                // a table cell `{"type":…}` is a client frame
                examples.extend(line.split('`').filter(|c| c.starts_with("{\"type\":")).map(|c| (true, c)));
            }
            for (sent, text) in examples {
                let value: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
                let v = if sent { &client } else { &server };
                let errors: Vec<String> = v.iter_errors(&value).map(|e| e.to_string()).collect();
                assert!(errors.is_empty(), "{text}: {errors:?}");
                if sent { checked.0 += 1 } else { checked.1 += 1 }
            }
        }
        assert!(checked.0 >= 10 && checked.1 >= 10, "examples found (sent, received): {checked:?}");
        // and the schema is not one that takes anything
        assert!(!client.is_valid(&serde_json::json!({"type": 1, "bogus": true})));
        assert!(!server.is_valid(&serde_json::json!({"code": 12345, "content": "x"})));
    }

    #[test]
    fn the_frames_schema_names_both_sides() {
        let s = frames_schema_json();
        assert!(s["$defs"]["ClientFrame"]["properties"].get("type").is_some(), "{s}");
        assert!(s["$defs"]["ServerFrame"]["properties"].get("code").is_some(), "{s}");
    }
}
