//! `/api/v1/keys`: create (the secret answered once), list (prefix and last use, never
//! the secret or its hash) and revoke API keys (issue 13). An `admin` key manages its own
//! workspace's keys; the operator's (default workspace's) admin key also any workspace's,
//! with `workspace_id`. Another workspace's key or workspace is a 404 to anyone else.

use super::idempotency::ShownOnce;
use super::openapi::ErrorBody;
use super::Path;
use super::{ApiError, Grant, Json, Listed, Query};
use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use dialtone_core::WorkspaceId;
use dialtone_store::KeyGrant;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(revoke))
}

/// The longest key name, in characters.
const MAX_NAME: usize = 200;

/// A new key's name and scopes (in `POST /keys` and `POST /workspaces`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyFields {
    /// 1–200 characters.
    name: String,
    /// Any of `read`, `write`, `admin` (at least one). Default: all three.
    scopes: Option<Vec<String>>,
}

impl NewKeyFields {
    /// The name and canonical scopes, or a 400 naming `{prefix}name` or `{prefix}scopes`.
    pub fn check(&self, prefix: &str) -> Result<(String, String), ApiError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(ApiError::invalid(&format!("{prefix}name"), format!("must be 1 to {MAX_NAME} characters")));
        }
        let scopes = match &self.scopes {
            Some(s) => crate::keys::normalize_scopes(s).map_err(|e| ApiError::invalid(&format!("{prefix}scopes"), e))?,
            None => crate::keys::ALL_SCOPES.to_string(),
        };
        Ok((name.to_string(), scopes))
    }
}

/// The body of `POST /keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "reporting", "scopes": ["read"]}))]
struct NewKey {
    // Spelled out rather than `#[serde(flatten)] NewKeyFields`: through a flatten, serde
    // loses the path, and `"scopes": "read"` could not be named in the error.
    /// 1–200 characters.
    name: String,
    /// Any of `read`, `write`, `admin` (at least one). Default: all three.
    scopes: Option<Vec<String>>,
    /// The workspace to make it in (`ws_…`); default the key's own. Another workspace: the operator's admin key only.
    workspace_id: Option<String>,
}

/// An API key as listed: never the secret nor its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKey {
    /// `key_…`.
    id: String,
    name: String,
    workspace_id: String,
    /// The key's first 8 characters (`dt_` and 5 more), to tell keys apart; `null` for a key made before they were kept.
    #[schema(required = true)]
    prefix: Option<String>,
    /// Of `read`, `write`, `admin`.
    scopes: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    /// At most a minute late; `null` if never used.
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    last_used_at: Option<Timestamp>,
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    revoked_at: Option<Timestamp>,
}

/// A key just made: what [`ApiKey`] shows, and the secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    info: ApiKey,
    /// The secret (`dt_…`), to send as `Authorization: Bearer <key>`. Not shown again.
    key: String,
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn scopes_of(s: &str) -> Vec<String> {
    s.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Makes a key of `ws` with canonical `scopes`; the answer carries its secret.
pub async fn create_key(app: &AppState, ws: &WorkspaceId, name: &str, scopes: &str) -> Result<CreatedKey, ApiError> {
    let secret = crate::keys::generate();
    let prefix = crate::keys::shown_prefix(&secret);
    let now = app.now();
    let id = app.store.create_scoped_api_key(ws, name, &crate::keys::hash(&secret), prefix, scopes, now).await?;
    let info = ApiKey {
        id: id.as_str().to_string(),
        name: name.to_string(),
        workspace_id: ws.as_str().to_string(),
        prefix: Some(prefix.to_string()),
        scopes: scopes_of(scopes),
        created_at: at(now.as_millisecond()),
        last_used_at: None,
        revoked_at: None,
    };
    Ok(CreatedKey { info, key: secret })
}

/// The workspace a request names (`workspace_id`), if this key may manage it: its own, or
/// any existing one for the operator; a 404 naming nothing else.
async fn target(app: &AppState, grant: &KeyGrant, asked: Option<&str>) -> Result<WorkspaceId, ApiError> {
    match asked {
        None => Ok(grant.workspace_id.clone()),
        Some(id) if id == grant.workspace_id.as_str() => Ok(grant.workspace_id.clone()),
        Some(id) if grant.operator => match app.store.get_workspace(id).await? {
            Some(w) => Ok(WorkspaceId::from_db(w.id)),
            None => Err(ApiError::not_found("workspace")),
        },
        Some(_) => Err(ApiError::not_found("workspace")),
    }
}

/// Creates an API key with scopes; the secret is in the answer, once.
#[utoipa::path(post, path = "/keys", tag = "keys", request_body = NewKey,
    responses((status = 201, description = "The key, with its secret (`key`), shown only now.", body = CreatedKey),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody)))]
async fn create(State(app): State<Arc<AppState>>, Grant(grant): Grant, Json(body): Json<NewKey>) -> Result<(StatusCode, ShownOnce<CreatedKey>), ApiError> {
    let (name, scopes) = NewKeyFields { name: body.name, scopes: body.scopes }.check("")?;
    let ws = target(&app, &grant, body.workspace_id.as_deref()).await?;
    Ok((StatusCode::CREATED, ShownOnce(create_key(&app, &ws, &name, &scopes).await?)))
}

/// `?workspace_id=` of `GET /keys`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct KeysQuery {
    /// Whose keys (`ws_…`); default the key's own workspace. Another workspace: the operator's admin key only.
    workspace_id: Option<String>,
}

/// A workspace's keys, revoked ones included, oldest first: prefix, scopes and last use, never the secret.
#[utoipa::path(get, path = "/keys", tag = "keys", params(KeysQuery), responses((status = 200, description = "The keys.", body = Listed<ApiKey>)))]
async fn list(State(app): State<Arc<AppState>>, Grant(grant): Grant, Query(q): Query<KeysQuery>) -> Result<Json<Listed<ApiKey>>, ApiError> {
    let ws = target(&app, &grant, q.workspace_id.as_deref()).await?;
    let data = app
        .store
        .list_api_keys(&ws)
        .await?
        .into_iter()
        .map(|k| ApiKey {
            id: k.id,
            name: k.name,
            workspace_id: ws.as_str().to_string(),
            prefix: k.prefix,
            scopes: scopes_of(&k.scopes),
            created_at: at(k.created_at),
            last_used_at: k.last_used_at.map(at),
            revoked_at: k.revoked_at.map(at),
        })
        .collect();
    Ok(Json(Listed { data }))
}

/// Revokes a key: every request with it gets 401 from the commit on, on every node (keys
/// are looked up in the database on each request, never cached).
#[utoipa::path(delete, path = "/keys/{id}", tag = "keys", params(("id" = String, Path, description = "Key id (`key_…`).")),
    responses((status = 204, description = "Revoked.")))]
async fn revoke(State(app): State<Arc<AppState>>, Grant(grant): Grant, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let ws = match app.store.api_key_workspace(&id).await? {
        Some(ws) if grant.operator || ws == grant.workspace_id => ws,
        _ => return Err(ApiError::not_found("API key")),
    };
    if app.store.revoke_api_key(&ws, &id, app.now()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("API key"))
    }
}
