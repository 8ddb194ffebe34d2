//! Google Wallet: the service account, the OAuth and REST client, the pure builders of ids and save
//! links, the update decisions, and the verification of save/delete callbacks.
//!
//! Everything here is below the handlers and knows no database: the worker (`push::google`) and the
//! member answer (`app`) use it, the store records what it decided.

pub mod account;
pub mod callbacks;
pub mod client;
pub mod ecv2;
pub mod offer_wallet;
pub mod offers;
pub mod pass;
pub mod rate;
pub mod roots;
pub mod sync;
pub mod wallet;
