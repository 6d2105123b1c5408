//! The evidence envelope decoder (`POST /api/v1/evidence`, replay lines, and
//! `POST /api/v1/events`): any body is either refused with a `DecodeError` or accepted,
//! never a panic; and what is accepted is valid evidence that reads back unchanged once
//! the server writes it out again.
#![no_main]

mod common;

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use tapio_proto::{ENVELOPE_VERSION, EvidenceBatch, Limits, decode_batch, decode_single_event};

fn now() -> DateTime<Utc> {
    // The seeds' clock (examples/ and the unit tests).
    DateTime::from_timestamp(1_795_780_800, 0).expect("fixed clock") // 2026-11-27T12:00:00Z
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(batch) = decode_batch(data, now(), &limits) {
        let again = serde_json::to_vec(&batch).expect("an accepted batch serializes");
        let back = decode_batch(&again, now(), &limits)
            .unwrap_or_else(|e| panic!("an accepted batch does not read back: {e}"));
        let (mut head, mut back_head) = (batch.clone(), back.clone());
        head.events.clear();
        back_head.events.clear();
        assert_eq!(back_head, head, "an accepted batch reads back changed");
        common::assert_same_events("an accepted batch reads back changed", &batch.events, &back.events);
    }
    if let Ok((event, producer)) = decode_single_event(data, now(), &limits) {
        assert!(!producer.is_empty());
        // The event is stored like agent evidence: it must be valid as such.
        let batch = EvidenceBatch {
            version: ENVELOPE_VERSION,
            agent_id: format!("api:{producer}"),
            node: "-".into(),
            seq: 1,
            sent_at: None,
            events: vec![event],
        };
        let body = serde_json::to_vec(&batch).expect("an accepted event serializes");
        let back = decode_batch(&body, now(), &limits)
            .unwrap_or_else(|e| panic!("an accepted single event is not valid evidence: {e}"));
        common::assert_same_events("an accepted event reads back changed", &batch.events, &back.events);
    }
});
