//! The Alertmanager webhook payload decoder (`POST /api/v1/alertmanager`): the handler's
//! pure part, `alertmanager::decode` then `alertmanager::to_events`. Any body is refused
//! with a `DecodeError` or mapped to events, never a panic; and the events it maps are
//! valid evidence (the server stores them without re-validating).
#![no_main]

mod common;

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use tapio_proto::{ENVELOPE_VERSION, EvidenceBatch, Limits, decode_batch};
use tapio_server::pipeline::alertmanager::{AGENT_PREFIX, decode, to_events};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_780_800, 0).expect("fixed clock") // 2026-11-27T12:00:00Z
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(hook) = decode(data, &limits) else {
        return;
    };
    let Ok(events) = to_events(&hook, now(), &limits) else {
        return;
    };
    assert_eq!(events.len(), hook.alerts.len());
    let batch = EvidenceBatch {
        version: ENVELOPE_VERSION,
        agent_id: format!("{AGENT_PREFIX}{}", hook.receiver),
        node: "-".into(),
        seq: 1,
        sent_at: None,
        events,
    };
    let body = serde_json::to_vec(&batch).expect("mapped alerts serialize");
    let back = decode_batch(&body, now(), &limits)
        .unwrap_or_else(|e| panic!("mapped alerts are not valid evidence: {e}"));
    common::assert_same_events("mapped alerts read back changed", &batch.events, &back.events);
});
