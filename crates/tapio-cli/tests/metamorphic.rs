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
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{DateTime, Duration, FixedOffset, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tapio_core::eval::{self, Expected, IncidentScore, ScenarioResult};
use tapio_core::{Incident, Severity};
use tapio_proto::{Event, Limits};

// ---------------------------------------------------------------------------------------
// Scenarios: reading, decoding and running them the way `tapio eval` does.
// ---------------------------------------------------------------------------------------

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Scenario {
    name: String,
    /// `stream.jsonl`, one batch per line, as stored.
    lines: Vec<String>,
    expected: Value,
}

impl Scenario {
    /// The batches as JSON values, for transformations.
    fn batches(&self) -> Vec<Value> {
        self.lines
            .iter()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: bad line: {e}", self.name))
            })
            .collect()
    }
}

fn scenarios() -> Vec<Scenario> {
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
fn decode_lines<'a>(what: &str, lines: impl Iterator<Item = &'a str>) -> Vec<Event> {
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

fn decode_values(what: &str, batches: &[Value]) -> Vec<Event> {
    let lines: Vec<String> = batches.iter().map(Value::to_string).collect();
    decode_lines(what, lines.iter().map(String::as_str))
}

fn parse_expected(what: &str, v: &Value) -> Expected {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{what}: expected.json: {e}"))
}

struct Run {
    result: ScenarioResult,
    /// The produced incidents, as scored.
    incidents: Vec<Incident>,
}

/// `eval::run_scenario`, keeping the incidents (`eval::replay`, then `eval::score`).
fn run(name: &str, events: &[Event], expected: &Expected) -> Run {
    let depth = eval::parse_depth(expected.depth.as_deref()).expect("depth");
    let incidents = eval::replay(events, depth);
    let result = eval::score(name, depth, &incidents, expected, events);
    Run { result, incidents }
}

/// The scored answer, exactly as `tapio eval` computes it.
fn score(name: &str, events: &[Event], expected: &Expected) -> ScenarioResult {
    eval::run_scenario(name, events, expected, None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The peak severity, as scoring reads it.
fn peak(i: &Incident) -> Severity {
    i.peak_severity.unwrap_or(i.severity).min(i.severity)
}

// ---------------------------------------------------------------------------------------
// Comparing answers.
// ---------------------------------------------------------------------------------------

fn yn(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn describe(s: &IncidentScore, back: &dyn Fn(&str) -> String) -> String {
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
fn differences(
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
struct Variant {
    batches: Vec<Value>,
    expected: Value,
    /// Maps the transformed names back to the original ones (for messages).
    back: Option<Renamer>,
}

type Transform<'a> = (&'a str, &'a dyn Fn(&Scenario) -> Option<Variant>);

/// Run every scenario as it is and under each transformation; one line per scenario ×
/// transformation whose answer changed.
fn invariance_failures(transforms: &[Transform<'_>]) -> Vec<String> {
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

fn assert_none(what: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} scenario(s) changed their answer under {what}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Walking JSON.
// ---------------------------------------------------------------------------------------

/// Apply `f` to every string value (never to keys) except under the keys in `skip`.
fn map_strings(v: &mut Value, skip: &[&str], f: &dyn Fn(&str) -> Option<String>) {
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

fn events_mut(batch: &mut Value) -> impl Iterator<Item = &mut Value> {
    batch
        .get_mut("events")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

fn events_of(batch: &Value) -> impl Iterator<Item = &Value> {
    batch
        .get("events")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

fn time_of(ev: &Value) -> Option<DateTime<Utc>> {
    s(ev, &["time"])
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

// ---------------------------------------------------------------------------------------
// 1. Renaming.
// ---------------------------------------------------------------------------------------

/// Namespaces kept as they are: the system ones and those the engine reads by name.
const KEPT_NAMESPACES: &[&str] = &[
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "default",
    "monitoring",
];

/// Kinds whose names are generated from their owner's (renamed through the owner's name,
/// which they start with).
const GENERATED_KINDS: &[&str] = &["Pod", "ReplicaSet", "Job", "EndpointSlice", "Event"];

/// Keys whose values are never names.
const NOT_NAMES: &[&str] = &[
    "apiVersion",
    "kind",
    "id",
    "uid",
    "resourceVersion",
    "type",
    "reason",
    "alertname",
    "fingerprint",
    "severity",
    "time",
    "pod-template-hash",
    "controller-revision-hash",
    "containerID",
    "container_id",
    "pod_uid",
    "cause",
    "depth",
];

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn is_name_byte(b: u8) -> bool {
    is_alnum(b) || b == b'-' || b == b'.'
}

/// Whole-token renaming. A name matches where it starts a token (after a character that
/// is not alphanumeric, `-` only for node names: static pods are `<component>-<node>`)
/// and ends before a character that is not alphanumeric — so `checkout` renames
/// `checkout`, `shop/checkout`, `checkout-7d9f8b6c5-x2x9q` and `checkout.shop.svc`, but not
/// `checkouts` or `pre-checkout`. The longest name wins.
#[derive(Clone)]
struct Renamer {
    map: HashMap<String, String>,
    /// Names that may follow a `-` (node names).
    after_dash: HashSet<String>,
}

impl Renamer {
    fn apply(&self, text: &str) -> Option<String> {
        let b = text.as_bytes();
        let mut out: Option<String> = None;
        let mut last = 0;
        let mut i = 0;
        while i < b.len() {
            let prev = if i == 0 { None } else { Some(b[i - 1]) };
            if is_alnum(b[i]) && !prev.is_some_and(is_alnum) {
                let dash = prev == Some(b'-');
                let mut j = i;
                while j < b.len() && is_name_byte(b[j]) {
                    j += 1;
                }
                let mut hit = None;
                for k in (i + 1..=j).rev() {
                    if k < j && b[k] != b'-' && b[k] != b'.' {
                        continue;
                    }
                    let cand = &text[i..k];
                    if let Some(n) = self.map.get(cand)
                        && (!dash || self.after_dash.contains(cand))
                    {
                        hit = Some((k, n));
                        break;
                    }
                }
                if let Some((k, n)) = hit {
                    let o = out.get_or_insert_with(|| String::with_capacity(text.len() + 8));
                    o.push_str(&text[last..i]);
                    o.push_str(n);
                    last = k;
                    i = k;
                    continue;
                }
            }
            i += 1;
        }
        out.map(|mut o| {
            o.push_str(&text[last..]);
            o
        })
    }

    fn inverse(&self) -> Renamer {
        Renamer {
            map: self
                .map
                .iter()
                .map(|(k, v)| (v.clone(), k.clone()))
                .collect(),
            after_dash: self
                .after_dash
                .iter()
                .filter_map(|k| self.map.get(k).cloned())
                .collect(),
        }
    }
}

/// The engine's sources besides `correlate/` (the notifier, reports and silences, with
/// their sample incidents, play no part in correlation).
const ENGINE_SOURCES: &[&str] = &[
    "classify.rs",
    "config.rs",
    "engine.rs",
    "incident.rs",
    "lifecycle.rs",
];

/// Lower-case name-like tokens in the engine's string literals (non-test code of
/// tapio-core's correlation, the built-in rules): names the engine may treat specially ("coredns",
/// "kube-dns", CNI daemons, monitoring jobs, ...). A name equal to one, or a prefix of
/// one, is never renamed.
fn engine_tokens() -> &'static BTreeSet<String> {
    static TOKENS: OnceLock<BTreeSet<String>> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let mut literals = Vec::new();
        let src = repo().join("crates/tapio-core/src");
        let mut files: Vec<PathBuf> = ENGINE_SOURCES.iter().map(|f| src.join(f)).collect();
        for e in std::fs::read_dir(src.join("correlate"))
            .expect("tapio-core/src/correlate")
            .flatten()
        {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "rs")
                && p.file_name().is_some_and(|n| n != "tests.rs")
            {
                files.push(p);
            }
        }
        for p in files {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            rust_string_literals(code, &mut literals);
        }
        for e in std::fs::read_dir(repo().join("rules"))
            .expect("rules")
            .flatten()
        {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "toml") {
                toml_string_literals(
                    &std::fs::read_to_string(&p).expect("read rules"),
                    &mut literals,
                );
            }
        }
        let mut out = BTreeSet::new();
        for l in literals {
            let l = l.to_ascii_lowercase();
            for t in l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.')) {
                let t = t.trim_matches(|c| c == '-' || c == '.');
                if !t.is_empty() {
                    out.insert(t.to_owned());
                }
            }
        }
        assert!(
            out.contains("coredns") && out.contains("kube-system"),
            "engine literals not found"
        );
        out
    })
}

/// The contents of the string literals in Rust source (comments, char literals and
/// lifetimes skipped; raw strings read).
fn rust_string_literals(code: &str, out: &mut Vec<String>) {
    let c: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '/' if c.get(i + 1) == Some(&'/') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if c.get(i + 1) == Some(&'*') => {
                i += 2;
                while i + 1 < c.len() && !(c[i] == '*' && c[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            'r' if (c.get(i + 1) == Some(&'#') || c.get(i + 1) == Some(&'"'))
                && (i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_')) =>
            {
                let mut j = i + 1;
                let mut hashes = 0;
                while c.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if c.get(j) != Some(&'"') {
                    i += 1;
                    continue;
                }
                j += 1;
                let start = j;
                while j < c.len() {
                    if c[j] == '"' && (0..hashes).all(|h| c.get(j + 1 + h) == Some(&'#')) {
                        break;
                    }
                    j += 1;
                }
                out.push(c[start..j.min(c.len())].iter().collect());
                i = j + 1 + hashes;
            }
            '"' => {
                let mut j = i + 1;
                let mut lit = String::new();
                while j < c.len() && c[j] != '"' {
                    if c[j] == '\\' {
                        j += 1;
                        lit.push(' ');
                    } else {
                        lit.push(c[j]);
                    }
                    j += 1;
                }
                out.push(lit);
                i = j + 1;
            }
            '\'' => {
                // A char literal ('x', '\n', '"') or a lifetime ('a).
                if c.get(i + 1) == Some(&'\\') {
                    let mut j = i + 2;
                    while j < c.len() && c[j] != '\'' {
                        j += 1;
                    }
                    i = j + 1;
                } else if c.get(i + 2) == Some(&'\'') {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
}

fn toml_string_literals(text: &str, out: &mut Vec<String>) {
    for line in text.lines() {
        let mut in_str: Option<char> = None;
        let mut cur = String::new();
        let mut esc = false;
        for ch in line.chars() {
            match in_str {
                None => match ch {
                    '#' => break,
                    '"' | '\'' => in_str = Some(ch),
                    _ => {}
                },
                Some(q) => {
                    if esc {
                        esc = false;
                    } else if ch == '\\' && q == '"' {
                        esc = true;
                    } else if ch == q {
                        out.push(std::mem::take(&mut cur));
                        in_str = None;
                    } else {
                        cur.push(ch);
                    }
                }
            }
        }
    }
}

/// `Kind/namespace/name` or `Kind/name` of an expected entity.
fn split_entity(e: &str) -> (String, Option<String>, String) {
    let p: Vec<&str> = e.split('/').collect();
    match p.as_slice() {
        [k, ns, n] => ((*k).into(), Some((*ns).into()), (*n).into()),
        [k, n] => ((*k).into(), None, (*n).into()),
        _ => (e.into(), None, String::new()),
    }
}

/// Build a consistent renaming of the scenario's application namespaces, objects and
/// nodes. `reverse`: hand out the new names in the reverse order of the old ones.
fn renamer_for(batches: &[Value], expected: &Value, reverse: bool) -> Renamer {
    let kept_ns = |ns: &str| KEPT_NAMESPACES.contains(&ns);
    let mut namespaces = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut nodes = BTreeSet::new();
    let mut blocked: BTreeSet<String> = BTreeSet::new();
    // A name in an application namespace is renamed; one elsewhere is never touched.
    let add_name = |ns: Option<&str>,
                    name: &str,
                    names: &mut BTreeSet<String>,
                    blocked: &mut BTreeSet<String>| {
        if name.is_empty() {
            return;
        }
        match ns {
            Some(ns) if !kept_ns(ns) => names.insert(name.to_owned()),
            _ => blocked.insert(name.to_owned()),
        };
    };
    for b in batches {
        for ev in events_of(b) {
            let ent = ev.get("entity");
            let ns = ent.and_then(|e| s(e, &["namespace"]));
            if let Some(ns) = ns {
                namespaces.insert(ns.to_owned());
            }
            if let Some(c) = ent.and_then(|e| s(e, &["cluster"])) {
                blocked.insert(c.to_owned());
            }
            if let Some(n) = ent.and_then(|e| s(e, &["node"])) {
                nodes.insert(n.to_owned());
            }
            if let Some(n) = ent.and_then(|e| s(e, &["service"])) {
                add_name(ns, n, &mut names, &mut blocked);
            }
            if let Some(w) = ent.and_then(|e| e.get("workload"))
                && let (Some(k), Some(n)) = (s(w, &["kind"]), s(w, &["name"]))
                && (!GENERATED_KINDS.contains(&k) || ns.is_none_or(kept_ns))
            {
                add_name(ns, n, &mut names, &mut blocked);
            }
            if let Some(p) = ent.and_then(|e| s(e, &["pod"]))
                && ns.is_none_or(kept_ns)
            {
                blocked.insert(p.to_owned());
            }
            if let Some(a) = ev.get("attributes") {
                for key in [
                    "service",
                    "deployment",
                    "statefulset",
                    "daemonset",
                    "persistentvolumeclaim",
                    "horizontalpodautoscaler",
                ] {
                    if let Some(n) = s(a, &[key]) {
                        add_name(ns, n, &mut names, &mut blocked);
                    }
                }
                if let Some(n) = s(a, &["node"]) {
                    nodes.insert(n.to_owned());
                }
            }
            let Some(o) = ev.get("object") else { continue };
            let kind = s(o, &["kind"]).unwrap_or_default();
            let name = s(o, &["metadata", "name"]).unwrap_or_default();
            let ons = s(o, &["metadata", "namespace"]);
            match (kind, ons) {
                ("Node", _) => {
                    nodes.insert(name.to_owned());
                }
                ("Namespace", _) => {
                    namespaces.insert(name.to_owned());
                }
                (_, None) => {
                    blocked.insert(name.to_owned());
                }
                (k, Some(ons)) => {
                    namespaces.insert(ons.to_owned());
                    // (An Event's name is its object's and a suffix: never a name itself.)
                    if !GENERATED_KINDS.contains(&k) || (kept_ns(ons) && k != "Event") {
                        add_name(Some(ons), name, &mut names, &mut blocked);
                    }
                    // Owners (a Job's CronJob, a ReplicaSet's Deployment) even when the
                    // stream never shows them.
                    let owners = o
                        .pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array);
                    for r in owners.into_iter().flatten() {
                        match (s(r, &["kind"]), s(r, &["name"])) {
                            // A static pod's owner is its node.
                            (Some("Node"), Some(rn)) => {
                                nodes.insert(rn.to_owned());
                            }
                            (Some(rk), Some(rn)) if !GENERATED_KINDS.contains(&rk) => {
                                add_name(Some(ons), rn, &mut names, &mut blocked);
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    if let Some(incs) = expected.get("incidents").and_then(Value::as_array) {
        for inc in incs {
            let mut ents: Vec<&str> = s(inc, &["entity"]).into_iter().collect();
            if let Some(inv) = inc.get("involves").and_then(Value::as_array) {
                ents.extend(inv.iter().filter_map(Value::as_str));
            }
            for e in ents {
                match split_entity(e) {
                    (k, None, n) if k == "Node" => {
                        nodes.insert(n);
                    }
                    (_, Some(ns), n) => {
                        namespaces.insert(ns.clone());
                        add_name(Some(&ns), &n, &mut names, &mut blocked);
                    }
                    _ => {}
                }
            }
        }
    }
    // Never renamed: a name the engine's literals or a kept object's name equal or start
    // with (`kube` of `kube-proxy`), or one that starts with a kept object's name
    // (`coredns-custom` when `coredns` is kept): its generated names would part from it.
    let literals = engine_tokens();
    let starts = |set: &BTreeSet<String>, n: &str| {
        set.range(n.to_owned()..)
            .take_while(|t| t.starts_with(n))
            .any(|t| t.len() == n.len() || matches!(t.as_bytes()[n.len()], b'-' | b'.'))
    };
    let is_blocked = |n: &str| {
        starts(literals, n)
            || starts(&blocked, n)
            || n.match_indices('-').any(|(i, _)| blocked.contains(&n[..i]))
    };
    let mut old: BTreeSet<String> = BTreeSet::new();
    for ns in &namespaces {
        if !kept_ns(ns) && !is_blocked(ns) {
            old.insert(ns.clone());
        }
    }
    for n in names.iter().chain(&nodes) {
        if !is_blocked(n) {
            old.insert(n.clone());
        }
    }
    // A name that starts with another one renamed follows it (`invoice-sync-29929560`
    // after `invoice-sync`): generated names keep their owner's prefix.
    let old: BTreeSet<String> = old
        .iter()
        .filter(|n| !n.match_indices('-').any(|(i, _)| old.contains(&n[..i])))
        .cloned()
        .collect();
    // New names: `m` and four letters that spell no word, in the old names' order
    // (or its reverse).
    const LETTERS: &[u8] = b"qvwxz";
    assert!(old.len() < 625, "too many names to rename");
    let mut old: Vec<String> = old.into_iter().collect();
    if reverse {
        old.reverse();
    }
    let mut map = HashMap::new();
    for (i, o) in old.iter().enumerate() {
        let mut code = String::from("m");
        let mut x = i;
        let mut digits = [0u8; 4];
        for d in digits.iter_mut().rev() {
            *d = LETTERS[x % 5];
            x /= 5;
        }
        code.extend(digits.iter().map(|&d| d as char));
        map.insert(o.clone(), code);
    }
    let after_dash = nodes.into_iter().filter(|n| map.contains_key(n)).collect();
    Renamer { map, after_dash }
}

fn rename(sc: &Scenario, reverse: bool) -> Variant {
    let mut batches = sc.batches();
    let r = renamer_for(&batches, &sc.expected, reverse);
    let f = |t: &str| r.apply(t);
    for b in &mut batches {
        map_strings(b, NOT_NAMES, &f);
    }
    let mut expected = sc.expected.clone();
    map_strings(&mut expected, NOT_NAMES, &f);
    Variant {
        batches,
        expected,
        back: Some(r.inverse()),
    }
}

// ---------------------------------------------------------------------------------------
// 2. Shifting time.
// ---------------------------------------------------------------------------------------

fn digits_at(b: &[u8], i: usize, n: usize) -> bool {
    i + n <= b.len() && b[i..i + n].iter().all(u8::is_ascii_digit)
}

/// Every RFC 3339 timestamp in `text` (the whole string or embedded in a message) moved
/// by `d`, written with the same precision and offset.
fn shift_times(text: &str, d: Duration) -> Option<String> {
    let b = text.as_bytes();
    if b.len() < 20 || !b.contains(&b'T') {
        return None;
    }
    let mut out: Option<String> = None;
    let mut last = 0;
    let mut i = 0;
    while i + 20 <= b.len() {
        let looks = (i == 0 || !b[i - 1].is_ascii_digit())
            && digits_at(b, i, 4)
            && b[i + 4] == b'-'
            && digits_at(b, i + 5, 2)
            && b[i + 7] == b'-'
            && digits_at(b, i + 8, 2)
            && b[i + 10] == b'T'
            && digits_at(b, i + 11, 2)
            && b[i + 13] == b':'
            && digits_at(b, i + 14, 2)
            && b[i + 16] == b':'
            && digits_at(b, i + 17, 2);
        if !looks {
            i += 1;
            continue;
        }
        let mut j = i + 19;
        let mut frac = 0;
        if j < b.len() && b[j] == b'.' {
            j += 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
                frac += 1;
            }
        }
        let end = if j < b.len() && b[j] == b'Z' {
            j + 1
        } else if j + 6 <= b.len()
            && (b[j] == b'+' || b[j] == b'-')
            && digits_at(b, j + 1, 2)
            && b[j + 3] == b':'
            && digits_at(b, j + 4, 2)
        {
            j + 6
        } else {
            i += 1;
            continue;
        };
        let Ok(t) = DateTime::parse_from_rfc3339(&text[i..end]) else {
            i += 1;
            continue;
        };
        let z = b[end - 1] == b'Z';
        let shifted: DateTime<FixedOffset> = t + d;
        let form = match frac {
            0 => SecondsFormat::Secs,
            1..=3 => SecondsFormat::Millis,
            4..=6 => SecondsFormat::Micros,
            _ => SecondsFormat::Nanos,
        };
        let mut new = shifted.to_rfc3339_opts(form, z);
        // Keep an odd precision (".5", ".12") as it was written.
        if matches!(frac, 1 | 2 | 4 | 5 | 7 | 8) {
            let dot = new.find('.').unwrap_or(new.len());
            let keep = dot + 1 + frac;
            let rest = new[dot..]
                .find(['Z', '+', '-'])
                .map(|p| dot + p)
                .unwrap_or(new.len());
            new = format!("{}{}", &new[..keep], &new[rest..]);
        }
        let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
        o.push_str(&text[last..i]);
        o.push_str(&new);
        last = end;
        i = end;
    }
    out.map(|mut o| {
        o.push_str(&text[last..]);
        o
    })
}

fn shift(sc: &Scenario, d: Duration) -> Variant {
    let mut batches = sc.batches();
    let f = |t: &str| shift_times(t, d);
    for b in &mut batches {
        map_strings(b, &[], &f);
    }
    Variant {
        batches,
        expected: sc.expected.clone(),
        back: None,
    }
}

// ---------------------------------------------------------------------------------------
// 3. Re-chunking batches.
// ---------------------------------------------------------------------------------------

fn batch(agent: &str, node: &str, seq: usize, events: Vec<Value>) -> Value {
    json!({"version": 1, "agent_id": agent, "node": node, "seq": seq, "events": events})
}

fn rechunk(sc: &Scenario, size: usize) -> Variant {
    let all: Vec<Value> = sc
        .batches()
        .iter()
        .flat_map(|b| events_of(b).cloned().collect::<Vec<_>>())
        .collect();
    let batches = all
        .chunks(size)
        .enumerate()
        .map(|(i, c)| batch("metamorphic-rechunk", "replay", i + 1, c.to_vec()))
        .collect();
    Variant {
        batches,
        expected: sc.expected.clone(),
        back: None,
    }
}

// ---------------------------------------------------------------------------------------
// Kubernetes objects (routine churn, the synthetic replica pair).
// ---------------------------------------------------------------------------------------

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A ULID for `t` whose random part is `salt`.
fn ulid(t: DateTime<Utc>, salt: u128) -> String {
    let ms = u128::from(u64::try_from(t.timestamp_millis()).unwrap_or(0));
    let v = (ms << 80) | (salt & ((1u128 << 80) - 1));
    (0..26)
        .map(|i| CROCKFORD[((v >> (125 - 5 * i)) & 31) as usize] as char)
        .collect()
}

/// Builds watch events for one application: a Deployment, its ReplicaSet, pods, a
/// Service and its EndpointSlice, as the API server returns them.
struct App {
    cluster: Option<String>,
    ns: String,
    name: String,
    hash: String,
    image: String,
    created: DateTime<Utc>,
    cluster_ip: String,
    salt: u128,
    seq: u128,
}

struct PodSpec<'a> {
    name: &'a str,
    node: &'a str,
    ip: &'a str,
    phase: &'a str,
    ready: bool,
    restarts: u32,
    /// The container's state (`running`, `waiting`, `terminated` object).
    state: Value,
    last_state: Value,
    deleting: Option<DateTime<Utc>>,
}

/// FNV-1a: stable fake UIDs and event names.
fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

impl App {
    fn uid(&self, what: &str) -> String {
        let x = format!("{:016x}", fnv(&format!("{}/{}/{what}", self.ns, self.name)));
        format!(
            "{}-{}-4{}-8{}-{}a1b2c3d4",
            &x[..8],
            &x[8..12],
            &x[12..15],
            &x[13..16],
            &x[..4]
        )
    }

    fn labels(&self) -> Value {
        json!({"app": self.name, "app.kubernetes.io/name": self.name})
    }

    fn event(&mut self, verb: &str, t: DateTime<Utc>, obj: Value) -> (DateTime<Utc>, Value) {
        self.seq += 1;
        let mut entity = Map::new();
        if let Some(c) = &self.cluster {
            entity.insert("cluster".into(), json!(c));
        }
        entity.insert("namespace".into(), json!(self.ns));
        (
            t,
            json!({
                "id": ulid(t, self.salt + self.seq),
                "time": ts(t),
                "type": format!("kubernetes.watch.{verb}"),
                "severity": "info",
                "entity": entity,
                "object": obj,
            }),
        )
    }

    fn container(&self) -> Value {
        json!({
            "name": "app",
            "image": self.image,
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
            "resources": {"limits": {"memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"},
                               "periodSeconds": 5, "timeoutSeconds": 1, "failureThreshold": 3}
        })
    }

    fn deployment(&self, replicas: u32, ready: u32, generation: u32) -> Value {
        let available = ready >= replicas.saturating_sub(replicas / 4).max(1);
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": self.name, "namespace": self.ns, "uid": self.uid("deploy"),
                         "resourceVersion": format!("{}", 900_000 + generation * 10 + ready),
                         "generation": generation, "creationTimestamp": ts(self.created),
                         "labels": self.labels(),
                         "annotations": {"deployment.kubernetes.io/revision": "1"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": self.name}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": self.labels()},
                                  "spec": {"containers": [self.container()]}}},
            "status": {"observedGeneration": generation, "replicas": replicas.max(ready),
                       "updatedReplicas": replicas.max(ready), "readyReplicas": ready,
                       "availableReplicas": ready,
                       "unavailableReplicas": replicas.saturating_sub(ready),
                       "conditions": [
                           {"type": "Available", "status": if available { "True" } else { "False" },
                            "reason": if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                            "message": if available { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." },
                            "lastUpdateTime": ts(self.created), "lastTransitionTime": ts(self.created)},
                           {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                            "message": format!("ReplicaSet \"{}-{}\" has successfully progressed.", self.name, self.hash),
                            "lastUpdateTime": ts(self.created), "lastTransitionTime": ts(self.created)}]}
        })
    }

    fn rs_name(&self) -> String {
        format!("{}-{}", self.name, self.hash)
    }

    fn replicaset(&self, replicas: u32, ready: u32, generation: u32) -> Value {
        let mut labels = self.labels();
        labels["pod-template-hash"] = json!(self.hash);
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": self.rs_name(), "namespace": self.ns, "uid": self.uid("rs"),
                         "resourceVersion": format!("{}", 800_000 + generation * 10 + ready),
                         "generation": generation, "creationTimestamp": ts(self.created),
                         "labels": labels,
                         "annotations": {"deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                                         "deployment.kubernetes.io/revision": "1"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": self.name, "uid": self.uid("deploy"),
                                              "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"replicas": replicas,
                     "selector": {"matchLabels": {"app": self.name, "pod-template-hash": self.hash}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [self.container()]}}},
            "status": {"replicas": replicas.max(ready), "fullyLabeledReplicas": replicas.max(ready),
                       "readyReplicas": ready, "availableReplicas": ready,
                       "observedGeneration": generation}
        })
    }

    fn pod(&self, p: &PodSpec<'_>, started: DateTime<Utc>) -> Value {
        let mut labels = self.labels();
        labels["pod-template-hash"] = json!(self.hash);
        let ready = if p.ready { "True" } else { "False" };
        let mut cond_ready = json!({"type": "Ready", "status": ready, "lastProbeTime": null,
                                    "lastTransitionTime": ts(started)});
        let mut cond_cready = json!({"type": "ContainersReady", "status": ready,
                                     "lastProbeTime": null, "lastTransitionTime": ts(started)});
        if !p.ready {
            for c in [&mut cond_ready, &mut cond_cready] {
                c["reason"] = json!("ContainersNotReady");
                c["message"] = json!("containers with unready status: [app]");
            }
        }
        let mut meta = json!({"name": p.name, "namespace": self.ns, "uid": self.uid(p.name),
                              "resourceVersion": format!("{}", 700_000 + p.restarts),
                              "creationTimestamp": ts(started),
                              "generateName": format!("{}-", self.rs_name()),
                              "labels": labels,
                              "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                   "name": self.rs_name(), "uid": self.uid("rs"),
                                                   "controller": true, "blockOwnerDeletion": true}]});
        if let Some(d) = p.deleting {
            meta["deletionTimestamp"] = json!(ts(d));
            meta["deletionGracePeriodSeconds"] = json!(30);
        }
        let mut status = json!({
            "phase": p.phase, "qosClass": "Burstable",
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null, "lastTransitionTime": ts(started)},
                {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": ts(started)},
                cond_ready, cond_cready,
                {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": ts(started)}],
            "hostIP": "10.0.250.1", "hostIPs": [{"ip": "10.0.250.1"}],
            "startTime": ts(started),
            "containerStatuses": [{"name": "app", "image": self.image, "ready": p.ready,
                                   "restartCount": p.restarts, "started": p.ready,
                                   "state": p.state, "lastState": p.last_state}]
        });
        if !p.ip.is_empty() {
            status["podIP"] = json!(p.ip);
            status["podIPs"] = json!([{"ip": p.ip}]);
        }
        json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [self.container()], "restartPolicy": "Always",
                     "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                     "serviceAccountName": "default", "schedulerName": "default-scheduler",
                     "nodeName": p.node},
            "status": status
        })
    }

    fn service(&self) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": self.name, "namespace": self.ns, "uid": self.uid("svc"),
                         "resourceVersion": "600001", "creationTimestamp": ts(self.created),
                         "labels": self.labels()},
            "spec": {"type": "ClusterIP", "clusterIP": self.cluster_ip, "clusterIPs": [self.cluster_ip],
                     "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                     "sessionAffinity": "None", "selector": {"app": self.name},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
            "status": {"loadBalancer": {}}
        })
    }

    /// Endpoints: (pod, node, ip, ready, terminating).
    fn endpointslice(&self, eps: &[(&str, &str, &str, bool, bool)], version: u32) -> Value {
        let endpoints: Vec<Value> = eps
            .iter()
            .map(|(pod, node, ip, ready, term)| {
                json!({"addresses": [ip],
                       "conditions": {"ready": ready, "serving": *ready || *term, "terminating": term},
                       "nodeName": node,
                       "targetRef": {"kind": "Pod", "name": pod, "namespace": self.ns, "uid": self.uid(pod)}})
            })
            .collect();
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{}-mq7xz", self.name), "namespace": self.ns,
                         "uid": self.uid("eps"), "resourceVersion": format!("{}", 500_000 + version),
                         "generation": version, "creationTimestamp": ts(self.created),
                         "generateName": format!("{}-", self.name),
                         "labels": {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                                    "kubernetes.io/service-name": self.name},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": self.name,
                                              "uid": self.uid("svc"), "controller": true, "blockOwnerDeletion": true}]},
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
        })
    }

    /// A core/v1 Event about one of the app's objects.
    #[allow(clippy::too_many_arguments)]
    fn k8s_event(
        &self,
        t: DateTime<Utc>,
        kind: &str,
        name: &str,
        typ: &str,
        reason: &str,
        message: &str,
        count: u32,
        first: DateTime<Utc>,
    ) -> Value {
        let api = if kind == "Pod" { "v1" } else { "apps/v1" };
        json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{name}.{:016x}", fnv(&format!("{}/{reason}/{count}", t.timestamp_millis()))),
                         "namespace": self.ns, "uid": self.uid(&format!("ev-{name}-{reason}")),
                         "resourceVersion": "400001", "creationTimestamp": ts(first)},
            "involvedObject": {"apiVersion": api, "kind": kind, "name": name, "namespace": self.ns,
                               "uid": self.uid(if kind == "Pod" { name } else if kind == "ReplicaSet" { "rs" } else { "deploy" })},
            "reason": reason, "message": message,
            "source": {"component": if kind == "Pod" { "kubelet" } else { "deployment-controller" }},
            "firstTimestamp": ts(first), "lastTimestamp": ts(t), "count": count, "type": typ,
            "eventTime": null
        })
    }
}

