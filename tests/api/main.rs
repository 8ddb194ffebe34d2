//! Black-box tests over HTTP against the real server, started in-process on port 0, and of the built
//! binary's commands. The same source is two test binaries (Cargo.toml): `api` runs the suite on SQLite,
//! `api_postgres` on a throwaway PostgreSQL (pg.rs); see helpers.rs for spawn_app.

mod apns_standin;
mod cli;
mod crash;
mod deploy;
mod examples;
mod helpers;
mod inspect_corpus;
mod ledger;
mod members;
mod openapi;
mod outage;
mod pass_cache;
mod passes;
mod pg;
mod pg_cluster;
mod processes;
mod scale_out;
mod web_service;
