//! Pressure stall information: `/proc/pressure/{cpu,memory,io}` parsed ([`parse_psi`]) and
//! watched ([`PsiWatcher`]) for pressure sustained above its threshold.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tapio_proto::{AttrValue, Event, EventSeverity};

use super::*;

/// A resource with pressure stall information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PsiResource {
    Cpu,
    Memory,
    Io,
}

impl PsiResource {
    pub const ALL: [PsiResource; 3] = [PsiResource::Cpu, PsiResource::Memory, PsiResource::Io];

    /// File name under `/proc/pressure`, and the last segment of the event type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Memory => "memory",
            Self::Io => "io",
        }
    }

    pub fn event_type(self) -> &'static str {
        match self {
            Self::Cpu => EVENT_PRESSURE_CPU,
            Self::Memory => EVENT_PRESSURE_MEMORY,
            Self::Io => EVENT_PRESSURE_IO,
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Cpu => 0,
            Self::Memory => 1,
            Self::Io => 2,
        }
    }
}

/// One line of a PSI file: the share of wall time (percent) in which tasks stalled, averaged
/// over 10 s, 60 s and 300 s, and the total stall time in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PsiLine {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    pub total_us: u64,
}

/// One PSI file. `full` is absent for CPU on kernels before 5.13.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PsiSnapshot {
    /// Some task stalled.
    pub some: PsiLine,
    /// All non-idle tasks stalled at once.
    pub full: Option<PsiLine>,
}

/// Parses a PSI file (`some avg10=1.23 avg60=0.50 avg300=0.10 total=12345`, optionally a
/// `full ...` line).
pub fn parse_psi(text: &str) -> Result<PsiSnapshot, String> {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("some ") {
            some = Some(parse_psi_line(rest)?);
        } else if let Some(rest) = line.strip_prefix("full ") {
            full = Some(parse_psi_line(rest)?);
        }
    }
    let some = some.ok_or_else(|| "PSI text has no `some` line".to_owned())?;
    Ok(PsiSnapshot { some, full })
}

fn parse_psi_line(rest: &str) -> Result<PsiLine, String> {
    let (mut a10, mut a60, mut a300, mut total) = (None, None, None, 0);
    for tok in rest.split_whitespace() {
        let Some((k, v)) = tok.split_once('=') else {
            return Err(format!("PSI field {tok:?} is not key=value"));
        };
        let avg = || -> Result<f64, String> {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| format!("PSI {k}={v:?} is not a percentage"))
        };
        match k {
            "avg10" => a10 = Some(avg()?),
            "avg60" => a60 = Some(avg()?),
            "avg300" => a300 = Some(avg()?),
            "total" => {
                total = v
                    .parse()
                    .map_err(|_| format!("PSI total={v:?} is not a number"))?
            }
            _ => {} // a future kernel's extra field
        }
    }
    match (a10, a60, a300) {
        (Some(avg10), Some(avg60), Some(avg300)) => Ok(PsiLine {
            avg10,
            avg60,
            avg300,
            total_us: total,
        }),
        _ => Err(format!("PSI line {rest:?} lacks avg10, avg60 or avg300")),
    }
}

