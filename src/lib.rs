//! tessera: loyalty cards in Apple Wallet and Google Wallet, kept live.
//!
//! Data flows one way, from the edges down to storage: `cli` and `http` at the top, request handlers by
//! domain (`members`, `pages`), plain data (`model`), pure decisions (`plan`) and builders (`apple::pass`,
//! `templates`) that know no database, and `store` at the bottom, which knows no HTTP and writes the plans
//! it is handed. See ARCHITECTURE.md.

pub mod apple;
pub mod cli;
pub mod doctor;
pub mod error;
pub mod http;
pub mod ids;
pub mod ledger;
pub mod members;
pub mod metrics;
pub mod model;
pub mod pages;
pub mod plan;
pub mod push;
pub mod settings;
pub mod store;
pub mod templates;
pub mod time_fmt;
