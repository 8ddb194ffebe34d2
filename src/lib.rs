//! tessera: loyalty cards in Apple Wallet and Google Wallet, kept live.
//!
//! Data flows one way, from the edges down to storage: `cli` and `http` (the router) at the top; request
//! handlers by domain (`members`, `ledger`, `pages`, `apple::web_service`, `ops`); `app`, the state and
//! extractors they share; plain data (`model`), pure decisions (`plan`) and builders (`apple::pass`, `templates`) that know no database; the push
//! worker and its APNs client; and `store` at the bottom, which knows no HTTP and writes the plans it is handed. See ARCHITECTURE.md.

pub mod app;
pub mod apple;
pub mod cli;
pub mod doctor;
pub mod error;
pub mod google;
pub mod http;
pub mod ids;
pub mod jwt;
pub mod ledger;
pub mod members;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod plan;
pub mod push;
pub mod scan;
pub mod settings;
pub mod staff;
pub mod store;
pub mod templates;
pub mod time_fmt;
pub mod validate;
