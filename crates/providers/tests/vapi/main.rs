//! The Vapi client from the outside: the same surface the engine and server use.

mod client;
mod webhook;
