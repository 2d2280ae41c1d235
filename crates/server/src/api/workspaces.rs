//! `/api/v1/workspaces`: create, list, show, rename, disable and enable workspaces (issue 13).
//!
//! Who sees what: an `admin` key of the default (operator) workspace manages every
//! workspace; an `admin` key of any other workspace sees and renames only its own, and
//! another workspace's id is a 404 to it (never a 403, which would confirm it exists).
//! Creating, disabling and enabling workspaces is the operator's alone (403
//! `insufficient_scope` for a tenant's admin key). The default workspace is never disabled.

use super::idempotency::ShownOnce;
use super::keys::{create_key, CreatedKey, NewKeyFields};
use super::openapi::ErrorBody;
use super::Path;
use super::{ApiError, Grant, Json, Listed};
use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use dialtone_core::WorkspaceId;
use dialtone_store::KeyGrant;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(show, update))
}

/// The longest workspace name, in characters.
const MAX_NAME: usize = 200;

/// A workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct Workspace {
    /// `ws_…`.
    id: String,
    name: String,
    /// The operator's workspace (made at first start): never disabled; its admin keys manage every workspace.
    is_default: bool,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    /// When it was disabled; `null` while enabled. Every key of a disabled workspace gets 401.
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    disabled_at: Option<Timestamp>,
    /// Calls each caller number may place per UTC day across the workspace's campaigns;
    /// `null`: no limit.
    #[schema(required = true)]
    caller_number_daily_limit: Option<u32>,
}

impl From<dialtone_store::Workspace> for Workspace {
    fn from(w: dialtone_store::Workspace) -> Self {
        let at = |ms: i64| Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
        Self {
            id: w.id,
            name: w.name,
            is_default: w.is_default,
            created_at: at(w.created_at),
            disabled_at: w.disabled_at.map(at),
            caller_number_daily_limit: w.caller_number_daily_limit.map(|n| n as u32),
        }
    }
}

/// The body of `POST /workspaces`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Acme", "key": {"name": "acme-admin", "scopes": ["read", "write", "admin"]}}))]
struct NewWorkspace {
    /// 1–200 characters.
    name: String,
    /// The workspace's first API key, made with it; its secret is in the answer, once.
    key: Option<NewKeyFields>,
}

/// The answer to `POST /workspaces`.
#[derive(Debug, Serialize, ToSchema)]
struct CreatedWorkspace {
    workspace: Workspace,
    /// The first key, if one was asked for (`key` holds the secret, shown only here).
    #[schema(required = true)]
    key: Option<CreatedKey>,
}

/// The body of `PATCH /workspaces/{id}`: what to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct WorkspacePatch {
    #[serde(default, deserialize_with = "super::patch::not_null")]
    name: Option<String>,
    /// `true` disables (its keys get 401 from now on, on every node), `false` enables. The operator's admin key only.
    #[serde(default, deserialize_with = "super::patch::not_null")]
    disabled: Option<bool>,
    /// Calls each caller number may place per UTC day, across all the workspace's
    /// campaigns, 1–1,000,000; `null` removes the limit (the default). Holds from the next
    /// claim; a contact whose numbers are all at the limit waits until 00:00 UTC.
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 1_000_000)]
    caller_number_daily_limit: Option<Option<u32>>,
}

fn check_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ApiError::invalid("name", format!("must be 1 to {MAX_NAME} characters")));
    }
    Ok(name)
}

fn operator_only(what: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "insufficient_scope", format!("only an admin key of the default workspace {what}"))
        .with_details(serde_json::json!({ "required_scope": "admin" }))
}

/// A workspace this key may see: any for the operator, else only its own (404 otherwise).
async fn visible(app: &AppState, grant: &KeyGrant, id: &str) -> Result<dialtone_store::Workspace, ApiError> {
    if !grant.operator && id != grant.workspace_id.as_str() {
        return Err(ApiError::not_found("workspace"));
    }
    app.store.get_workspace(id).await?.ok_or_else(|| ApiError::not_found("workspace"))
}

