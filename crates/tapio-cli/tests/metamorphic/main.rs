//! Metamorphic tests: every scenario of the suite (`tests/scenarios`, `docs/scenarios.md`)
//! replayed through a fresh engine under transformations whose effect on the right answer
//! is known without knowing the answer.
//!
//! Must NOT change the answer (per expected incident: matched, AC@1, AC@3, severity exact;
//! per scenario: spurious incidents and pages on noise, scored by `tapio_core::eval`
//! against `expected.json` transformed the same way):
//! - renaming every application namespace, object and node consistently (twice: new names
//!   in the old names' order, and in reverse order);
//! - shifting every timestamp by 37 days and 13 s;
//! - re-chunking the batches (one event per batch; 50 events per batch);
//! - routine churn: a healthy extra Deployment in a namespace of its own, scaled 2→3→2;
//! - one healthy replica more for a Deployment that plays no part in the answer (where
//!   a scenario has one);
//! - rewording every Prometheus alert's summary and description, figures kept.
//!
//! Must move the answer in a known direction:
//! - a thousandth of the traffic (connect statistics, refused/timeout counts): no more
//!   P1/P2 incidents, and none that rests on connect statistics alone;
//! - one crash-looping replica of three is less severe than all three (a synthetic pair).
//!
//! Each failure names the scenario, the transformation and what changed (before → after,
//! names mapped back to the original ones); every scenario × transformation runs before a
//! test fails, so one run lists them all.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::OnceLock;

