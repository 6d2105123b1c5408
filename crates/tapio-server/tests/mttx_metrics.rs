//! MTTA / MTTR / MTBF and target compliance on `/metrics`, checked against figures computed
//! by hand from a fixed incident history written into the server's store.

use chrono::{Duration, Utc};
use tapio_core::Severity;
use tapio_core::lifecycle::{Action, Declare, apply, declare};
use tapio_store::Store;
use tapio_store::sqlite::{Durability, SqliteStore};
use tapio_testkit::Server;

/// A declared incident (so detection = start) acknowledged and resolved after the given
/// minutes.
fn incident(
    sev: Severity,
    service: &str,
    days_ago: i64,
    ack_min: Option<i64>,
    resolve_min: Option<i64>,
) -> tapio_core::Incident {
    let start = Utc::now() - Duration::days(days_ago);
    let d = Declare {
        severity: sev,
        title: format!("{service} is failing"),
        by: Some("alice".into()),
        namespace: Some("shop".into()),
        service: Some(service.into()),
        description: None,
    };
    let mut inc = declare(&d, start, ulid::Ulid::new()).expect("declare");
    if let Some(m) = ack_min {
        apply(&mut inc, &Action::Ack, "bob", start + Duration::minutes(m)).expect("ack");
    }
    if let Some(m) = resolve_min {
        apply(
            &mut inc,
            &Action::Resolve,
            "bob",
            start + Duration::minutes(m),
        )
        .expect("resolve");
    }
    inc
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn mttx_figures_on_metrics_match_the_hand_computed_ones() {
    let mut s = Server::start(&["--mttx-every", "1s"]);
    s.kill9();
    // | sev | service  | started  | TTA            | TTR               |
    // | P1  | checkout | 3 d ago  | 4 min  (< 5 ✓) | 100 min (< 2 h ✓) |
    // | P1  | cart     | 1 d ago  | 10 min (✗)     | 180 min (✗)       |
    // | P2  | checkout | 2 d ago  | 5 min  (✓)     | open              |
    // | P1  | checkout | 40 d ago | outside the 30-day window            |
    let history = vec![
        incident(Severity::P1, "checkout", 3, Some(4), Some(100)),
        incident(Severity::P1, "cart", 1, Some(10), Some(180)),
        incident(Severity::P2, "checkout", 2, Some(5), None),
        incident(Severity::P1, "checkout", 40, Some(1), Some(2)),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = SqliteStore::open(&s.data.path().join("db"), Durability::Full).expect("store");
        let cursor = store.correlator_cursor().await.expect("cursor");
        store
            .apply_incidents(history, cursor)
            .await
            .expect("write history");
    });
    s.spawn();
    let mut text = String::new();
    s.wait_for(10, "the MTTx figures", |s| {
        text = s.get("/metrics").expect("metrics").1;
        text.contains("tapio_incident_mttx_seconds{")
    });
    let v = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}:\n{text}"));
    let close = |got: f64, want: f64| (got - want).abs() < 1.0;
    // P1: TTA (4 + 10) / 2 = 7 min; TTR (100 + 180) / 2 = 140 min; MTBF 2 days.
    assert!(close(
        v(r#"tapio_incident_mttx_seconds{measure="mtta",severity="P1"}"#),
        420.0
    ));
    assert!(close(
        v(r#"tapio_incident_mttx_seconds{measure="mttr",severity="P1"}"#),
        8400.0
    ));
    assert!(close(
        v(r#"tapio_incident_mttx_seconds{measure="mtbf",severity="P1"}"#),
        172_800.0
    ));
    assert!(close(
        v(r#"tapio_incident_mttx_seconds{measure="mttd",severity="P1"}"#),
        0.0
    ));
    assert_eq!(
        v(r#"tapio_incident_target_met_ratio{measure="mtta",severity="P1"}"#),
        0.5
    );
    assert_eq!(
        v(r#"tapio_incident_target_met_ratio{measure="mttr",severity="P1"}"#),
        0.5
    );
    assert_eq!(v(r#"tapio_incident_window_incidents{severity="P1"}"#), 2.0);
    // P2: acknowledged in 5 min (target 15), not resolved: no MTTR series at all.
    assert!(close(
        v(r#"tapio_incident_mttx_seconds{measure="mtta",severity="P2"}"#),
        300.0
    ));
    assert_eq!(
        v(r#"tapio_incident_target_met_ratio{measure="mtta",severity="P2"}"#),
        1.0
    );
    assert!(
        !text.contains(r#"tapio_incident_mttx_seconds{measure="mttr",severity="P2"}"#),
        "an open incident has no resolve time:\n{text}"
    );
    assert_eq!(v(r#"tapio_incident_window_incidents{severity="P3"}"#), 0.0);
    assert_eq!(v("tapio_incident_mttx_window_seconds"), 30.0 * 86_400.0);
    // Per service: checkout's one resolved P1 took 100 min.
    let service = text
        .lines()
        .find(|l| {
            l.starts_with("tapio_service_mttx_seconds{")
                && l.contains(r#"measure="mttr""#)
                && l.contains("checkout")
        })
        .unwrap_or_else(|| panic!("a per-service MTTR for checkout:\n{text}"));
    let got: f64 = service
        .rsplit(' ')
        .next()
        .and_then(|x| x.parse().ok())
        .expect("value");
    assert!(close(got, 6000.0), "{service}");
}
