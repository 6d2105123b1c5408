//! Causal rules as data (`rules/default.toml`, format in docs/rules.md).
//!
//! Files are validated strictly on load: an unknown field is an error with its line and
//! column (from the TOML parser), and a bad value is an error naming the rule and the field.

use chrono::Duration;
use serde::Deserialize;

use super::signal::Symptom;
use crate::duration::parse_duration;

/// Where a rule's cause sits, relative to the incident's symptoms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// The workload (or pod, service) the symptoms are observed on.
    Subject,
    /// The node the symptoms happened on.
    Node,
    /// A Service named by the symptoms (no ready endpoints).
    Service,
    /// The destination callers fail to reach.
    Target,
    /// A ConfigMap or Secret used by the subject's pods that changed.
    Config,
    /// The cluster DNS workload (CoreDNS / kube-dns).
    Dns,
    /// The cluster's CNI daemon (aws-node, calico-node, cilium, ...), else the node.
    NetworkPlugin,
}

impl On {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "subject" => Self::Subject,
            "node" => Self::Node,
            "service" => Self::Service,
            "target" => Self::Target,
            "config" => Self::Config,
            "dns" => Self::Dns,
            "network_plugin" => Self::NetworkPlugin,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub cause: String,
    pub on: On,
    /// A change of this kind (`rollout`, `restart`, `config`, `node`, `scale`, `marker`) on the cause
    /// entity within `change_window` before the first symptom is required.
    pub change: Option<String>,
    pub change_window: Duration,
    pub symptoms: Vec<Symptom>,
    pub requires_any: Vec<Symptom>,
    pub excludes: Vec<Symptom>,
    pub message_contains: Vec<String>,
    pub min_subjects: usize,
    pub max_subjects: usize,
    pub confidence: f64,
    pub explain: String,
    pub mitigations: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    cause: String,
    on: String,
    #[serde(default)]
    change: Option<String>,
    #[serde(default)]
    change_window: Option<String>,
    symptoms: Vec<String>,
    #[serde(default)]
    requires_any: Vec<String>,
    #[serde(default)]
    excludes: Vec<String>,
    #[serde(default)]
    message_contains: Vec<String>,
    #[serde(default)]
    min_subjects: Option<usize>,
    #[serde(default)]
    max_subjects: Option<usize>,
    confidence: f64,
    explain: String,
    #[serde(default)]
    mitigations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {location}: {message}")]
pub struct RuleError {
    pub origin: String,
    /// `rule "name", field "x"` or `line L, column C`.
    pub location: String,
    pub message: String,
}

const CHANGE_KINDS: &[&str] = &["rollout", "restart", "config", "node", "scale", "marker"];

pub const DEFAULT_RULES: &str = include_str!("../../../../rules/default.toml");

/// The built-in rules (validated by a test, so this never fails at run time).
pub fn default_rules() -> Vec<Rule> {
    parse_rules(DEFAULT_RULES, "rules/default.toml").unwrap_or_default()
}

/// The longest `change_window` a rule may have.
pub const MAX_CHANGE_WINDOW_DAYS: i64 = 30;

/// Parse and validate a rule file.
///
/// Long because every check names the rule and the field it refuses, one after the
/// other, so an operator's mistake is reported precisely; the checks share no state.
pub fn parse_rules(text: &str, origin: &str) -> Result<Vec<Rule>, RuleError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let location = match e.span() {
            Some(span) => {
                // Back off to a char boundary: a span inside a multi-byte character must
                // not panic the loader.
                let mut at = span.start.min(text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                let upto = &text[..at];
                let line = upto.matches('\n').count() + 1;
                let col = upto.len() - upto.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("line {line}, column {col}")
            }
            None => "file".into(),
        };
        RuleError {
            origin: origin.into(),
            location,
            // The TOML parser gives no message for some bytes (a NUL in a comment, found
            // by fuzzing): say what to look for rather than print nothing.
            message: match e.message().trim() {
                "" => {
                    "not valid TOML here: look for a control character (e.g. NUL) or a broken line"
                        .to_owned()
                }
                m => m.to_owned(),
            },
        }
    })?;
    let mut out: Vec<Rule> = Vec::new();
    for r in raw.rule {
        let err = |field: &str, message: String| RuleError {
            origin: origin.into(),
            location: format!("rule {:?}, field {field:?}", r.name),
            message,
        };
        if r.name.trim().is_empty() {
            return Err(RuleError {
                origin: origin.into(),
                location: "a rule".into(),
                message: "field \"name\" must not be empty".into(),
            });
        }
        if out.iter().any(|o| o.name == r.name) {
            return Err(err(
                "name",
                "another rule in this file has the same name".into(),
            ));
        }
        if r.cause.is_empty()
            || !r
                .cause
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(err(
                "cause",
                format!("{:?} must be a name of a-z, 0-9 and _", r.cause),
            ));
        }
        let on = On::parse(&r.on).ok_or_else(|| {
            err(
                "on",
                format!(
                    "{:?} is not one of subject, node, service, target, config, dns",
                    r.on
                ),
            )
        })?;
        let symptoms = |field: &str, list: &[String]| -> Result<Vec<Symptom>, RuleError> {
            list.iter()
                .map(|s| {
                    Symptom::parse(s).ok_or_else(|| {
                        err(
                            field,
                            format!(
                                "unknown symptom {s:?}; known: {}",
                                Symptom::ALL.map(|x| x.as_str()).join(", ")
                            ),
                        )
                    })
                })
                .collect()
        };
        let syms = symptoms("symptoms", &r.symptoms)?;
        if syms.is_empty() {
            return Err(err("symptoms", "needs at least one symptom".into()));
        }
        let requires_any = symptoms("requires_any", &r.requires_any)?;
        let excludes = symptoms("excludes", &r.excludes)?;
        if let Some(c) = &r.change
            && !CHANGE_KINDS.contains(&c.as_str())
        {
            return Err(err(
                "change",
                format!("{c:?} is not one of {}", CHANGE_KINDS.join(", ")),
            ));
        }
        let change_window = match &r.change_window {
            None => Duration::minutes(30),
            Some(w) => parse_duration(w)
                .ok()
                .and_then(|d| Duration::from_std(d).ok())
                .filter(|d| *d > Duration::zero())
                .ok_or_else(|| {
                    err(
                        "change_window",
                        format!("{w:?} is not a duration like 30m or 2h"),
                    )
                })
                // Looked back from an incident's first symptom: a window past the calendar
                // would overflow there (found by fuzzing). Changes older than this are not
                // "what changed" anyway.
                .and_then(|d| {
                    if d > Duration::days(MAX_CHANGE_WINDOW_DAYS) {
                        Err(err(
                            "change_window",
                            format!("{w:?} is longer than {MAX_CHANGE_WINDOW_DAYS}d; use at most {MAX_CHANGE_WINDOW_DAYS}d"),
                        ))
                    } else {
                        Ok(d)
                    }
                })?,
        };
        if !(r.confidence > 0.0 && r.confidence <= 1.0) {
            return Err(err(
                "confidence",
                format!("{} must be in (0, 1]", r.confidence),
            ));
        }
        if let (Some(min), Some(max)) = (r.min_subjects, r.max_subjects)
            && max > 0
            && min > max
        {
            return Err(err(
                "min_subjects",
                format!("{min} is above max_subjects {max}"),
            ));
        }
        if r.explain.trim().is_empty() {
            return Err(err("explain", "must not be empty".into()));
        }
        out.push(Rule {
            name: r.name,
            cause: r.cause,
            on,
            change: r.change,
            change_window,
            symptoms: syms,
            requires_any,
            excludes,
            message_contains: r
                .message_contains
                .iter()
                .map(|m| m.to_ascii_lowercase())
                .collect(),
            min_subjects: r.min_subjects.unwrap_or(0),
            max_subjects: r.max_subjects.unwrap_or(0),
            confidence: r.confidence,
            explain: r.explain,
            mitigations: r.mitigations,
        });
    }
    Ok(out)
}