fn running(since: DateTime<Utc>) -> Value {
    json!({"running": {"startedAt": ts(since)}})
}

// ---------------------------------------------------------------------------------------
// 4. Routine churn.
// ---------------------------------------------------------------------------------------

/// A healthy Deployment of two in a namespace of its own, scaled to three a third into
/// the scenario and back to two two thirds in, with its ReplicaSet, pods, Service,
/// EndpointSlice and the Normal events a real scale-up and scale-down produce. Its pods
/// run on a node the scenario does not have (so no scenario's node failure touches them).
fn churn(sc: &Scenario) -> Option<Variant> {
    let batches = sc.batches();
    let times: Vec<DateTime<Utc>> = batches
        .iter()
        .flat_map(|b| events_of(b).filter_map(time_of).collect::<Vec<_>>())
        .collect();
    let (t_min, t_max) = (*times.iter().min()?, *times.iter().max()?);
    let span = t_max - t_min;
    if span < Duration::seconds(60) {
        return None;
    }
    for l in &sc.lines {
        assert!(
            !l.contains("10.254.") && !l.contains("mmchurn") && !l.contains("tidepool"),
            "{}: churn addresses or names collide with the scenario",
            sc.name
        );
    }
    let mut clusters: BTreeMap<&str, usize> = BTreeMap::new();
    for b in &batches {
        for ev in events_of(b) {
            if let Some(c) = s(ev, &["entity", "cluster"]) {
                *clusters.entry(c).or_default() += 1;
            }
        }
    }
    let cluster = clusters
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(c, _)| (*c).to_owned());
    let mut app = App {
        cluster,
        ns: "mmchurn".into(),
        name: "tidepool".into(),
        hash: "6b8f7c9d5".into(),
        image: "registry.example.com/mmchurn/tidepool:1.4.0".into(),
        created: t_min - Duration::days(3),
        cluster_ip: "10.254.255.10".into(),
        salt: 0x7EA5_0000_0000_0000,
        seq: 0,
    };
    let node = "mmchurn-node-1";
    let long_ago = t_min - Duration::days(2);
    let pods = [
        ("tidepool-6b8f7c9d5-k2xqv", "10.254.0.11"),
        ("tidepool-6b8f7c9d5-w7rzn", "10.254.0.12"),
        ("tidepool-6b8f7c9d5-q9mfs", "10.254.0.13"),
    ];
    let healthy = |app: &App, i: usize, since: DateTime<Utc>| {
        app.pod(
            &PodSpec {
                name: pods[i].0,
                node,
                ip: pods[i].1,
                phase: "Running",
                ready: true,
                restarts: 0,
                state: running(since),
                last_state: json!({}),
                deleting: None,
            },
            since,
        )
    };
    let ep = |i: usize, ready: bool, term: bool| (pods[i].0, node, pods[i].1, ready, term);
    let mut out: Vec<(DateTime<Utc>, Value)> = Vec::new();
    // Already running when the scenario starts.
    let t0 = t_min;
    let o = app.deployment(2, 2, 1);
    out.push(app.event("added", t0, o));
    let o = app.replicaset(2, 2, 1);
    out.push(app.event("added", t0, o));
    for i in 0..2 {
        let o = healthy(&app, i, long_ago);
        out.push(app.event("added", t0, o));
    }
    let o = app.service();
    out.push(app.event("added", t0, o));
    let o = app.endpointslice(&[ep(0, true, false), ep(1, true, false)], 1);
    out.push(app.event("added", t0, o));

    // Scale up to three.
    let up = t_min + span / 3;
    let sec = Duration::seconds;
    let new_pod = pods[2].0;
    let o = app.deployment(3, 2, 2);
    out.push(app.event("modified", up, o));
    let o = app.k8s_event(
        up,
        "Deployment",
        "tidepool",
        "Normal",
        "ScalingReplicaSet",
        "Scaled up replica set tidepool-6b8f7c9d5 to 3 from 2",
        1,
        up,
    );
    out.push(app.event("added", up, o));
    let o = app.replicaset(3, 2, 2);
    out.push(app.event("modified", up, o));
    let pending = app.pod(
        &PodSpec {
            name: new_pod,
            node,
            ip: "",
            phase: "Pending",
            ready: false,
            restarts: 0,
            state: json!({"waiting": {"reason": "ContainerCreating"}}),
            last_state: json!({}),
            deleting: None,
        },
        up,
    );
    out.push(app.event("added", up, pending));
    let rs = app.rs_name();
    let o = app.k8s_event(
        up,
        "ReplicaSet",
        &rs,
        "Normal",
        "SuccessfulCreate",
        &format!("Created pod: {new_pod}"),
        1,
        up,
    );
    out.push(app.event("added", up, o));
    let o = app.k8s_event(
        up + sec(1),
        "Pod",
        new_pod,
        "Normal",
        "Scheduled",
        &format!("Successfully assigned mmchurn/{new_pod} to {node}"),
        1,
        up + sec(1),
    );
    out.push(app.event("added", up + sec(1), o));
    let starting = app.pod(
        &PodSpec {
            name: new_pod,
            node,
            ip: pods[2].1,
            phase: "Running",
            ready: false,
            restarts: 0,
            state: running(up + sec(2)),
            last_state: json!({}),
            deleting: None,
        },
        up,
    );
    out.push(app.event("modified", up + sec(2), starting));
    for (reason, msg) in [
        (
            "Pulled",
            "Container image \"registry.example.com/mmchurn/tidepool:1.4.0\" already present on machine",
        ),
        ("Created", "Created container app"),
        ("Started", "Started container app"),
    ] {
        let o = app.k8s_event(
            up + sec(2),
            "Pod",
            new_pod,
            "Normal",
            reason,
            msg,
            1,
            up + sec(2),
        );
        out.push(app.event("added", up + sec(2), o));
    }
    let o = app.endpointslice(
        &[ep(0, true, false), ep(1, true, false), ep(2, false, false)],
        2,
    );
    out.push(app.event("modified", up + sec(2), o));
    let o = healthy(&app, 2, up + sec(2));
    out.push(app.event("modified", up + sec(7), o));
    let o = app.endpointslice(
        &[ep(0, true, false), ep(1, true, false), ep(2, true, false)],
        3,
    );
    out.push(app.event("modified", up + sec(7), o));
    let o = app.replicaset(3, 3, 2);
    out.push(app.event("modified", up + sec(7), o));
    let o = app.deployment(3, 3, 2);
    out.push(app.event("modified", up + sec(7), o));

    // Scale back down to two.
    let down = t_min + span * 2 / 3;
    let o = app.deployment(2, 3, 3);
    out.push(app.event("modified", down, o));
    let o = app.k8s_event(
        down,
        "Deployment",
        "tidepool",
        "Normal",
        "ScalingReplicaSet",
        "Scaled down replica set tidepool-6b8f7c9d5 to 2 from 3",
        1,
        down,
    );
    out.push(app.event("added", down, o));
    let o = app.replicaset(2, 3, 3);
    out.push(app.event("modified", down, o));
    let terminating = app.pod(
        &PodSpec {
            name: new_pod,
            node,
            ip: pods[2].1,
            phase: "Running",
            ready: true,
            restarts: 0,
            state: running(up + sec(2)),
            last_state: json!({}),
            deleting: Some(down + sec(30)),
        },
        up,
    );
    out.push(app.event("modified", down, terminating));
    let o = app.k8s_event(
        down,
        "ReplicaSet",
        &rs,
        "Normal",
        "SuccessfulDelete",
        &format!("Deleted pod: {new_pod}"),
        1,
        down,
    );
    out.push(app.event("added", down, o));
    let o = app.endpointslice(
        &[ep(0, true, false), ep(1, true, false), ep(2, false, true)],
        4,
    );
    out.push(app.event("modified", down, o));
    let o = app.k8s_event(
        down,
        "Pod",
        new_pod,
        "Normal",
        "Killing",
        "Stopping container app",
        1,
        down,
    );
    out.push(app.event("added", down, o));
    let stopped = app.pod(
        &PodSpec {
            name: new_pod,
            node,
            ip: pods[2].1,
            phase: "Running",
            ready: false,
            restarts: 0,
            state: json!({"terminated": {"exitCode": 0, "reason": "Completed",
                                          "startedAt": ts(up + sec(2)), "finishedAt": ts(down + sec(2))}}),
            last_state: json!({}),
            deleting: Some(down + sec(30)),
        },
        up,
    );
    out.push(app.event("modified", down + sec(2), stopped.clone()));
    out.push(app.event("deleted", down + sec(2), stopped));
    let o = app.endpointslice(&[ep(0, true, false), ep(1, true, false)], 5);
    out.push(app.event("modified", down + sec(2), o));
    let o = app.replicaset(2, 2, 3);
    out.push(app.event("modified", down + sec(2), o));
    let o = app.deployment(2, 2, 3);
    out.push(app.event("modified", down + sec(2), o));

    // Interleave: each churn event its own batch, before the first scenario batch that
    // starts after it.
    let mut merged = Vec::new();
    let mut pending = out.into_iter().peekable();
    let mut seq = 0;
    for b in batches {
        let start = events_of(&b).filter_map(time_of).min();
        while let Some((t, _)) = pending.peek() {
            if start.is_some_and(|s| *t < s) {
                let (_, ev) = pending.next().expect("peeked");
                seq += 1;
                merged.push(batch("kube-watch-churn", node, seq, vec![ev]));
            } else {
                break;
            }
        }
        merged.push(b);
    }
    for (_, ev) in pending {
        seq += 1;
        merged.push(batch("kube-watch-churn", node, seq, vec![ev]));
    }
    Some(Variant {
        batches: merged,
        expected: sc.expected.clone(),
        back: None,
    })
}

