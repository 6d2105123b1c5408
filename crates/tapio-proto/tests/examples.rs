//! The shipped examples are valid envelopes (they are the documentation's examples too).

use tapio_proto::{Limits, decode_batch};

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

#[test]
fn evidence_batch_example_decodes() {
    let body = std::fs::read(root().join("evidence-batch.json")).expect("read example");
    let b = decode_batch(&body, chrono::Utc::now(), &Limits::default()).expect("valid example");
    assert_eq!(b.seq, 1);
    assert_eq!(b.events.len(), 3);
}

#[test]
fn replay_example_is_one_valid_batch_per_line_with_increasing_seq() {
    let text = std::fs::read_to_string(root().join("replay.jsonl")).expect("read replay");
    let mut last = 0;
    for (i, line) in text.lines().enumerate() {
        let b = decode_batch(line.as_bytes(), chrono::Utc::now(), &Limits::default())
            .unwrap_or_else(|e| panic!("replay.jsonl line {}: {e}", i + 1));
        assert_eq!(b.seq, last + 1, "line {}", i + 1);
        last = b.seq;
    }
    assert!(last >= 4);
}
