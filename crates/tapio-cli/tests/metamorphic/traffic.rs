//! Transformation 7: a thousandth of the traffic (must never page more).

use super::*;

// ---------------------------------------------------------------------------------------
// 7. A thousandth of the traffic.
// ---------------------------------------------------------------------------------------

pub(crate) fn scale_traffic(sc: &Scenario) -> Option<Variant> {
    let mut batches = sc.batches();
    let mut n = 0;
    let div = |v: Option<&Value>| v.and_then(Value::as_u64).map(|x| x / 1000);
    for b in &mut batches {
        for ev in events_mut(b) {
            let t = s(ev, &["type"]).unwrap_or_default().to_owned();
            let Some(a) = ev.get_mut("attributes").and_then(Value::as_object_mut) else {
                continue;
            };
            match t.as_str() {
                "kernel.network.connect_stats" => {
                    let scaled: Vec<(&str, u64)> = ["attempts", "refused", "timed_out", "errors"]
                        .into_iter()
                        .map(|k| (k, div(a.get(k)).unwrap_or(0)))
                        .collect();
                    let get = |k: &str| scaled.iter().find(|(x, _)| *x == k).map_or(0, |p| p.1);
                    let failed = get("refused") + get("timed_out") + get("errors");
                    let attempts = get("attempts").max(failed);
                    for k in ["refused", "timed_out", "errors"] {
                        if a.contains_key(k) {
                            a.insert(k.into(), json!(get(k)));
                        }
                    }
                    if a.contains_key("successes") {
                        a.insert("successes".into(), json!(attempts - failed));
                    }
                    a.insert("attempts".into(), json!(attempts));
                    n += 1;
                }
                "kernel.network.connection_refused" | "kernel.network.connection_timeout" => {
                    if let Some(c) = div(a.get("count")) {
                        a.insert("count".into(), json!(c));
                        n += 1;
                    }
                }
                _ => {}
            }
        }
    }
    (n > 0).then(|| Variant {
        batches,
        expected: sc.expected.clone(),
        back: None,
    })
}