use chrono::{DateTime, Duration, FixedOffset, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tapio_core::eval::{self, Expected, IncidentScore, ScenarioResult};
use tapio_core::{Incident, Severity};
use tapio_proto::{Event, Limits};

mod churn;
mod k8s;
mod pair;
mod rechunk;
mod rename;
mod replica;
mod reword;
mod scenario;
mod timeshift;
mod traffic;
mod walk;

use churn::*;
use k8s::*;
use pair::*;
use rechunk::*;
use rename::*;
use replica::*;
use reword::*;
use scenario::*;
use timeshift::*;
use traffic::*;
use walk::*;

// ---------------------------------------------------------------------------------------
// The tests: answers that must not change.
// ---------------------------------------------------------------------------------------

#[test]
fn the_decoding_path_and_rechunked_batches_keep_the_answer() {
    // The path the transformations take (JSON values → lines → decode) gives the very
    // events `tapio eval` reads.
    for sc in scenarios() {
        assert_eq!(
            decode_lines(&sc.name, sc.lines.iter().map(String::as_str)),
            decode_values(&sc.name, &sc.batches()),
            "{}: round trip",
            sc.name
        );
    }
    let one = |sc: &Scenario| Some(rechunk(sc, 1));
    let fifty = |sc: &Scenario| Some(rechunk(sc, 50));
    let f = invariance_failures(&[
        ("one event per batch", &one),
        ("50 events per batch", &fifty),
    ]);
    assert_none("re-chunked batches", &f);
}

#[test]
fn renaming_namespaces_objects_and_nodes_keeps_the_answer() {
    let asc = |sc: &Scenario| Some(rename(sc, false));
    let desc = |sc: &Scenario| Some(rename(sc, true));
    let f = invariance_failures(&[
        ("rename (same order)", &asc),
        ("rename (reverse order)", &desc),
    ]);
    assert_none("consistent renaming", &f);
}

#[test]
fn shifting_every_timestamp_keeps_the_answer() {
    let d = Duration::days(37) + Duration::seconds(13);
    let f = |sc: &Scenario| Some(shift(sc, d));
    let fails = invariance_failures(&[("time +37 d 13 s", &f)]);
    assert_none("a time shift", &fails);
}

#[test]
fn routine_churn_elsewhere_keeps_the_answer() {
    let f = invariance_failures(&[("routine churn (Deployment 2→3→2)", &churn)]);
    assert_none("routine churn", &f);
}

#[test]
fn a_healthy_replica_more_of_an_uninvolved_deployment_keeps_the_answer() {
    let f = invariance_failures(&[("one healthy replica more", &healthy_replica)]);
    assert_none("a healthy replica more", &f);
}

#[test]
fn rewording_alert_text_keeps_the_answer() {
    let f = invariance_failures(&[("reworded alerts", &reword_alerts)]);
    assert_none("reworded alert text", &f);
}

#[test]
fn a_thousandth_of_the_traffic_never_pages_more() {
    let mut failures = Vec::new();
    let (mut applied, mut fewer) = (0, 0);
    for sc in scenarios() {
        let Some(v) = scale_traffic(&sc) else {
            continue;
        };
        applied += 1;
        let expected = parse_expected(&sc.name, &sc.expected);
        let events = decode_lines(&sc.name, sc.lines.iter().map(String::as_str));
        let before = run(&sc.name, &events, &expected);
        let ev2 = decode_values(&sc.name, &v.batches);
        let after = run(&sc.name, &ev2, &expected);
        for (r, ev) in [(&before, &events), (&after, &ev2)] {
            assert_eq!(
                serde_json::to_value(&r.result).expect("json"),
                serde_json::to_value(score(&sc.name, ev, &expected)).expect("json"),
                "{}: this test's replay no longer scores as eval::run_scenario does; update run()",
                sc.name
            );
        }
        let pages = |r: &Run| -> Vec<String> {
            r.incidents
                .iter()
                .filter(|i| peak(i) <= Severity::P2)
                .map(|i| format!("{} {}", peak(i), i.title))
                .collect()
        };
        let (pb, pa) = (pages(&before), pages(&after));
        if pa.len() < pb.len() {
            fewer += 1;
        }
        if pa.len() > pb.len() {
            failures.push(format!(
                "{} × traffic ×0.001: P1/P2 incidents {} {pb:?} → {} {pa:?}",
                sc.name,
                pb.len(),
                pa.len()
            ));
        }
        // Incidents resting on connect statistics alone must not page on a trickle.
        let kinds: HashMap<String, &str> = ev2
            .iter()
            .map(|e| (e.id.to_string(), e.kind.as_str()))
            .collect();
        for i in &after.incidents {
            let only_stats = !i.evidence.is_empty()
                && i.evidence_count == i.evidence.len() as u64
                && i.evidence.iter().all(|r| {
                    kinds.get(&r.id.to_string()).copied() == Some("kernel.network.connect_stats")
                });
            if only_stats && peak(i) <= Severity::P2 {
                failures.push(format!(
                    "{} × traffic ×0.001: {} {} still pages on connect statistics alone ({} facts; {})",
                    sc.name,
                    peak(i),
                    i.title,
                    i.evidence_count,
                    i.severity_reason
                ));
            }
        }
    }
    eprintln!("traffic ×0.001: applied to {applied} scenarios, {fewer} of them page less");
    assert!(applied > 0);
    assert_none("a thousandth of the traffic", &failures);
}

#[test]
fn one_failing_replica_of_three_is_less_severe_than_all_three() {
    let mut got = Vec::new();
    for (failing, want) in [(3, Severity::P1), (1, Severity::P3)] {
        let name = format!("{failing} of 3 replicas crash-looping");
        let events = decode_values(&name, &replica_pair_stream(failing));
        let r = run(&name, &events, &pair_expected(want));
        let s = &r.result.incidents[0];
        let titles: Vec<String> = r
            .incidents
            .iter()
            .map(|i| format!("{} {}", peak(i), i.title))
            .collect();
        assert!(
            s.matched > 0,
            "{name}: no incident about storefront/web; produced {titles:?}"
        );
        got.push((
            name,
            s.got_severity.expect("matched incident has a severity"),
            titles,
        ));
    }
    for (name, sev, titles) in &got {
        eprintln!("{name}: {sev} {titles:?}");
    }
    let (all, one) = (&got[0], &got[1]);
    assert!(
        one.1 > all.1,
        "one failing replica of three ({}: {:?}) should be less severe than all three ({}: {:?})",
        one.1,
        one.2,
        all.1,
        all.2
    );
}