// ---------------------------------------------------------------------------------------
// 5. A healthy replica more.
// ---------------------------------------------------------------------------------------

/// Whether `text` names `name` as a whole token (after a character that is not
/// alphanumeric — nor `-` unless `after_dash` — and before one that is not alphanumeric).
fn mentions(text: &str, name: &str, after_dash: bool) -> bool {
    let b = text.as_bytes();
    text.match_indices(name).any(|(i, _)| {
        let prev_ok = i == 0 || !(is_alnum(b[i - 1]) || (!after_dash && b[i - 1] == b'-'));
        let end = i + name.len();
        prev_ok && (end == b.len() || !is_alnum(b[end]))
    })
}

fn num(v: &Value, path: &str) -> Option<u64> {
    v.pointer(path).and_then(Value::as_u64)
}

/// Whether a pod object is running, ready, never restarted and not going away.
fn pod_healthy(o: &Value) -> bool {
    s(o, &["status", "phase"]) == Some("Running")
        && o.pointer("/metadata/deletionTimestamp").is_none()
        && o.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| s(c, &["type"]) == Some("Ready") && s(c, &["status"]) == Some("True"))
            })
        && o.pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                !cs.is_empty()
                    && cs.iter().all(|c| {
                        c.get("ready") == Some(&json!(true)) && num(c, "/restartCount") == Some(0)
                    })
            })
}

