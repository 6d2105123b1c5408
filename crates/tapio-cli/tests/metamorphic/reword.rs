//! Transformation 6: every Prometheus alert's summary and description reworded, figures
//! kept.

use super::*;

// ---------------------------------------------------------------------------------------
// 6. Rewording alerts.
// ---------------------------------------------------------------------------------------

/// "Heads-up: " and the first word (when it holds no figure) moved to the end in
/// parentheses: every figure stays, in the same order, next to its unit.
pub(crate) fn reword(text: &str) -> String {
    match text.split_once(char::is_whitespace) {
        Some((first, rest))
            if !first.is_empty()
                && !rest.trim().is_empty()
                && !first.chars().any(|c| c.is_ascii_digit() || c == '%') =>
        {
            format!("Heads-up: {} ({first})", rest.trim_end())
        }
        _ => format!("Heads-up: {text}"),
    }
}

pub(crate) fn reword_alerts(sc: &Scenario) -> Option<Variant> {
    let mut batches = sc.batches();
    let mut n = 0;
    for b in &mut batches {
        for ev in events_mut(b) {
            let t = s(ev, &["type"]).unwrap_or_default();
            if t != "alert.prometheus.firing" && t != "alert.prometheus.resolved" {
                continue;
            }
            if let Some(a) = ev.get_mut("attributes").and_then(Value::as_object_mut) {
                for key in ["summary", "description"] {
                    if let Some(Value::String(x)) = a.get_mut(key)
                        && !x.trim().is_empty()
                    {
                        *x = reword(x);
                        n += 1;
                    }
                }
            }
        }
    }
    (n > 0).then(|| Variant {
        batches,
        expected: sc.expected.clone(),
        back: None,
    })
}
