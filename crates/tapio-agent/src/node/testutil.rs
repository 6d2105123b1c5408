//! Helpers shared by the node observers' unit tests.

use chrono::{DateTime, TimeZone, Utc};
use tapio_proto::Event;

use super::{KmsgRecord, NodeConfig, parse_kmsg_record};

pub(crate) fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0)
        .single()
        .expect("valid time")
}

pub(crate) fn cfg() -> NodeConfig {
    NodeConfig::default()
}

pub(crate) fn f(ev: &Event, key: &str) -> f64 {
    ev.attr_f64(key)
        .unwrap_or_else(|| panic!("attribute {key} missing in {ev:?}"))
}

pub(crate) fn s(ev: &Event, key: &str) -> String {
    ev.attr_str(key)
        .unwrap_or_else(|| panic!("attribute {key} missing in {ev:?}"))
}

pub(crate) fn rec(pri: u32, seq: u64, msg: &str) -> KmsgRecord {
    parse_kmsg_record(&format!("{pri},{seq},{},-;{msg}\n", seq * 1000)).expect("record")
}
