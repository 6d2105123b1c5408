//! The kube-prometheus alerting rules (PrometheusRule manifests of the reference copy)
//! turned into Prometheus rule files, every `for:` shortened to [`FOR`](super::FOR).

use super::*;

pub(crate) fn reference_rules() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/kube-prometheus"
    ))
}

// ---------------------------------------------------------------------------------------
// The rules: PrometheusRule manifests → Prometheus rule files
// ---------------------------------------------------------------------------------------

pub(crate) fn is_duration(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || "smhdwy".contains(c))
}

/// `spec.groups` of a PrometheusRule manifest as a Prometheus rule file. No YAML crate in
/// the workspace, and none needed: the manifests are kube-prometheus's generated YAML, where
/// `spec:` is the last top-level key, so its body one level less indented is `groups: …`.
pub(crate) fn rule_file(manifest: &str) -> String {
    let mut out = String::new();
    let mut in_spec = false;
    for line in manifest.lines() {
        if !in_spec {
            in_spec = line == "spec:";
            continue;
        }
        assert!(
            line.is_empty() || line.starts_with("  "),
            "a top-level key after spec: {line:?}"
        );
        let line = line.strip_prefix("  ").unwrap_or(line);
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let shortened = ["for", "keep_firing_for"].iter().find_map(|k| {
            let d = body.strip_prefix(k)?.strip_prefix(": ")?;
            (is_duration(d) && d != "0s").then(|| format!("{indent}{k}: {FOR}"))
        });
        out.push_str(shortened.as_deref().unwrap_or(line));
        out.push('\n');
    }
    assert!(in_spec, "no `spec:` in the manifest");
    out
}

pub(crate) fn count_alerts(yaml: &str) -> usize {
    yaml.lines()
        .filter(|l| l.trim_start().starts_with("- alert: "))
        .count()
}

/// Converts every manifest into `dir`, has promtool check them when it is installed, and
/// returns the number of alerting rules.
pub(crate) fn write_rules(dir: &Path) -> usize {
    let src = reference_rules();
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(&src)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the kube-prometheus rules are expected in shared/reference/ beside the checkout)",
                src.display()
            )
        })
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    manifests.sort();
    std::fs::create_dir_all(dir).expect("rules dir");
    let mut alerts = 0;
    let mut files = Vec::new();
    for m in &manifests {
        let text = std::fs::read_to_string(m).expect("read manifest");
        let converted = rule_file(&text);
        assert_eq!(count_alerts(&text), count_alerts(&converted), "{m:?}");
        alerts += count_alerts(&converted);
        let out = dir.join(m.file_name().expect("file name"));
        std::fs::write(&out, converted).expect("write rule file");
        files.push(out);
    }
    assert!(alerts > 0, "no alerting rules in {}", src.display());
    if let Some(promtool) = which("promtool") {
        let out = Command::new(promtool)
            .args(["check", "rules"])
            .args(&files)
            .output()
            .expect("run promtool");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "promtool refused the rule files:\n{text}"
        );
        // Lint findings are not errors: kube-prometheus records
        // code_verb:apiserver_request_total:increase1h from several rules.
        let lint: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| {
                !l.is_empty()
                    && !["Checking", "SUCCESS", "FAILED"]
                        .iter()
                        .any(|p| l.starts_with(p))
            })
            .collect();
        eprintln!(
            "promtool check rules: {} files valid; lint: {}",
            files.len(),
            if lint.is_empty() {
                "none".to_owned()
            } else {
                lint.join(" ")
            }
        );
    }
    alerts
}
