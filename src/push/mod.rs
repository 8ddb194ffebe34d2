//! The APNs transport: an HTTP/2 client over TLS that knows no database; the delivery engine's APNs
//! channel (`delivery::apns`) sends through it.

pub mod apns;

pub use apns::{ApnsClient, ApnsReply};
