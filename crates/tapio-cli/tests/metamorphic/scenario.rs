//! The scenario suite read, decoded and run the way `tapio eval` does, and the answers of
//! two runs compared (what changed, with names mapped back).

use super::*;

// ---------------------------------------------------------------------------------------
// Scenarios: reading, decoding and running them the way `tapio eval` does.
// ---------------------------------------------------------------------------------------

pub(crate) fn repo() -> PathBuf {
    tapio_testkit::repo_root()
}

pub(crate) struct Scenario {
    pub(crate) name: String,
    /// `stream.jsonl`, one batch per line, as stored.
    pub(crate) lines: Vec<String>,
    pub(crate) expected: Value,
}

impl Scenario {
    /// The batches as JSON values, for transformations.
    pub(crate) fn batches(&self) -> Vec<Value> {
        self.lines
            .iter()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: bad line: {e}", self.name))
            })
            .collect()
    }
}

pub(crate) fn scenarios() -> Vec<Scenario> {
    let dir = repo().join("tests/scenarios");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expected.json").exists() && p.join("stream.jsonl").exists())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 25, "too few scenarios in {}", dir.display());
    dirs.iter()
        .map(|d| {
            let read = |f: &str| {
                std::fs::read_to_string(d.join(f))
                    .unwrap_or_else(|e| panic!("read {}/{f}: {e}", d.display()))
            };
            Scenario {
                name: d
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                lines: read("stream.jsonl")
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_owned)
                    .collect(),
                expected: serde_json::from_str(&read("expected.json"))
                    .unwrap_or_else(|e| panic!("{}: expected.json: {e}", d.display())),
            }
        })
        .collect()
}

/// Decode replay lines exactly as `tapio eval` does (`analyze::read_batches`): validated
/// as the server would, without the future-skew check, then flattened into events.
pub(crate) fn decode_lines<'a>(what: &str, lines: impl Iterator<Item = &'a str>) -> Vec<Event> {
    let limits = Limits {
        max_future_skew: Duration::days(365 * 100),
        ..Limits::default()
    };
    let mut events = Vec::new();
    for (i, line) in lines.enumerate() {
        let b = tapio_proto::decode_batch(line.as_bytes(), Utc::now(), &limits)
            .unwrap_or_else(|e| panic!("{what}: batch {}: {e:?}", i + 1));
        events.extend(b.events);
    }
    events
}

pub(crate) fn decode_values(what: &str, batches: &[Value]) -> Vec<Event> {
    let lines: Vec<String> = batches.iter().map(Value::to_string).collect();
    decode_lines(what, lines.iter().map(String::as_str))
}

pub(crate) fn parse_expected(what: &str, v: &Value) -> Expected {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{what}: expected.json: {e}"))
}

pub(crate) struct Run {
    pub(crate) result: ScenarioResult,
    /// The produced incidents, as scored.
    pub(crate) incidents: Vec<Incident>,
}

/// `eval::run_scenario`, keeping the incidents (`eval::replay`, then `eval::score`).
pub(crate) fn run(name: &str, events: &[Event], expected: &Expected) -> Run {
    let depth = eval::parse_depth(expected.depth.as_deref()).expect("depth");
    let incidents = eval::replay(events, depth);
    let result = eval::score(name, depth, &incidents, expected, events);
    Run { result, incidents }
}

