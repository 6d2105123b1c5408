//! HTTP client helpers the tests share, and reading Prometheus text.

use std::time::Duration;

/// An HTTP client that returns every status as a response (the tests read 4xx and 5xx).
pub fn http_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// [`http_agent`] with a 5 s timeout.
pub fn http() -> ureq::Agent {
    http_agent(Duration::from_secs(5))
}

/// The JSON body of a 2xx answer to `GET url`; `None` on any failure or other status.
pub fn get_json(url: &str) -> Option<serde_json::Value> {
    let mut r = http().get(url).call().ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.body_mut().read_json().ok()
}

/// Sum of a metric's samples (all label sets) in Prometheus text: lines naming exactly
/// `name`, followed by labels or the value.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
