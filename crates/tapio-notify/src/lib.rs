//! Tapio's notifications, from an incident's state change to a message in a receiver.
//!
//! One notification's path through this crate, in order:
//!
//! 1. [`config`]: the `--notify` file: receivers, routes, dispatch limits, escalation
//!    deadlines and template overrides.
//! 2. [`outbox`]: the correlator asks [`outbox::Notifier`] which receivers an incident's new
//!    state notifies (routes, silences, the runbook's kinds: initial, update, resolution),
//!    and stores one outbox item per receiver in the same transaction as the change.
//!    [`schedule`] adds the items time brings: escalations and cadence updates.
//! 3. [`dispatch`]: [`dispatch::Dispatcher`] picks due items, renders the text with
//!    [`templates`] and hands it to the receiver's [`channel`], then records delivered,
//!    retry (with backoff) or failed (then the fallback receiver).
//! 4. [`channel`]: one module per kind of receiver (Slack, PagerDuty, webhook, email,
//!    Jira), each with its payload and its transport.
//!
//! [`redact`] keeps credentials and hostile answers out of every error and log line.
//!
//! The crate knows nothing of the server around it: the dispatcher reports outcomes and
//! escalation notes through [`dispatch::Host`], and reads silences from a [`Silences`]
//! handle the server keeps up to date.

pub mod channel;
pub mod config;
pub mod dispatch;
pub mod outbox;
pub mod redact;
pub mod schedule;
pub mod templates;

#[cfg(test)]
mod fixtures;

use std::sync::{Arc, RwLock};

pub use templates::{
    NotificationKind, RenderContext, TemplateError, Templates, human_duration, incident_link,
};

/// The active silences, shared with whoever keeps them (the server's silence API):
/// silenced incidents are recorded as usual but notify nobody.
pub type Silences = Arc<RwLock<Vec<tapio_core::silence::Silence>>>;
