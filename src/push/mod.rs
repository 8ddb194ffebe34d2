//! Delivery: the APNs client (HTTP/2 over TLS) and the worker that drains the push outbox through it, and
//! the Google worker that drains the object outbox through `google::wallet`.

pub mod apns;
pub mod google;
pub mod worker;

pub use apns::{ApnsClient, ApnsReply};
pub use google::GoogleWorker;
pub use worker::{PushWorker, WorkerSettings};
