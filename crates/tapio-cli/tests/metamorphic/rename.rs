//! Transformation 1: renaming every application namespace, object and node consistently,
//! never a name the engine reads by itself.

use super::*;

// ---------------------------------------------------------------------------------------
// 1. Renaming.
// ---------------------------------------------------------------------------------------

/// Namespaces kept as they are: the system ones and those the engine reads by name.
pub(crate) const KEPT_NAMESPACES: &[&str] = &[
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "default",
    "monitoring",
];

/// Kinds whose names are generated from their owner's (renamed through the owner's name,
/// which they start with).
pub(crate) const GENERATED_KINDS: &[&str] = &["Pod", "ReplicaSet", "Job", "EndpointSlice", "Event"];

/// Keys whose values are never names.
pub(crate) const NOT_NAMES: &[&str] = &[
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

pub(crate) fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

pub(crate) fn is_name_byte(b: u8) -> bool {
    is_alnum(b) || b == b'-' || b == b'.'
}

/// Whole-token renaming. A name matches where it starts a token (after a character that
/// is not alphanumeric, `-` only for node names: static pods are `<component>-<node>`)
/// and ends before a character that is not alphanumeric — so `checkout` renames
/// `checkout`, `shop/checkout`, `checkout-7d9f8b6c5-x2x9q` and `checkout.shop.svc`, but not
/// `checkouts` or `pre-checkout`. The longest name wins.
#[derive(Clone)]
pub(crate) struct Renamer {
    pub(crate) map: HashMap<String, String>,
    /// Names that may follow a `-` (node names).
    pub(crate) after_dash: HashSet<String>,
}

impl Renamer {
    pub(crate) fn apply(&self, text: &str) -> Option<String> {
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

    pub(crate) fn inverse(&self) -> Renamer {
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
pub(crate) const ENGINE_SOURCES: &[&str] = &[
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
pub(crate) fn engine_tokens() -> &'static BTreeSet<String> {
    static TOKENS: OnceLock<BTreeSet<String>> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let mut literals = Vec::new();
        let src = repo().join("crates/tapio-core/src");
        let mut files: Vec<PathBuf> = ENGINE_SOURCES.iter().map(|f| src.join(f)).collect();
        // correlate/ and its subfolders (state/).
        let mut dirs = vec![src.join("correlate")];
        while let Some(dir) = dirs.pop() {
            for e in std::fs::read_dir(&dir)
                .expect("tapio-core/src/correlate")
                .flatten()
            {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "rs")
                    && p.file_name().is_some_and(|n| n != "tests.rs")
                {
                    files.push(p);
                }
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
pub(crate) fn rust_string_literals(code: &str, out: &mut Vec<String>) {
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

pub(crate) fn toml_string_literals(text: &str, out: &mut Vec<String>) {
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
pub(crate) fn split_entity(e: &str) -> (String, Option<String>, String) {
    let p: Vec<&str> = e.split('/').collect();
    match p.as_slice() {
        [k, ns, n] => ((*k).into(), Some((*ns).into()), (*n).into()),
        [k, n] => ((*k).into(), None, (*n).into()),
        _ => (e.into(), None, String::new()),
    }
}

/// Build a consistent renaming of the scenario's application namespaces, objects and
/// nodes. `reverse`: hand out the new names in the reverse order of the old ones.
// Kept whole (~180 lines): collecting the names, blocking the ones never renamed and
// handing out new ones all work on the same sets, each step commented where it is.
pub(crate) fn renamer_for(batches: &[Value], expected: &Value, reverse: bool) -> Renamer {
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

pub(crate) fn rename(sc: &Scenario, reverse: bool) -> Variant {
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