/// Creates a workspace (and, with `key`, its first API key). The operator's admin key only.
#[utoipa::path(post, path = "/workspaces", tag = "workspaces", request_body = NewWorkspace,
    responses((status = 201, description = "The workspace, and its first key if asked for.", body = CreatedWorkspace),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody)))]
async fn create(
    State(app): State<Arc<AppState>>,
    Grant(grant): Grant,
    Json(body): Json<NewWorkspace>,
) -> Result<(StatusCode, axum::response::Response), ApiError> {
    if !grant.operator {
        return Err(operator_only("creates workspaces"));
    }
    let name = check_name(&body.name)?;
    let scopes = body.key.as_ref().map(|k| k.check("key.")).transpose()?;
    let ws = app.store.create_workspace(name, app.now()).await?;
    let key = match scopes {
        Some((key_name, scopes)) => Some(create_key(&app, &WorkspaceId::from_db(ws.id.clone()), &key_name, &scopes).await?),
        None => None,
    };
    let created = CreatedWorkspace { workspace: ws.into(), key };
    // Only an answer with a key shows a secret; one without is kept for replays as any is.
    let answer = if created.key.is_some() { ShownOnce(created).into_response() } else { Json(created).into_response() };
    Ok((StatusCode::CREATED, answer))
}

/// The workspaces this key may see: every one for the operator's admin key, else its own.
#[utoipa::path(get, path = "/workspaces", tag = "workspaces", responses((status = 200, description = "The workspaces, the default one first.", body = Listed<Workspace>)))]
async fn list(State(app): State<Arc<AppState>>, Grant(grant): Grant) -> Result<Json<Listed<Workspace>>, ApiError> {
    let all = app.store.list_workspaces().await?;
    let data = all.into_iter().filter(|w| grant.operator || w.id == grant.workspace_id.as_str()).map(Workspace::from).collect();
    Ok(Json(Listed { data }))
}

#[utoipa::path(get, path = "/workspaces/{id}", tag = "workspaces", params(("id" = String, Path, description = "Workspace id (`ws_…`).")),
    responses((status = 200, description = "The workspace.", body = Workspace)))]
async fn show(State(app): State<Arc<AppState>>, Grant(grant): Grant, Path(id): Path<String>) -> Result<Json<Workspace>, ApiError> {
    Ok(Json(visible(&app, &grant, &id).await?.into()))
}

/// Renames, disables or enables a workspace, or sets its `caller_number_daily_limit`. Disabling: every key of the workspace gets 401
/// from the commit on, on every node; its campaigns keep their state.
#[utoipa::path(patch, path = "/workspaces/{id}", tag = "workspaces", request_body = WorkspacePatch, params(("id" = String, Path, description = "Workspace id (`ws_…`).")),
    responses((status = 200, description = "The workspace as it now is.", body = Workspace),
        (status = 409, description = "The default workspace cannot be disabled.", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody)))]
async fn update(
    State(app): State<Arc<AppState>>,
    Grant(grant): Grant,
    Path(id): Path<String>,
    Json(body): Json<WorkspacePatch>,
) -> Result<Json<Workspace>, ApiError> {
    let current = visible(&app, &grant, &id).await?;
    let name = body.name.as_deref().map(check_name).transpose()?;
    if body.disabled.is_some() && !grant.operator {
        return Err(operator_only("disables or enables workspaces"));
    }
    if body.disabled == Some(true) && current.is_default {
        return Err(ApiError::conflict("the default workspace cannot be disabled"));
    }
    if let Some(Some(n)) = body.caller_number_daily_limit {
        if !(1..=1_000_000).contains(&n) {
            return Err(ApiError::invalid("caller_number_daily_limit", "must be between 1 and 1000000, or null for no limit"));
        }
    }
    let mut updated = app.store.update_workspace(&id, name, body.disabled, app.now()).await?.ok_or_else(|| ApiError::not_found("workspace"))?;
    if let Some(limit) = body.caller_number_daily_limit {
        updated = app.store.set_caller_number_daily_limit(&id, limit, app.now()).await?.ok_or_else(|| ApiError::not_found("workspace"))?;
    }
    Ok(Json(updated.into()))
}
