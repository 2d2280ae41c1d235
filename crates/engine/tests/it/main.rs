//! The engine's tests, in one binary: each drives a real engine on a fresh SQLite store
//! against the one scripted provider (`dialtone_engine::testing`), on the injected clock
//! where time matters, waiting on the engine (`settle`) rather than sleeping.

mod support;

mod agent_media;
mod alerts;
mod breaker;
mod catch_up;
mod max_duration;
mod scheduled;
mod send_order;
mod unanswered;
mod unknown_events;
mod voice_race;
