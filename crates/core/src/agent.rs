//! An agent for dialtone's own voice pipeline (Exotel and Twilio media streams): what it
//! says and which speech services it uses, and the transcript a conversation leaves on a call.
//!
//! Plain data. The conversation itself lives in `dialtone-voice`; the speech-service
//! clients live in the server.

use crate::{AgentId, WorkspaceId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// `no_response_prompt` when the agent does not set one.
pub const DEFAULT_NO_RESPONSE_PROMPT: &str = "Hello? Are you there?";
/// `max_duration_secs` when the agent does not set one (10 min).
pub const DEFAULT_MAX_DURATION_SECS: u32 = 600;

/// An agent (`/api/v1/agents`). A campaign or single call on Exotel or Twilio that names
/// one (`agent_id`) is handled by dialtone's own voice pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Agent {
    pub id: AgentId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// Said first, as soon as the callee's line is open (or after their first "Hello?").
    pub greeting: String,
    /// The LLM's system prompt.
    pub system_prompt: String,
    /// Said after 10 s of silence following our last audio (default [`DEFAULT_NO_RESPONSE_PROMPT`]).
    pub no_response_prompt: String,
    /// Said before we hang up (no response, maximum duration).
    pub goodbye: String,
    /// Left after a voicemail greeting's beep; `None`: hang up without a message.
    #[schema(required = true)]
    pub voicemail_message: Option<String>,
    /// The conversation is ended with `goodbye` after this long (s, default 600).
    pub max_duration_secs: u32,
    /// BCP 47 language tag given to the speech services, e.g. `en-US`.
    pub language: String,
    pub stt: SpeechService,
    pub llm: SpeechService,
    pub tts: SpeechService,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// One speech service an agent uses: which provider and its settings.
///
/// `provider` names a client: STT `deepgram`, `openai` (OpenAI-compatible transcription),
/// `sim`; LLM `openai` (any OpenAI-compatible chat endpoint: OpenAI, Ollama, llama.cpp),
/// `sim`; TTS `elevenlabs`, `flite` (local, Debian's `flite`), `sim`.
/// Unknown fields are refused (a per-agent `api_key` or a misspelt `modle` would otherwise
/// be dropped without a word): keys live in the server's `[speech]` config.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpeechService {
    pub provider: String,
    /// Model id, e.g. `nova-3`, `gpt-4o-mini`, `eleven_flash_v2_5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// TTS voice id (ElevenLabs voice id, flite voice name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    /// Overrides the service's address, e.g. `http://127.0.0.1:11434/v1` for a local
    /// OpenAI-compatible server. `None`: the config's address for this provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

/// Who spoke a transcript turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    /// dialtone's agent.
    Agent,
    /// The person (or machine) called.
    Callee,
}

crate::text_enum!(Speaker, "speaker", { Agent => "agent", Callee => "callee" });

/// One turn of a call's transcript, stored on the call and shown by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TranscriptTurn {
    pub speaker: Speaker,
    /// For an interrupted agent turn, only what was played (up to the last acknowledged mark).
    pub text: String,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub ended_at: Timestamp,
    /// An agent turn the callee barged in on.
    #[serde(default)]
    pub interrupted: bool,
}
