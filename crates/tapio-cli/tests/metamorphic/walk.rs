//! Walking the JSON of evidence batches: every string, every event, a field, a time.

use super::*;

// ---------------------------------------------------------------------------------------
// Walking JSON.
// ---------------------------------------------------------------------------------------

/// Apply `f` to every string value (never to keys) except under the keys in `skip`.
pub(crate) fn map_strings(v: &mut Value, skip: &[&str], f: &dyn Fn(&str) -> Option<String>) {
    match v {
        Value::String(s) => {
            if let Some(n) = f(s) {
                *s = n;
            }
        }
        Value::Array(a) => {
            for x in a {
                map_strings(x, skip, f);
            }
        }
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if !skip.contains(&k.as_str()) {
                    map_strings(x, skip, f);
                }
            }
        }
        _ => {}
    }
}

pub(crate) fn events_mut(batch: &mut Value) -> impl Iterator<Item = &mut Value> {
    batch
        .get_mut("events")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

pub(crate) fn events_of(batch: &Value) -> impl Iterator<Item = &Value> {
    batch
        .get("events")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

pub(crate) fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

pub(crate) fn time_of(ev: &Value) -> Option<DateTime<Utc>> {
    s(ev, &["time"])
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}