/// Built-in rules with the user's added; a user rule with a built-in's name replaces it.
pub fn merge(mut base: Vec<Rule>, extra: Vec<Rule>) -> Vec<Rule> {
    for r in extra {
        if let Some(slot) = base.iter_mut().find(|b| b.name == r.name) {
            *slot = r;
        } else {
            base.push(r);
        }
    }
    base
}

/// Fill `{placeholders}` from a list of pairs; unknown placeholders stay as written.
pub fn render(template: &str, vars: &[(&str, String)]) -> String {
    let mut out = template.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_byte_in_a_comment_is_refused_with_a_location_and_a_message() {
        // Found by fuzz/run.sh (rule_file): the TOML parser's own message was empty.
        let text = "# rules\n# data:\0add yours\n[[rule]]\nname = \"x\"\n";
        let e = parse_rules(text, "mine.toml").expect_err("NUL refused");
        assert_eq!(e.origin, "mine.toml");
        assert!(e.location.starts_with("line 2"), "{e:?}");
        assert!(!e.message.is_empty(), "{e:?}");
    }

    #[test]
    fn the_built_in_rules_are_valid() {
        let r = parse_rules(DEFAULT_RULES, "default").expect("valid built-in rules");
        assert!(r.len() >= 14);
        assert_eq!(default_rules().len(), r.len());
    }

    #[test]
    fn unknown_fields_are_errors_with_their_line() {
        let e = parse_rules(
            "[[rule]]\nname = \"x\"\ncause = \"c\"\non = \"subject\"\nsymptoms = [\"crash_loop\"]\nconfidence = 0.5\nexplain = \"e\"\nconfidense = 0.9\n",
            "mine.toml",
        )
        .expect_err("unknown field");
        assert!(e.to_string().contains("mine.toml"), "{e}");
        assert!(e.location.contains("line 8"), "{e}");
        assert!(e.message.contains("confidense"), "{e}");
    }

    fn one(field: &str, value: &str) -> String {
        let mut fields = vec![
            ("name", "\"r1\""),
            ("cause", "\"c\""),
            ("on", "\"subject\""),
            ("symptoms", "[\"crash_loop\"]"),
            ("confidence", "0.5"),
            ("explain", "\"e\""),
        ];
        if let Some(f) = fields.iter_mut().find(|(k, _)| *k == field) {
            f.1 = value;
        } else {
            fields.push((field, value));
        }
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        format!("[[rule]]\n{}\n", body.join("\n"))
    }

    #[test]
    fn bad_values_name_the_rule_and_the_field() {
        for (field, value, needle) in [
            ("on", "\"pod\"", "field \"on\""),
            (
                "symptoms",
                "[\"crashloop\"]",
                "unknown symptom \"crashloop\"",
            ),
            ("confidence", "1.5", "field \"confidence\""),
            ("change", "\"deploy\"", "field \"change\""),
            ("change_window", "\"soon\"", "field \"change_window\""),
            ("change_window", "\"100000000h\"", "longer than 30d"),
            ("cause", "\"Bad Rollout\"", "field \"cause\""),
            ("excludes", "[\"nope\"]", "field \"excludes\""),
        ] {
            let e = parse_rules(&one(field, value), "f.toml").expect_err(field);
            let text = e.to_string();
            assert!(text.contains("rule \"r1\""), "{text}");
            assert!(text.contains(needle), "{field}: {text}");
        }
        assert!(parse_rules(&one("symptoms", "[]"), "f").is_err());
    }

    #[test]
    fn user_rules_replace_by_name_and_add() {
        let user = parse_rules(
            &one("name", "\"bad-rollout\"").replace("confidence = 0.5", "confidence = 0.42"),
            "u",
        )
        .expect("valid");
        let merged = merge(default_rules(), user);
        let r = merged
            .iter()
            .find(|r| r.name == "bad-rollout")
            .expect("kept");
        assert!((r.confidence - 0.42).abs() < 1e-9);
        assert_eq!(merged.len(), default_rules().len());
    }
}
