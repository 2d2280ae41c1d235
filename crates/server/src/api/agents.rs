//! `/api/v1/agents`: the agents of dialtone's own voice pipeline (create, list, get,
//! update, delete). A campaign or single call on Exotel or Twilio that names one
//! (`agent_id`) is placed with a media stream to dialtone, and the agent's settings drive
//! the conversation. Every field is checked here; a wrong one is a 400 naming it.

use super::openapi::ErrorBody;
use super::Path;
use super::{paged, ApiError, Auth, Json, PageQuery, Paged, Query};
use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use dialtone_core::agent::{DEFAULT_MAX_DURATION_SECS, DEFAULT_NO_RESPONSE_PROMPT};
use dialtone_core::{Agent, AgentId, ProviderKind, SpeechService, WorkspaceId};
use serde::Deserialize;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(show, update, remove))
}

/// The speech-service providers each service knows (`SpeechService::provider`).
pub const STT_PROVIDERS: &[&str] = &["deepgram", "openai", "sim"];
pub const LLM_PROVIDERS: &[&str] = &["openai", "sim"];
pub const TTS_PROVIDERS: &[&str] = &["elevenlabs", "flite", "sim"];

/// `language` when the request does not give one.
pub const DEFAULT_LANGUAGE: &str = "en-US";
/// The longest `max_duration_secs`: 14,400 s (Exotel's and Twilio's longest `TimeLimit`,
/// 4 h) less the 60 s margin the provider's own limit gets.
pub const MAX_DURATION_SECS: u32 = dialtone_providers::MediaStream::MAX_TIME_LIMIT_SECS - dialtone_providers::MediaStream::TIME_LIMIT_MARGIN_SECS;
/// The shortest `max_duration_secs` (a greeting and a goodbye need some time).
pub const MIN_DURATION_SECS: u32 = 10;

/// Lengths in characters: what a prompt or a line may hold.
const MAX_NAME: usize = 200;
const MAX_LINE: usize = 4_000;
const MAX_PROMPT: usize = 50_000;

/// The body of `POST /agents`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Renewals", "greeting": "Hello, this is Ana from Acme.", "system_prompt": "You remind customers of their renewal.",
    "goodbye": "Thank you, goodbye.", "stt": {"provider": "sim"}, "llm": {"provider": "sim"}, "tts": {"provider": "sim"}}))]
struct NewAgent {
    name: String,
    greeting: String,
    system_prompt: String,
    no_response_prompt: Option<String>,
    goodbye: String,
    voicemail_message: Option<String>,
    max_duration_secs: Option<u32>,
    language: Option<String>,
    stt: SpeechService,
    llm: SpeechService,
    tts: SpeechService,
}

/// A PATCH body: a field that is absent stays as it is; `voicemail_message: null` removes
/// the message (the agent then hangs up on a voicemail box without one).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AgentPatch {
    #[serde(default, deserialize_with = "super::patch::not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "super::patch::not_null")]
    greeting: Option<String>,
    #[serde(default, deserialize_with = "super::patch::not_null")]
    system_prompt: Option<String>,
    #[serde(default, deserialize_with = "super::patch::not_null")]
    no_response_prompt: Option<String>,
    #[serde(default, deserialize_with = "super::patch::not_null")]
    goodbye: Option<String>,
    #[serde(default, deserialize_with = "super::patch::nullable")]
    #[schema(value_type = Option<String>)]
    voicemail_message: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::patch::not_null")]
    max_duration_secs: Option<u32>,
    #[serde(default, deserialize_with = "super::patch::not_null")]
    language: Option<String>,
    #[serde(default, deserialize_with = "super::patch::not_null")]
    stt: Option<SpeechService>,
    #[serde(default, deserialize_with = "super::patch::not_null")]
    llm: Option<SpeechService>,
    #[serde(default, deserialize_with = "super::patch::not_null")]
    tts: Option<SpeechService>,
}

/// A text field: trimmed, not empty, at most `max` characters.
fn text(field: &str, v: &str, max: usize) -> Result<String, ApiError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(ApiError::invalid(field, format!("must be at most {max} characters")));
    }
    Ok(v.to_string())
}

fn duration(v: u32) -> Result<u32, ApiError> {
    if !(MIN_DURATION_SECS..=MAX_DURATION_SECS).contains(&v) {
        return Err(ApiError::invalid("max_duration_secs", format!("must be between {MIN_DURATION_SECS} and {MAX_DURATION_SECS} seconds")));
    }
    Ok(v)
}