/// The scored answer, exactly as `tapio eval` computes it.
pub(crate) fn score(name: &str, events: &[Event], expected: &Expected) -> ScenarioResult {
    eval::run_scenario(name, events, expected, None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The peak severity, as scoring reads it.
pub(crate) fn peak(i: &Incident) -> Severity {
    i.peak_severity.unwrap_or(i.severity).min(i.severity)
}

// ---------------------------------------------------------------------------------------
// Comparing answers.
// ---------------------------------------------------------------------------------------

pub(crate) fn yn(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

pub(crate) fn describe(s: &IncidentScore, back: &dyn Fn(&str) -> String) -> String {
    format!(
        "matched {} AC@1 {} AC@3 {} severity-exact {} (got {} {} {})",
        s.matched,
        yn(s.ac_at_1),
        yn(s.ac_at_3),
        yn(s.severity_exact),
        s.got_severity
            .map(|x| x.to_string())
            .unwrap_or_else(|| "-".into()),
        if s.confident {
            s.got_cause.clone().unwrap_or_default()
        } else {
            "none".into()
        },
        back(&s.got_entity.clone().unwrap_or_default()),
    )
}

/// What changed between two scored answers of the same scenario (empty: the same).
pub(crate) fn differences(
    before: &ScenarioResult,
    after: &ScenarioResult,
    back: &dyn Fn(&str) -> String,
) -> Vec<String> {
    let mut out = Vec::new();
    if before.incidents.len() != after.incidents.len() {
        out.push(format!(
            "expected incidents {} → {}",
            before.incidents.len(),
            after.incidents.len()
        ));
    }
    for (i, (b, a)) in before.incidents.iter().zip(&after.incidents).enumerate() {
        let key = |s: &IncidentScore| (s.matched > 0, s.ac_at_1, s.ac_at_3, s.severity_exact);
        if key(b) != key(a) {
            out.push(format!(
                "incident #{} (want {} {} {}): {} → {}",
                i + 1,
                b.expected_severity,
                b.expected_cause,
                b.expected_entity,
                describe(b, &|s| s.to_owned()),
                describe(a, back)
            ));
        }
    }
    if before.spurious.len() != after.spurious.len() {
        out.push(format!(
            "spurious {} {:?} → {} {:?}",
            before.spurious.len(),
            before.spurious,
            after.spurious.len(),
            after.spurious.iter().map(|s| back(s)).collect::<Vec<_>>()
        ));
    }
    if before.noise_pages.len() != after.noise_pages.len() {
        out.push(format!(
            "pages on noise {} {:?} → {} {:?}",
            before.noise_pages.len(),
            before.noise_pages,
            after.noise_pages.len(),
            after
                .noise_pages
                .iter()
                .map(|s| back(s))
                .collect::<Vec<_>>()
        ));
    }
    out
}

/// A transformed scenario.
pub(crate) struct Variant {
    pub(crate) batches: Vec<Value>,
    pub(crate) expected: Value,
    /// Maps the transformed names back to the original ones (for messages).
    pub(crate) back: Option<Renamer>,
}

pub(crate) type Transform<'a> = (&'a str, &'a dyn Fn(&Scenario) -> Option<Variant>);

/// Run every scenario as it is and under each transformation; one line per scenario ×
/// transformation whose answer changed.
pub(crate) fn invariance_failures(transforms: &[Transform<'_>]) -> Vec<String> {
    let mut failures = Vec::new();
    let mut applied = vec![0usize; transforms.len()];
    for sc in scenarios() {
        let expected = parse_expected(&sc.name, &sc.expected);
        let events = decode_lines(&sc.name, sc.lines.iter().map(String::as_str));
        let before = score(&sc.name, &events, &expected);
        for (ti, (tname, f)) in transforms.iter().enumerate() {
            let Some(v) = f(&sc) else { continue };
            applied[ti] += 1;
            let what = format!("{} × {tname}", sc.name);
            let exp2 = parse_expected(&what, &v.expected);
            let ev2 = decode_values(&what, &v.batches);
            let after = score(&sc.name, &ev2, &exp2);
            let back = |s: &str| match &v.back {
                Some(r) => r.apply(s).unwrap_or_else(|| s.to_owned()),
                None => s.to_owned(),
            };
            let d = differences(&before, &after, &back);
            if !d.is_empty() {
                failures.push(format!("{what}: {}", d.join("; ")));
            }
        }
    }
    for ((tname, _), n) in transforms.iter().zip(&applied) {
        eprintln!("{tname}: applied to {n} scenarios");
        assert!(*n > 0, "{tname} applied to no scenario");
    }
    failures
}

pub(crate) fn assert_none(what: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} scenario(s) changed their answer under {what}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
