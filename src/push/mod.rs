//! Pushes: the APNs client (HTTP/2 over TLS) and the worker that drains the outbox through it.

pub mod apns;
pub mod worker;

pub use apns::{ApnsClient, ApnsReply};
pub use worker::{PushWorker, WorkerSettings};