/// A BCP 47 tag as the speech services take it: letters, digits and `-`, e.g. `en-US`, `hi-IN`.
fn language(v: &str) -> Result<String, ApiError> {
    let v = v.trim();
    let ok = !v.is_empty()
        && v.len() <= 35
        && v.split('-').all(|part| !part.is_empty() && part.len() <= 8 && part.chars().all(|c| c.is_ascii_alphanumeric()))
        && v.split('-').next().is_some_and(|p| p.chars().all(|c| c.is_ascii_alphabetic()));
    if !ok {
        return Err(ApiError::invalid("language", "must be a BCP 47 language tag such as en-US or hi-IN"));
    }
    Ok(v.to_string())
}

/// One speech service: a provider this service knows, and settings that are not empty;
/// `base_url` an http(s) URL.
fn service(field: &str, s: SpeechService, known: &[&str]) -> Result<SpeechService, ApiError> {
    let provider = s.provider.trim().to_ascii_lowercase();
    if !known.contains(&provider.as_str()) {
        return Err(ApiError::invalid(&format!("{field}.provider"), format!("must be one of {}", known.join(", "))));
    }
    let opt = |name: &str, v: Option<String>| v.map(|v| text(&format!("{field}.{name}"), &v, MAX_NAME)).transpose();
    let base_url = match s.base_url {
        None => None,
        Some(u) => {
            super::error::absolute_url(&format!("{field}.base_url"), &u, "http", "http://127.0.0.1:11434/v1")?;
            Some(u.trim().trim_end_matches('/').to_string())
        }
    };
    Ok(SpeechService { provider, model: opt("model", s.model)?, voice: opt("voice", s.voice)?, base_url })
}

fn voicemail(v: Option<String>) -> Result<Option<String>, ApiError> {
    v.map(|m| text("voicemail_message", &m, MAX_LINE)).transpose()
}

impl NewAgent {
    fn validate(self, ws: WorkspaceId, now: jiff::Timestamp) -> Result<Agent, ApiError> {
        Ok(Agent {
            id: AgentId::new(),
            workspace_id: ws,
            name: text("name", &self.name, MAX_NAME)?,
            greeting: text("greeting", &self.greeting, MAX_LINE)?,
            system_prompt: text("system_prompt", &self.system_prompt, MAX_PROMPT)?,
            no_response_prompt: text("no_response_prompt", self.no_response_prompt.as_deref().unwrap_or(DEFAULT_NO_RESPONSE_PROMPT), MAX_LINE)?,
            goodbye: text("goodbye", &self.goodbye, MAX_LINE)?,
            voicemail_message: voicemail(self.voicemail_message)?,
            max_duration_secs: duration(self.max_duration_secs.unwrap_or(DEFAULT_MAX_DURATION_SECS))?,
            language: language(self.language.as_deref().unwrap_or(DEFAULT_LANGUAGE))?,
            stt: service("stt", self.stt, STT_PROVIDERS)?,
            llm: service("llm", self.llm, LLM_PROVIDERS)?,
            tts: service("tts", self.tts, TTS_PROVIDERS)?,
            created_at: now,
            updated_at: now,
        })
    }
}

impl AgentPatch {
    fn apply(self, mut a: Agent, now: jiff::Timestamp) -> Result<Agent, ApiError> {
        if let Some(v) = self.name {
            a.name = text("name", &v, MAX_NAME)?;
        }
        if let Some(v) = self.greeting {
            a.greeting = text("greeting", &v, MAX_LINE)?;
        }
        if let Some(v) = self.system_prompt {
            a.system_prompt = text("system_prompt", &v, MAX_PROMPT)?;
        }
        if let Some(v) = self.no_response_prompt {
            a.no_response_prompt = text("no_response_prompt", &v, MAX_LINE)?;
        }
        if let Some(v) = self.goodbye {
            a.goodbye = text("goodbye", &v, MAX_LINE)?;
        }
        if let Some(v) = self.voicemail_message {
            a.voicemail_message = voicemail(v)?;
        }
        if let Some(v) = self.max_duration_secs {
            a.max_duration_secs = duration(v)?;
        }
        if let Some(v) = self.language {
            a.language = language(&v)?;
        }
        if let Some(v) = self.stt {
            a.stt = service("stt", v, STT_PROVIDERS)?;
        }
        if let Some(v) = self.llm {
            a.llm = service("llm", v, LLM_PROVIDERS)?;
        }
        if let Some(v) = self.tts {
            a.tts = service("tts", v, TTS_PROVIDERS)?;
        }
        a.updated_at = now;
        Ok(a)
    }
}

/// Now, at the store's precision (unix milliseconds), so an answer shows what a later read shows.
fn now_ms(app: &AppState) -> jiff::Timestamp {
    let now = app.now();
    jiff::Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now)
}

#[utoipa::path(post, path = "/agents", tag = "agents", request_body = NewAgent,
    responses((status = 201, description = "The agent.", body = Agent), (status = 415, description = "The body is not `application/json`.", body = ErrorBody)))]
