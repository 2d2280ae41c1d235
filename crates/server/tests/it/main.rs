//! Integration tests: the real `dialtone` server on port 0 with a fresh SQLite file per
//! test, a real simulator on another port, everything spoken over HTTP.

mod accounts;
mod agents;
mod api;
mod batches;
mod call_detail;
mod campaign_accounts;
mod campaigns;
mod cli;
mod contacts;
mod dashboard;
mod dnc;
mod edges;
mod event_edges;
mod events;
mod guards;
mod hangup;
mod idempotency;
mod import;
mod inbound;
mod input;
mod isolation;
mod openapi;
mod outbound;
mod phones;
mod pools;
mod provider_accounts;
mod providers;
mod reaper;
mod single_calls;
mod stats;
mod steer;
mod support;
mod webhooks;
mod workspaces;
mod zones;