fn node_healthy(o: &Value) -> bool {
    let conds_ok = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter().all(|c| match s(c, &["type"]) {
                Some("Ready") => s(c, &["status"]) == Some("True"),
                _ => s(c, &["status"]) != Some("True"),
            })
        });
    conds_ok
        && o.pointer("/spec/unschedulable").is_none()
        && o.pointer("/spec/taints")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
}

/// For the first Deployment (by name) that plays no part in the scenario's answer — not
/// in expected.json, in no incident the engine produces, named by no fact, alert, change
/// marker or object other than its own (Deployment, ReplicaSet, pods, Service,
/// EndpointSlice, events), with a single ReplicaSet — one more ready replica from the
/// start: a pod like its first healthy one (another name, UID and IP) on a node that stays
/// healthy and that no node-level fact names, one more (ready) replica in every version
/// of the Deployment and ReplicaSet, one more ready endpoint in every version of each
/// EndpointSlice that lists its pods.
fn healthy_replica(sc: &Scenario) -> Option<Variant> {
    let batches = sc.batches();
    let expected = parse_expected(&sc.name, &sc.expected);
    let events = decode_lines(&sc.name, sc.lines.iter().map(String::as_str));
    let answer = serde_json::to_string(&run(&sc.name, &events, &expected).incidents)
        .expect("incidents as JSON");
    let expected_text = sc.expected.to_string();
    let watch = |ev: &Value| -> Option<(String, String)> {
        let t = s(ev, &["type"])?;
        t.starts_with("kubernetes.watch.").then_some(())?;
        let o = ev.get("object")?;
        Some((
            s(o, &["kind"])?.to_owned(),
            t.trim_start_matches("kubernetes.watch.").to_owned(),
        ))
    };
    // Candidates: Deployments in application namespaces that no answer names.
    let mut deps: BTreeSet<(String, String)> = BTreeSet::new();
    for b in &batches {
        for ev in events_of(b) {
            if let Some((k, _)) = watch(ev)
                && k == "Deployment"
            {
                let o = &ev["object"];
                let (Some(ns), Some(n)) = (
                    s(o, &["metadata", "namespace"]),
                    s(o, &["metadata", "name"]),
                ) else {
                    continue;
                };
                if !KEPT_NAMESPACES.contains(&ns)
                    && !mentions(&expected_text, n, false)
                    && !mentions(&answer, n, false)
                {
                    deps.insert((ns.to_owned(), n.to_owned()));
                }
            }
        }
    }
    // Everything but workloads' own objects, Kubernetes events and connect statistics
    // (alerts, agent facts, change markers, other kinds); and what is about a node itself.
    let mut others: Vec<String> = Vec::new();
    let mut about_nodes: Vec<String> = Vec::new();
    for b in &batches {
        for ev in events_of(b) {
            let w = watch(ev);
            let own = match &w {
                Some((k, _)) => matches!(
                    k.as_str(),
                    "Deployment"
                        | "ReplicaSet"
                        | "Pod"
                        | "Service"
                        | "EndpointSlice"
                        | "Node"
                        | "Event"
                ),
                None => s(ev, &["type"]) == Some("kernel.network.connect_stats"),
            };
            let node_level = match &w {
                Some((k, _)) => {
                    k == "Event"
                        && s(&ev["object"], &["involvedObject", "kind"]) == Some("Node")
                        && s(&ev["object"], &["type"]) != Some("Normal")
                }
                None => ev.pointer("/entity/pod").is_none(),
            };
            if !own || node_level {
                let text = ev.to_string();
                if node_level {
                    about_nodes.push(text.clone());
                }
                if !own {
                    others.push(text);
                }
            }
        }
    }
    let all_text = sc.lines.join("\n");
    for (ns, dep) in deps {
        if others.iter().any(|l| mentions(l, &dep, false)) {
            continue;
        }
        let mut rs_names = BTreeSet::new();
        let mut model: Option<Value> = None;
        for b in &batches {
            for ev in events_of(b) {
                let Some((k, verb)) = watch(ev) else { continue };
                let o = &ev["object"];
                if s(o, &["metadata", "namespace"]) != Some(ns.as_str()) {
                    continue;
                }
                let name = s(o, &["metadata", "name"]).unwrap_or_default();
                let owner = o
                    .pointer("/metadata/ownerReferences/0/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match k.as_str() {
                    "ReplicaSet" if owner == dep => {
                        rs_names.insert(name.to_owned());
                    }
                    "Pod"
                        if model.is_none()
                            && verb == "added"
                            && pod_healthy(o)
                            && owner
                                .strip_prefix(dep.as_str())
                                .is_some_and(|r| r.starts_with('-')) =>
                    {
                        model = Some(o.clone());
                    }
                    _ => {}
                }
            }
        }
        let Some(model) = model else { continue };
        if rs_names.len() != 1 {
            continue;
        }
        let node = s(&model, &["spec", "nodeName"])
            .unwrap_or_default()
            .to_owned();
        if node.is_empty() || about_nodes.iter().any(|l| mentions(l, &node, true)) {
            continue;
        }
        let node_ok = batches.iter().flat_map(events_of).all(|ev| {
            let o = &ev["object"];
            !(watch(ev).is_some_and(|(k, _)| k == "Node")
                && s(o, &["metadata", "name"]) == Some(&node))
                || (node_healthy(o) && s(ev, &["type"]) != Some("kubernetes.watch.deleted"))
        });
        if !node_ok {
            continue;
        }
        // An address no one uses.
        let Some(new_ip) = (1..250)
            .map(|i| format!("10.253.{i}.77"))
            .find(|ip| !all_text.contains(&format!("\"{ip}\"")))
        else {
            continue;
        };
        eprintln!("{}: one replica more for Deployment/{ns}/{dep}", sc.name);
        return Some(add_replica(sc, batches, &ns, &dep, model, &new_ip));
    }
    None
}