async fn create(State(app): State<Arc<AppState>>, Auth(ws): Auth, Json(body): Json<NewAgent>) -> Result<(StatusCode, Json<Agent>), ApiError> {
    let agent = body.validate(ws, now_ms(&app))?;
    app.store.create_agent(&agent).await?;
    app.media.warm(&agent);
    Ok((StatusCode::CREATED, Json(agent)))
}

#[utoipa::path(get, path = "/agents", tag = "agents", params(PageQuery), responses((status = 200, description = "A page of agents, newest first.", body = Paged<Agent>)))]
async fn list(State(app): State<Arc<AppState>>, Auth(ws): Auth, Query(q): Query<PageQuery>) -> Result<Json<Paged<Agent>>, ApiError> {
    let page = q.page(|c| AgentId::parse(c).is_some())?;
    let agents = app.store.list_agents(&ws, &page).await?;
    Ok(Json(paged(agents, page.limit, |a| a.id.to_string())))
}

async fn load(app: &AppState, ws: &WorkspaceId, id: &str) -> Result<Agent, ApiError> {
    let id = AgentId::parse(id).ok_or_else(|| ApiError::not_found("agent"))?;
    app.store.get_agent(ws, &id).await?.ok_or_else(|| ApiError::not_found("agent"))
}

#[utoipa::path(get, path = "/agents/{id}", tag = "agents", params(("id" = String, Path, description = "The agent id (`agt_…`).")), responses((status = 200, description = "The agent.", body = Agent)))]
async fn show(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<Json<Agent>, ApiError> {
    Ok(Json(load(&app, &ws, &id).await?))
}

/// Changes the given fields; `voicemail_message: null` removes the message.
#[utoipa::path(patch, path = "/agents/{id}", tag = "agents", params(("id" = String, Path, description = "The agent id (`agt_…`).")), request_body = AgentPatch,
    responses((status = 200, description = "The agent.", body = Agent), (status = 415, description = "The body is not `application/json`.", body = ErrorBody)))]
async fn update(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>, Json(body): Json<AgentPatch>) -> Result<Json<Agent>, ApiError> {
    let agent = body.apply(load(&app, &ws, &id).await?, now_ms(&app))?;
    // Whole-row write: of two PATCHes at once the later one wins entirely.
    if !app.store.update_agent(&agent).await? {
        return Err(ApiError::not_found("agent"));
    }
    app.media.warm(&agent);
    Ok(Json(agent))
}

#[utoipa::path(delete, path = "/agents/{id}", tag = "agents", params(("id" = String, Path, description = "The agent id (`agt_…`).")),
    responses((status = 204, description = "Deleted."), (status = 409, description = "A campaign that is not over uses it.", body = ErrorBody)))]
async fn remove(State(app): State<Arc<AppState>>, Auth(ws): Auth, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = AgentId::parse(&id).ok_or_else(|| ApiError::not_found("agent"))?;
    // A campaign that is not over still uses it: 409 `conflict` naming the campaigns.
    if !app.store.delete_agent(&ws, &id, app.now()).await? {
        return Err(ApiError::not_found("agent"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Checks a campaign's or single call's `agent_id`: an agent of this workspace, on a
/// provider whose calls can stream to dialtone (Exotel, Twilio). Errors: 422
/// `invalid_agent` naming `agent_id`.
pub async fn check_agent_id(app: &AppState, ws: &WorkspaceId, agent_id: Option<&str>, provider: ProviderKind) -> Result<Option<AgentId>, ApiError> {
    let Some(raw) = agent_id else { return Ok(None) };
    let invalid = |message: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_agent", format!("agent_id: {message}"))
            .with_details(serde_json::json!({ "field": "agent_id" }))
    };
    if !matches!(provider, ProviderKind::Exotel | ProviderKind::Twilio) {
        return Err(invalid(format!("an agent needs a media stream, which only exotel and twilio calls open (this one is on {provider})")));
    }
    let shown: String = raw.chars().take(64).collect();
    let id = AgentId::parse(raw.trim()).ok_or_else(|| invalid(format!("{shown:?} is not an agent id (agt_…)")))?;
    let Some(agent) = app.store.get_agent(ws, &id).await? else {
        return Err(invalid(format!("no agent {id} in this workspace")));
    };
    // Refused before anyone is rung: a call whose agent cannot listen, think or speak here
    // would be answered and hung up on at once.
    if let Err(e) = app.media.speech.for_agent(&agent) {
        return Err(invalid(format!(
            "agent {id} cannot talk on this server: {e} (set the service's key under [speech], or change the agent's stt, llm or tts)"
        )));
    }
    Ok(Some(id))
}
