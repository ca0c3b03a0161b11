//! `/groups`: create, list, read and change groups. Every route takes the bearer token; a user
//! who is not a member gets 403, a group that does not exist (or was dissolved) 404.

use actix_web::{HttpResponse, web};
use chat_model::{
    Envelope,
    group::{AddMembersRequest, NewGroupRequest, OwnerRequest, RenameGroupRequest, RoleRequest},
};

use crate::{auth::Authenticated, error::ApiError, state::AppState};

#[derive(Debug, Clone, Copy, Default)]
pub struct GroupApi;

type Reply = Result<HttpResponse, ApiError>;

impl GroupApi {
    /// `POST /groups` `{"name","members":[ids]}` → 201 with the group and its members.
    pub async fn create(state: web::Data<AppState>, user: Authenticated, body: web::Json<NewGroupRequest>) -> Reply {
        let group = state.services.group.create(user.0.id, &body.name, &body.members).await?;
        Ok(HttpResponse::Created().json(Envelope::created(group)))
    }

    /// `GET /groups` → my groups, the newest first.
    pub async fn list(state: web::Data<AppState>, user: Authenticated) -> Reply {
        Ok(HttpResponse::Ok().json(Envelope::ok(state.services.group.list(user.0.id).await?)))
    }

    /// `GET /groups/{id}` → the group with its members and their read positions.
    pub async fn get(state: web::Data<AppState>, user: Authenticated, path: web::Path<u64>) -> Reply {
        Ok(HttpResponse::Ok().json(Envelope::ok(state.services.group.get(user.0.id, *path).await?)))
    }

    /// `PATCH /groups/{id}` `{"name"}` (the owner and admins).
    pub async fn rename(
        state: web::Data<AppState>,
        user: Authenticated,
        path: web::Path<u64>,
        body: web::Json<RenameGroupRequest>,
    ) -> Reply {
        Ok(HttpResponse::Ok().json(Envelope::ok(state.services.group.rename(user.0.id, *path, &body.name).await?)))
    }

    /// `POST /groups/{id}/members` `{"user_ids":[…]}` (the owner and admins).
    pub async fn add(
        state: web::Data<AppState>,
        user: Authenticated,
        path: web::Path<u64>,
        body: web::Json<AddMembersRequest>,
    ) -> Reply {
        Ok(HttpResponse::Ok().json(Envelope::ok(state.services.group.add(user.0.id, *path, &body.user_ids).await?)))
    }

    /// `DELETE /groups/{id}/members/{user}`: removes a member (the owner and admins), or leaves
    /// (anyone, themselves). The group as it is now; `null` after leaving.
    pub async fn remove(state: web::Data<AppState>, user: Authenticated, path: web::Path<(u64, u64)>) -> Reply {
        let (id, member) = path.into_inner();
        Ok(HttpResponse::Ok().json(Envelope::ok(state.services.group.remove(user.0.id, id, member).await?)))
    }

    /// `PUT /groups/{id}/members/{user}/role` `{"role":"admin"|"member"}` (the owner).
    pub async fn set_role(
        state: web::Data<AppState>,
        user: Authenticated,
        path: web::Path<(u64, u64)>,
        body: web::Json<RoleRequest>,
    ) -> Reply {
        let (id, member) = path.into_inner();
        Ok(HttpResponse::Ok()
            .json(Envelope::ok(state.services.group.set_role(user.0.id, id, member, body.role).await?)))
    }

    /// `POST /groups/{id}/owner` `{"user_id"}` (the owner hands the group over).
    pub async fn transfer(
        state: web::Data<AppState>,
        user: Authenticated,
        path: web::Path<u64>,
        body: web::Json<OwnerRequest>,
    ) -> Reply {
        Ok(HttpResponse::Ok().json(Envelope::ok(state.services.group.transfer(user.0.id, *path, body.user_id).await?)))
    }

    /// `DELETE /groups/{id}` (the owner dissolves it).
    pub async fn dissolve(state: web::Data<AppState>, user: Authenticated, path: web::Path<u64>) -> Reply {
        state.services.group.dissolve(user.0.id, *path).await?;
        Ok(HttpResponse::Ok().json(Envelope::ok(serde_json::Value::Null)))
    }
}
