//! Which evidence is never shed: the facts the runbook classifies P1 on their own.
//!
//! Under load the server sheds evidence from the lowest rank up (`tapio_core::shed`) and
//! never sheds a P1-class fact; an agent sends a batch holding one in the server's critical
//! lane. Both sides must agree on which facts those are, and the agent does not carry the
//! whole classifier, so the P1 rule lives here where both see it.
//!
//! It is the P1 part of `tapio_core::classify`, with the precedence that function gives its
//! rules: a producer's declared `priority` wins; then complete unavailability is P1; then a
//! measured error rate, connect failure rate or latency classifies the fact P2–P4 (so never
//! P1); only then is a critical `*.security.*` signal P1. A test in `tapio_core::shed` checks
//! that [`is_never_shed`] and `tapio_core::shed::rank(ev) == NEVER_SHED` agree; change the
//! two together (and `docs/classification.md`).

use crate::Event;
use crate::EventSeverity;

/// The shedding rank of P1-class facts: never shed.
pub const NEVER_SHED: u8 = 4;

/// An error ratio at or above this classifies a fact (P3 from here, P2 above 5%).
const RATIO_CLASSIFIES: f64 = 0.01;
/// Connect statistics give a failure ratio only over at least this many attempts.
const MIN_ATTEMPTS_FOR_RATIO: f64 = 20.0;
/// A response time above this (seconds) classifies a fact P2.
const SLOW_SECONDS: f64 = 5.0;

/// True for the facts the runbook classifies P1 on their own: shedding's rank
/// [`NEVER_SHED`], the server's critical lane.
pub fn is_never_shed(ev: &Event) -> bool {
    // 1. A producer that knows better states the priority itself, P1 or not.
    if let Some(p) = ev.attr_str("priority") {
        let p = p.trim().to_ascii_uppercase();
        if matches!(p.as_str(), "P1" | "P2" | "P3" | "P4") {
            return p == "P1";
        }
    }
    // 2. Complete unavailability: a workload with desired replicas and none available.
    let desired = ev.attr_f64("desired_replicas");
    let available = ev.attr_f64("available_replicas");
    if ev.kind.as_str() == "kubernetes.workload.unavailable"
        || matches!((desired, available), (Some(d), Some(a)) if d > 0.0 && a == 0.0)
    {
        return true;
    }
    // 3. A measured error rate, connect failure rate or latency classifies below P1.
    if measured_rule_applies(ev) {
        return false;
    }
    // 4. Of the signals classified by name, only a critical security signal is P1.
    ev.kind.domain() == "security" && ev.severity == EventSeverity::Critical
}

/// Whether one of the classifier's measured-signal rules (error ratio, connect failure
/// ratio, latency) decides this fact's class.
fn measured_rule_applies(ev: &Event) -> bool {
    if ev
        .attr_f64("error_ratio")
        .is_some_and(|r| r >= RATIO_CLASSIFIES)
    {
        return true;
    }
    let failed = match (ev.attr_f64("refused"), ev.attr_f64("timed_out")) {
        (None, None) => None,
        (r, t) => Some(r.unwrap_or(0.0) + t.unwrap_or(0.0)),
    };
    if let (Some(attempts), Some(failed)) = (ev.attr_f64("attempts"), failed)
        && attempts >= MIN_ATTEMPTS_FOR_RATIO
        && failed / attempts >= RATIO_CLASSIFIES
    {
        return true;
    }
    ev.attr_f64("latency_seconds")
        .or_else(|| ev.attr_f64("p99_latency_seconds"))
        .is_some_and(|lat| lat > SLOW_SECONDS)
}
