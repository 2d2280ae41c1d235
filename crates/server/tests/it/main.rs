//! Integration tests: the real `dialtone` server on port 0 with a fresh SQLite file per
//! test, a real simulator on another port, everything spoken over HTTP.

mod accounts;
mod api;
mod campaigns;
mod contacts;
mod dnc;
mod edges;
mod guards;
mod event_edges;
mod hangup;
mod import;
mod inbound;
mod providers;
mod phones;
mod reaper;
mod single_calls;
mod support;
mod webhooks;
mod zones;
