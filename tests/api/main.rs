//! Black-box tests over HTTP against the real server, started in-process on port 0, and of the built
//! binary's commands. The same source is two test binaries (Cargo.toml): `api` runs the suite on SQLite,
//! `api_postgres` on a throwaway PostgreSQL (pg.rs), which also runs the several-instance suites
//! (scale_out.rs, outage.rs); see helpers.rs for spawn_app.

mod apns_standin;
// The browser harness; the page tests are in browser_pages.rs.
#[allow(dead_code)]
mod browser;
mod browser_pages;
mod cli;
mod crash;
mod deploy;
mod examples;
mod google;
mod google_offers;
mod google_signer;
// The stand-in's whole API is for benches too; the suite uses most of it.
#[allow(dead_code)]
mod google_standin;
mod helpers;
mod inspect_corpus;
mod ledger;
mod members;
mod offers;
mod openapi;
mod pass_cache;
mod passes;
mod pg;
// OwnCluster serves only the PostgreSQL binary's outage suite.
#[allow(dead_code)]
mod pg_cluster;
mod processes;
mod registrations;
mod scans;
mod staff;
mod throttling;
// Programs taken from the machine, and the honest skip when one is missing.
mod tools;
mod web_service;
// The WebDriver commands browser.rs sends to chromedriver.
mod webdriver;