/// Reads and parses `<dir>/<resource>`. A parse failure is `InvalidData`.
pub fn read_psi(dir: &Path, resource: PsiResource) -> io::Result<PsiSnapshot> {
    let text = std::fs::read_to_string(dir.join(resource.as_str()))?;
    parse_psi(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[derive(Debug, Clone, Copy, Default)]
struct PsiState {
    /// First poll of the current run of polls at or above the threshold.
    streak_start: Option<DateTime<Utc>>,
    /// Pressure has been reported and has not cleared yet.
    active: bool,
    last_emit: Option<DateTime<Utc>>,
}

/// Turns PSI snapshots into pressure events.
///
/// Per resource: `some avg10` must stay at or above the threshold on consecutive polls
/// covering at least `psi_sustain_seconds`; then one event (warning; error when `full avg10`
/// is at or above the threshold too) is emitted, and repeated every `psi_repeat_seconds`
/// while the pressure lasts. It lasts until `some avg10` falls below threshold ×
/// `psi_clear_ratio`. Clearing emits nothing; the watcher keeps its state so the next
/// episode is reported again from the start. A poll below the threshold before pressure was
/// reported restarts the sustain window.
///
/// Attributes: `some_avg10`, `some_avg60`, `full_avg10` (when the kernel reports `full`),
/// `threshold` (percent), `sustained_seconds` (since the first poll of the episode).
#[derive(Debug, Clone)]
pub struct PsiWatcher {
    node: String,
    thresholds: [f64; 3],
    sustain: TimeDelta,
    repeat: TimeDelta,
    clear_ratio: f64,
    state: [PsiState; 3],
}

impl PsiWatcher {
    pub fn new(node: impl Into<String>, config: &NodeConfig) -> Self {
        Self {
            node: node.into(),
            thresholds: [
                config.psi_cpu_threshold_percent,
                config.psi_memory_threshold_percent,
                config.psi_io_threshold_percent,
            ],
            sustain: seconds(config.psi_sustain_seconds),
            repeat: seconds(config.psi_repeat_seconds),
            clear_ratio: config.psi_clear_ratio,
            state: [PsiState::default(); 3],
        }
    }

    /// The `some avg10` threshold of `resource`, in percent.
    pub fn threshold(&self, resource: PsiResource) -> f64 {
        self.thresholds[resource.index()]
    }

    /// Whether pressure on `resource` has been reported and has not cleared yet.
    pub fn is_active(&self, resource: PsiResource) -> bool {
        self.state[resource.index()].active
    }

    /// Feeds one poll of `resource` taken at `now`; returns the event to emit, if any.
    pub fn observe(
        &mut self,
        resource: PsiResource,
        snapshot: &PsiSnapshot,
        now: DateTime<Utc>,
    ) -> Option<Event> {
        let threshold = self.threshold(resource);
        let some = snapshot.some.avg10;
        let st = &mut self.state[resource.index()];
        if st.active {
            if some < threshold * self.clear_ratio {
                *st = PsiState::default();
                return None;
            }
            let due = st.last_emit.is_none_or(|t| now - t >= self.repeat);
            if !due {
                return None;
            }
            st.last_emit = Some(now);
        } else if some >= threshold {
            let start = *st.streak_start.get_or_insert(now);
            if now - start < self.sustain {
                return None;
            }
            st.active = true;
            st.last_emit = Some(now);
        } else {
            st.streak_start = None;
            return None;
        }
        let start = st.streak_start.unwrap_or(now);
        let full10 = snapshot.full.map(|f| f.avg10);
        let severity = if full10.is_some_and(|f| f >= threshold) {
            EventSeverity::Error
        } else {
            EventSeverity::Warning
        };
        let mut attrs = BTreeMap::new();
        attrs.insert("some_avg10".into(), AttrValue::Float(some));
        attrs.insert("some_avg60".into(), AttrValue::Float(snapshot.some.avg60));
        if let Some(f) = full10 {
            attrs.insert("full_avg10".into(), AttrValue::Float(f));
        }
        attrs.insert("threshold".into(), AttrValue::Float(threshold));
        attrs.insert(
            "sustained_seconds".into(),
            AttrValue::Int(whole_seconds(now - start)),
        );
        node_event(&self.node, resource.event_type(), severity, now, attrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::testutil::*;

    fn snap(some10: f64, full10: Option<f64>) -> PsiSnapshot {
        PsiSnapshot {
            some: PsiLine {
                avg10: some10,
                avg60: some10 / 2.0,
                avg300: 1.0,
                total_us: 1,
            },
            full: full10.map(|f| PsiLine {
                avg10: f,
                ..PsiLine::default()
            }),
        }
    }

    // --- PSI ---------------------------------------------------------------------------------

    #[test]
    fn psi_parse_with_full_line() {
        let p = parse_psi(
            "some avg10=1.23 avg60=4.56 avg300=7.89 total=123456\n\
             full avg10=0.50 avg60=0.25 avg300=0.10 total=999\n",
        )
        .expect("parse");
        assert_eq!(p.some.avg10, 1.23);
        assert_eq!(p.some.avg60, 4.56);
        assert_eq!(p.some.avg300, 7.89);
        assert_eq!(p.some.total_us, 123_456);
        let full = p.full.expect("full line");
        assert_eq!(full.avg10, 0.5);
        assert_eq!(full.total_us, 999);
    }

    #[test]
    fn psi_parse_without_full_line() {
        let p = parse_psi("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").expect("parse");
        assert_eq!(p.some.avg10, 0.0);
        assert!(p.full.is_none());
    }

    #[test]
    fn psi_parse_refuses_garbage() {
        assert!(parse_psi("").is_err());
        assert!(parse_psi("full avg10=1 avg60=1 avg300=1 total=1").is_err());
        assert!(parse_psi("some avg10=abc avg60=1 avg300=1 total=1").is_err());
        assert!(parse_psi("some avg10=1 total=1").is_err());
    }

    #[test]
    fn psi_sustain_then_repeat_then_hysteresis_clear() {
        let mut w = PsiWatcher::new("n1", &cfg()); // memory: 20 %, sustain 30 s, repeat 300 s
        let m = PsiResource::Memory;
        assert!(w.observe(m, &snap(25.0, None), t(0)).is_none());
        assert!(w.observe(m, &snap(25.0, None), t(10)).is_none());
        assert!(w.observe(m, &snap(25.0, None), t(20)).is_none());
        let ev = w
            .observe(m, &snap(25.0, Some(1.0)), t(30))
            .expect("sustained 30 s");
        assert_eq!(ev.kind.as_str(), "node.pressure.memory");
        assert_eq!(ev.severity, EventSeverity::Warning);
        assert_eq!(ev.entity.node.as_deref(), Some("n1"));
        assert_eq!(ev.time, t(30));
        assert_eq!(f(&ev, "some_avg10"), 25.0);
        assert_eq!(f(&ev, "some_avg60"), 12.5);
        assert_eq!(f(&ev, "full_avg10"), 1.0);
        assert_eq!(f(&ev, "threshold"), 20.0);
        assert_eq!(f(&ev, "sustained_seconds"), 30.0);
        assert!(w.is_active(m));
        // Still above the clear level (10 %) though below the threshold: it lasts, no repeat yet.
        assert!(w.observe(m, &snap(15.0, None), t(40)).is_none());
        assert!(w.observe(m, &snap(25.0, None), t(200)).is_none());
        let rep = w.observe(m, &snap(30.0, None), t(330)).expect("repeat");
        assert_eq!(f(&rep, "sustained_seconds"), 330.0);
        assert!(w.observe(m, &snap(30.0, None), t(340)).is_none());
        // Below threshold × 0.5 clears, silently.
        assert!(w.observe(m, &snap(9.9, None), t(350)).is_none());
        assert!(!w.is_active(m));
        // A new episode needs the full sustain window again.
        assert!(w.observe(m, &snap(25.0, None), t(360)).is_none());
        assert!(w.observe(m, &snap(25.0, None), t(380)).is_none());
        let again = w
            .observe(m, &snap(25.0, None), t(390))
            .expect("new episode");
        assert_eq!(f(&again, "sustained_seconds"), 30.0);
    }

    #[test]
    fn psi_dip_below_threshold_restarts_sustain_window() {
        let mut w = PsiWatcher::new("n1", &cfg()); // io: 30 %
        let io = PsiResource::Io;
        assert!(w.observe(io, &snap(40.0, None), t(0)).is_none());
        assert!(w.observe(io, &snap(20.0, None), t(10)).is_none());
        assert!(w.observe(io, &snap(40.0, None), t(20)).is_none());
        assert!(w.observe(io, &snap(40.0, None), t(40)).is_none());
        assert!(w.observe(io, &snap(40.0, None), t(50)).is_some());
        // Other resources are independent.
        assert!(!w.is_active(PsiResource::Cpu));
    }

    #[test]
    fn psi_error_when_full_also_above_threshold_and_cpu_without_full() {
        let c = NodeConfig {
            psi_sustain_seconds: 0,
            ..cfg()
        };
        let mut w = PsiWatcher::new("n1", &c);
        let ev = w
            .observe(PsiResource::Memory, &snap(50.0, Some(21.0)), t(0))
            .expect("sustain 0 fires at once");
        assert_eq!(ev.severity, EventSeverity::Error);
        let ev = w
            .observe(PsiResource::Cpu, &snap(95.0, None), t(0))
            .expect("cpu");
        assert_eq!(ev.kind.as_str(), "node.pressure.cpu");
        assert_eq!(ev.severity, EventSeverity::Warning);
        assert!(!ev.attributes.contains_key("full_avg10"));
        assert!(
            w.observe(PsiResource::Cpu, &snap(79.9, None), t(5))
                .is_none()
        );
    }
}
