//! Shared by the fuzz targets.

use serde_json::Value;
use tapio_proto::Event;

/// Events equal after a trip through JSON, floats up to their last bit or two: serde_json
/// (without its `float_roundtrip` feature, as Tapio builds it) may read a float back one
/// ULP off, e.g. `18439425724315.074` as `18439425724315.07`.
pub fn assert_same_events(what: &str, sent: &[Event], back: &[Event]) {
    let a = serde_json::to_value(sent).expect("events serialize");
    let b = serde_json::to_value(back).expect("events serialize");
    assert!(same(&a, &b), "{what}:\n  sent: {a}\n  back: {b}");
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}
