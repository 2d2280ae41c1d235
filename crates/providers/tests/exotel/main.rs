//! The Exotel client from the outside: the same surface the engine and server use.

#[path = "../common/fake.rs"]
mod fake;

mod client;
mod webhook;
