//! Notifications: which incident state changes notify which receivers (the outbox, filled
//! by the correlator in the same transaction as the change), and the dispatcher that
//! delivers them with bounded retries and a fallback.

pub mod config;
pub mod dispatch;
pub mod jira;
pub mod outbox;
pub mod redact;
pub mod schedule;
pub mod smtp;
