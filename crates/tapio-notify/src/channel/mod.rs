//! The channels: one module per kind of receiver, each owning both what the receiver
//! documents (the payload) and how it is sent there (the transport).
//!
//! | module | payload | transport |
//! |---|---|---|
//! | [`slack`] | Block Kit incoming-webhook message | HTTP POST |
//! | [`pagerduty`] | Events API v2 event | HTTP POST |
//! | [`webhook`] | Tapio's own JSON body (version "1") | HTTP POST with an idempotency key |
//! | [`jira`] | REST v2 "create issue" / comment | HTTP search, then create or comment |
//! | [`email`] | an RFC 5322 message (MIME, RFC 2047) | SMTP submission |
//!
//! Payloads respect each receiver's size limits. [`deliver`] picks the channel for a
//! receiver; every channel answers with a [`Sent`], which the dispatcher turns into
//! delivered, retried or failed.

pub mod email;
pub mod http;
pub mod jira;
pub mod pagerduty;
pub mod slack;
pub mod webhook;

use std::time::Duration;

use chrono::Utc;
use tapio_core::Incident;

use crate::config::{Kind, Receiver};
use crate::templates::NotificationKind;

/// What one delivery attempt came to.
#[derive(Debug)]
pub enum Sent {
    Ok,
    /// Worth trying again (network failures, 408, 429, 5xx, SMTP 4xx), after at least the
    /// receiver's Retry-After when it gave one.
    Retry(String, Option<Duration>),
    /// The receiver refuses this message for good (4xx other than 408/429, SMTP 5xx).
    Refused(String),
}

/// One notification as a receiver gets it.
pub struct Message<'a> {
    pub kind: NotificationKind,
    pub incident: &'a Incident,
    /// The rendered template.
    pub text: &'a str,
    /// The incident's link when a base URL is configured.
    pub link: Option<&'a str>,
    /// The outbox key: the same for every attempt of this notification (webhooks send it
    /// as `idempotency-key`).
    pub key: &'a str,
}

/// Deliver `msg` to `rcv` over its channel. Blocking (HTTP and SMTP with `timeout` on
/// each read and write): the dispatcher runs it on a blocking thread.
pub fn deliver(agent: &ureq::Agent, rcv: &Receiver, timeout: Duration, msg: &Message) -> Sent {
    let (kind, inc, text, link) = (msg.kind, msg.incident, msg.text, msg.link);
    match rcv.kind {
        Kind::Slack => slack::send(agent, &rcv.url, kind, inc, text, link),
        Kind::PagerDuty => pagerduty::send(
            agent,
            &rcv.url,
            kind,
            inc,
            rcv.routing_key.as_deref().unwrap_or(""),
            link,
        ),
        Kind::Webhook => webhook::send(agent, &rcv.url, kind, inc, text, msg.key),
        Kind::Email => match &rcv.email {
            Some(cfg) => email::send(cfg, timeout, kind, inc, text, Utc::now()),
            None => Sent::Refused("email receiver without SMTP settings".into()),
        },
        Kind::Jira => match &rcv.jira {
            Some(cfg) => jira::send(agent, &rcv.url, cfg, kind, inc, text),
            None => Sent::Refused("jira receiver without project settings".into()),
        },
    }
}

/// The first line of a rendered text and the rest (trimmed).
fn split_heading(text: &str) -> (&str, &str) {
    let text = text.trim();
    match text.split_once('\n') {
        Some((head, rest)) => (head.trim(), rest.trim()),
        None => (text, ""),
    }
}

/// The runbook's heading for `kind`, for a rendered text with none.
fn default_heading(kind: NotificationKind, inc: &Incident) -> String {
    match kind {
        NotificationKind::Initial => format!("🚨 INCIDENT: {} - {}", inc.severity, inc.title),
        NotificationKind::Update => format!("📊 UPDATE: {} ({})", inc.id, inc.title),
        NotificationKind::Resolution => format!("✅ RESOLVED: {} ({})", inc.id, inc.title),
    }
}

/// Whitespace runs (line breaks included) as single spaces.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
