//! The agent's kernel event decoder (`abi::decode`, one BPF ring-buffer record, and
//! `abi::decode_dst_key`, one `conn_stats` map key): any bytes are refused with an
//! `abi::DecodeError` or decoded, never a panic; and a decoded record turns into valid
//! evidence (edge filter thresholds at 1, so every record reports).
#![no_main]

mod common;

use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use tapio_agent::abi::{self, DST_KEY_SIZE, Record};
use tapio_agent::detect::{Clock, Detector, NodeOnly, Thresholds};
use tapio_agent::metrics::Metrics;
use tapio_proto::{ENVELOPE_VERSION, EvidenceBatch, Limits, decode_batch};

static METRICS: LazyLock<Arc<Metrics>> = LazyLock::new(|| Arc::new(Metrics::new()));

fuzz_target!(|data: &[u8]| {
    if let Some(key) = data.get(..DST_KEY_SIZE) {
        let key: &[u8; DST_KEY_SIZE] = key.try_into().expect("key size");
        if let Ok(d) = abi::decode_dst_key(key) {
            let _ = d.to_string();
        }
    }
    let Ok(record) = abi::decode(data) else {
        return;
    };
    let t = Thresholds {
        refused_min: 1,
        timeout_min: 1,
        connect_error_min: 1,
        slow_io_min: 1,
        io_error_min: 1,
        exit_ignore_comms: Vec::new(),
        exit_ignore_signals: Vec::new(),
        ..Thresholds::default()
    };
    let clock = Clock {
        boot_epoch_ns: 1_795_773_600_000_000_000,
    };
    let mut det = Detector::new(t, "node-fuzz".into(), clock, METRICS.clone());
    let mut res = NodeOnly("node-fuzz".into());
    let event = match &record {
        Record::Connect(r) => det.connect(r, &mut res),
        Record::Exit(r) => det.exit(r, &mut res),
        Record::Oom(r) => Some(det.oom(r, &mut res)),
        Record::Block(r) => det.block(r, &mut res),
    };
    let Some(event) = event else {
        return;
    };
    let batch = EvidenceBatch {
        version: ENVELOPE_VERSION,
        agent_id: "tapio-agent-node-fuzz".into(),
        node: "node-fuzz".into(),
        seq: 1,
        sent_at: None,
        events: vec![event],
    };
    let body = serde_json::to_vec(&batch).expect("evidence serializes");
    // Kernel timestamps are the kernel's own: no future check (the calendar's end disables it).
    let back = decode_batch(&body, DateTime::<Utc>::MAX_UTC, &Limits::default())
        .unwrap_or_else(|e| panic!("a decoded kernel record is not valid evidence: {e}"));
    common::assert_same_events("kernel evidence reads back changed", &batch.events, &back.events);
});
