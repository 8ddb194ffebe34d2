//! tessera: loyalty cards in Apple Wallet and Google Wallet, kept live.
//!
//! Data flows one way, from the edges down to storage: `cli`, `doctor` and `http` (the router) at the top;
//! request handlers by domain (`members`, `ledger`, `offers`, `scan`, `staff`, `pages`, `apple::web_service`,
//! `google::callbacks`, `ops`); `app`, the state and extractors they share; the values parsed once at the
//! edge (`domain`, `urls`), plain data (`model`), pure decisions (`plan`) and builders (`apple::pass`,
//! `google::pass`, `templates`) that know no database; the delivery engine (`delivery`, one channel per
//! destination) and `housekeeping`, over the Google service (`google::wallet`) and the transports
//! (`push::apns`, `google::client`); and `store` at the bottom, which knows no HTTP and writes the plans it
//! is handed. See ARCHITECTURE.md.

pub mod app;
pub mod apple;
pub mod cli;
pub mod coupon_links;
pub mod delivery;
pub mod doctor;
pub mod domain;
pub mod error;
pub mod google;
pub mod housekeeping;
pub mod http;
pub mod ids;
pub mod jwt;
pub mod ledger;
pub mod members;
pub mod metrics;
pub mod model;
pub mod offers;
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
pub mod urls;