fn add_replica(
    sc: &Scenario,
    batches: Vec<Value>,
    ns: &str,
    dep: &str,
    model: Value,
    new_ip: &str,
) -> Variant {
    let rs = model
        .pointer("/metadata/ownerReferences/0/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let model_name = s(&model, &["metadata", "name"])
        .unwrap_or_default()
        .to_owned();
    let node = s(&model, &["spec", "nodeName"])
        .unwrap_or_default()
        .to_owned();
    // The model's zone, as an endpoint of it says.
    let zone: Option<String> = batches
        .iter()
        .flat_map(events_of)
        .filter_map(|ev| ev.pointer("/object/endpoints").and_then(Value::as_array))
        .flatten()
        .find(|e| s(e, &["targetRef", "name"]) == Some(&model_name))
        .and_then(|e| s(e, &["zone"]))
        .map(str::to_owned);
    let new_name = format!("{rs}-mmzqx");
    let new_uid = format!(
        "00000000-0000-4000-8000-{:012x}",
        fnv(&new_name) & 0xffff_ffff_ffff
    );
    let mut pod = model.clone();
    pod["metadata"]["name"] = json!(new_name);
    pod["metadata"]["uid"] = json!(new_uid);
    pod["status"]["podIP"] = json!(new_ip);
    pod["status"]["podIPs"] = json!([{"ip": new_ip}]);
    let bump = |v: &mut Value, path: &str| {
        if let Some(x) = v.pointer_mut(path)
            && let Some(n) = x.as_u64()
        {
            *x = json!(n + 1);
        }
    };
    let mut out = Vec::with_capacity(batches.len());
    let mut added = false;
    let mut salt = 0u128;
    for mut b in batches {
        // (position in the batch, the new pod's event) to insert after the model's.
        let mut extra: Option<(usize, Value)> = None;
        for (pos, ev) in events_mut(&mut b).enumerate() {
            let verb = s(ev, &["type"]).unwrap_or_default().to_owned();
            let Some(o) = ev.get_mut("object") else {
                continue;
            };
            if s(o, &["metadata", "namespace"]) != Some(ns) {
                continue;
            }
            let kind = s(o, &["kind"]).unwrap_or_default().to_owned();
            let name = s(o, &["metadata", "name"]).unwrap_or_default().to_owned();
            match kind.as_str() {
                "Deployment" if name == dep => {
                    for p in [
                        "/spec/replicas",
                        "/status/replicas",
                        "/status/updatedReplicas",
                        "/status/readyReplicas",
                        "/status/availableReplicas",
                    ] {
                        bump(o, p);
                    }
                }
                "ReplicaSet" if name == rs => {
                    for p in [
                        "/spec/replicas",
                        "/status/replicas",
                        "/status/fullyLabeledReplicas",
                        "/status/readyReplicas",
                        "/status/availableReplicas",
                    ] {
                        bump(o, p);
                    }
                    if let Some(Value::String(d)) = o.pointer_mut(
                        "/metadata/annotations/deployment.kubernetes.io~1desired-replicas",
                    ) && let Ok(n) = d.parse::<u64>()
                    {
                        *d = (n + 1).to_string();
                    }
                }
                "Pod" if name == model_name && verb == "kubernetes.watch.added" && !added => {
                    added = true;
                    let mut e = ev.clone();
                    let t = time_of(&e).unwrap_or_default();
                    salt += 1;
                    e["id"] = json!(ulid(t, 0x0AD0_0000_0000 + salt));
                    e["object"] = pod.clone();
                    if let Some(ent) = e.get_mut("entity").and_then(Value::as_object_mut)
                        && ent.contains_key("pod")
                    {
                        ent.insert("pod".into(), json!(new_name));
                    }
                    extra = Some((pos + 1, e));
                }
                "EndpointSlice" => {
                    let Some(eps) = o.get_mut("endpoints").and_then(Value::as_array_mut) else {
                        continue;
                    };
                    if let Some(m) = eps
                        .iter()
                        .find(|e| {
                            s(e, &["targetRef", "name"])
                                .is_some_and(|n| n.starts_with(&format!("{rs}-")))
                        })
                        .cloned()
                    {
                        let mut e = m;
                        e["nodeName"] = json!(node);
                        if let Some(z) = &zone {
                            e["zone"] = json!(z);
                        }
                        e["addresses"] = json!([new_ip]);
                        e["targetRef"]["name"] = json!(new_name);
                        e["targetRef"]["uid"] = json!(new_uid);
                        e["conditions"] =
                            json!({"ready": true, "serving": true, "terminating": false});
                        eps.push(e);
                    }
                }
                _ => {}
            }
        }
        if let Some((pos, e)) = extra
            && let Some(a) = b.get_mut("events").and_then(Value::as_array_mut)
        {
            a.insert(pos, e);
        }
        out.push(b);
    }
    assert!(added, "{}: the model pod was never added", sc.name);
    Variant {
        batches: out,
        expected: sc.expected.clone(),
        back: None,
    }
}

// ---------------------------------------------------------------------------------------
// 6. Rewording alerts.
// ---------------------------------------------------------------------------------------

/// "Heads-up: " and the first word (when it holds no figure) moved to the end in
/// parentheses: every figure stays, in the same order, next to its unit.
fn reword(text: &str) -> String {
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

fn reword_alerts(sc: &Scenario) -> Option<Variant> {
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

// ---------------------------------------------------------------------------------------
// 7. A thousandth of the traffic.
// ---------------------------------------------------------------------------------------

fn scale_traffic(sc: &Scenario) -> Option<Variant> {
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

// ---------------------------------------------------------------------------------------
// 8. One failing replica of three vs all three.
// ---------------------------------------------------------------------------------------

/// A Deployment `web` of three behind a Service, healthy for two minutes; then `failing`
/// of its pods crash-loop for eight minutes (state, BackOff events, endpoints, the
/// Deployment's availability), no rollout or config change.
fn replica_pair_stream(failing: usize) -> Vec<Value> {
    let t0: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z")
        .expect("time")
        .with_timezone(&Utc);
    let sec = Duration::seconds;
    let mut app = App {
        cluster: Some("prod".into()),
        ns: "storefront".into(),
        name: "web".into(),
        hash: "5f7c9d8b6".into(),
        image: "registry.example.com/storefront/web:3.2.0".into(),
        created: t0 - Duration::days(10),
        cluster_ip: "10.96.40.10".into(),
        salt: 0x5EED_0000_0000,
        seq: 0,
    };
    let pods = [
        ("web-5f7c9d8b6-a1b2c", "node-a", "10.1.0.21"),
        ("web-5f7c9d8b6-d3e4f", "node-b", "10.1.1.22"),
        ("web-5f7c9d8b6-g5h6j", "node-c", "10.1.2.23"),
    ];
    let since = t0 - Duration::days(2);
    let mut out: Vec<(DateTime<Utc>, Value)> = Vec::new();
    for (i, (node, ip)) in [
        ("node-a", "10.0.1.21"),
        ("node-b", "10.0.2.34"),
        ("node-c", "10.0.3.47"),
    ]
    .iter()
    .enumerate()
    {
        let conds: Vec<Value> = ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
            .iter()
            .map(|c| {
                json!({"type": c, "status": if *c == "Ready" { "True" } else { "False" },
                       "lastHeartbeatTime": ts(since), "lastTransitionTime": ts(since)})
            })
            .collect();
        let o = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node, "uid": app.uid(node), "resourceVersion": "100001",
                         "creationTimestamp": ts(since - Duration::days(20)),
                         "labels": {"kubernetes.io/hostname": node,
                                    "topology.kubernetes.io/zone": format!("eu-west-1{}", ["a", "b", "c"][i])}},
            "spec": {"podCIDR": format!("10.1.{i}.0/24")},
            "status": {"capacity": {"cpu": "8", "memory": "33554432Ki", "pods": "110"},
                       "allocatable": {"cpu": "7910m", "memory": "31879168Ki", "pods": "110"},
                       "conditions": conds,
                       "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": node}]}
        });
        let (t, mut e) = app.event("added", t0, o);
        e["entity"] = json!({"cluster": "prod", "node": node});
        out.push((t, e));
    }
    let o = app.deployment(3, 3, 1);
    out.push(app.event("added", t0, o));
    let o = app.replicaset(3, 3, 1);
    out.push(app.event("added", t0, o));
    let pod = |app: &App, i: usize, restarts: u32, t: DateTime<Utc>, crashing: bool| {
        let (name, node, ip) = pods[i];
        let (state, last, ready) = if crashing {
            (
                json!({"waiting": {"reason": "CrashLoopBackOff",
                                   "message": format!("back-off {}s restarting failed container=app pod={name}_storefront({})",
                                                      (10u32 << restarts.min(5)).min(300), app.uid(name))}}),
                json!({"terminated": {"exitCode": 1, "reason": "Error",
                                      "startedAt": ts(t - sec(8)), "finishedAt": ts(t - sec(1))}}),
                false,
            )
        } else {
            (running(since), json!({}), true)
        };
        app.pod(
            &PodSpec {
                name,
                node,
                ip,
                phase: "Running",
                ready,
                restarts,
                state,
                last_state: last,
                deleting: None,
            },
            since,
        )
    };
    for i in 0..3 {
        let o = pod(&app, i, 0, t0, false);
        out.push(app.event("added", t0, o));
    }
    let o = app.service();
    out.push(app.event("added", t0, o));
    let eps = |ready: &[bool]| -> Vec<(&str, &str, &str, bool, bool)> {
        pods.iter()
            .zip(ready)
            .map(|((n, node, ip), r)| (*n, *node, *ip, *r, false))
            .collect()
    };
    let o = app.endpointslice(&eps(&[true, true, true]), 1);
    out.push(app.event("added", t0, o));
    // Callers reach the Service all along; what fails is what the endpoints say.
    let fail_at = t0 + sec(120);
    let ready: Vec<bool> = (0..3).map(|i| i >= failing).collect();
    let healthy = 3 - failing as u32;
    for step in 0..16u32 {
        let t = fail_at + sec(30 * i64::from(step));
        for (i, (name, _, _)) in pods.iter().enumerate().take(failing) {
            let o = pod(&app, i, step + 1, t, true);
            out.push(app.event("modified", t, o));
            let o = app.k8s_event(
                t,
                "Pod",
                name,
                "Warning",
                "BackOff",
                &format!(
                    "Back-off restarting failed container app in pod {name}_storefront({})",
                    app.uid(name)
                ),
                step + 1,
                fail_at,
            );
            out.push(app.event(if step == 0 { "added" } else { "modified" }, t, o));
        }
        if step == 0 {
            let o = app.endpointslice(&eps(&ready), 2);
            out.push(app.event("modified", t, o));
            let o = app.replicaset(3, healthy, 1);
            out.push(app.event("modified", t, o));
            let o = app.deployment(3, healthy, 1);
            out.push(app.event("modified", t, o));
        }
    }
    out.sort_by_key(|(t, _)| *t);
    out.into_iter()
        .enumerate()
        .map(|(i, (_, e))| batch("kube-watch", "node-a", i + 1, vec![e]))
        .collect()
}

fn pair_expected(severity: Severity) -> Expected {
    serde_json::from_value(json!({
        "description": "metamorphic pair: crash-looping replicas of storefront/web",
        "incidents": [{
            "severity": severity,
            "cause": "none",
            "entity": "Deployment/storefront/web",
            "involves": ["Service/storefront/web"]
        }]
    }))
    .expect("expected")
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
