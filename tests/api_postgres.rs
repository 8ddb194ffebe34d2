//! The black-box suite of tests/api/ again, on a throwaway PostgreSQL (see tests/api/pg.rs). The
//! modules are tests/api/'s own files; `pg::the_postgres_run_lists_every_suite_module` keeps this list and
//! tests/api/main.rs the same.

#[path = "api/apns_standin.rs"]
mod apns_standin;
#[allow(dead_code)]
#[path = "api/browser.rs"]
mod browser;
#[path = "api/browser_pages.rs"]
mod browser_pages;
#[path = "api/cli.rs"]
mod cli;
#[path = "api/crash.rs"]
mod crash;
#[path = "api/deploy.rs"]
mod deploy;
#[path = "api/examples.rs"]
mod examples;
#[path = "api/google.rs"]
mod google;
#[path = "api/google_offers.rs"]
mod google_offers;
#[path = "api/google_rate.rs"]
mod google_rate;
#[path = "api/google_signer.rs"]
mod google_signer;
#[allow(dead_code)]
#[path = "api/google_standin.rs"]
mod google_standin;
#[path = "api/helpers.rs"]
mod helpers;
#[path = "api/inspect_corpus.rs"]
mod inspect_corpus;
#[path = "api/ledger.rs"]
mod ledger;
#[path = "api/members.rs"]
mod members;
#[path = "api/offers.rs"]
mod offers;
#[path = "api/openapi.rs"]
mod openapi;
#[path = "api/outage.rs"]
mod outage;
#[path = "api/passes.rs"]
mod passes;
#[path = "api/pg.rs"]
mod pg;
#[path = "api/pg_cluster.rs"]
mod pg_cluster;
#[path = "api/pg_tls.rs"]
mod pg_tls;
#[path = "api/processes.rs"]
mod processes;
#[path = "api/registrations.rs"]
mod registrations;
#[path = "api/scale_out.rs"]
mod scale_out;
#[path = "api/scans.rs"]
mod scans;
#[path = "api/staff.rs"]
mod staff;
#[path = "api/throttling.rs"]
mod throttling;
#[path = "api/tools.rs"]
mod tools;
#[path = "api/web_service.rs"]
mod web_service;
#[path = "api/webdriver.rs"]
mod webdriver;
