//! The deploy artefacts (`deploy/`, `Dockerfile`) against the incident-response runbook.
//!
//! The runbook drives everything through fixed names: namespace `tapio-system`, Deployment
//! `tapio-server` (container `server`, `curl http://localhost:8080/health`), DaemonSet
//! `tapio-agent` (container `agent`), ConfigMap `tapio-config` with four keys, Secret
//! `tapio-auth`, `-l app=tapio-server`. These tests hold the plain manifests and the Helm
//! chart's rendering to those names, and both to least privilege. `deploy/validate.sh`
//! (schema validation against two Kubernetes versions, Helm lint and render, promtool) runs
//! here too, so the README's test command runs it in CI. YAML is read through that script
//! (PyYAML, which it installs with kubernetes-validate), so no YAML crate is needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

const NS: &str = "tapio-system";

fn root() -> PathBuf {
    tapio_testkit::repo_root()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

fn validate_sh(args: &[&str]) -> std::process::Output {
    let out = Command::new("bash")
        .arg(root().join("deploy/validate.sh"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run deploy/validate.sh");
    assert!(
        out.status.success(),
        "deploy/validate.sh {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every YAML document of `files`, as JSON.
fn yaml_docs(files: &[PathBuf]) -> Vec<Value> {
    let mut args = vec!["json".to_owned()];
    args.extend(files.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = validate_sh(&args);
    let v: Value = serde_json::from_slice(&out.stdout).expect("validate.sh json prints JSON");
    v.as_array().expect("a JSON array").clone()
}

fn plain() -> Vec<Value> {
    let dir = root().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/kubernetes")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in deploy/kubernetes");
    yaml_docs(&files)
}

/// The chart rendered by Helm's engine (through deploy/validate.sh) with `values`.
fn helm(values: Value) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("render");
    validate_sh(&["render", &out.display().to_string(), &values.to_string()]);
    let mut files = vec![out.join("objects.yaml")];
    if std::fs::metadata(out.join("prometheusrule.yaml")).is_ok_and(|m| m.len() > 0) {
        files.push(out.join("prometheusrule.yaml"));
    }
    yaml_docs(&files)
}

/// Both ways of installing Tapio: the plain manifests and the chart with its defaults.
fn both() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        ("deploy/kubernetes", plain()),
        ("helm defaults", helm(json!({}))),
    ]
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {ptr} in {v}"))
}

fn arr<'a>(v: &'a Value, ptr: &str) -> &'a Vec<Value> {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no array at {ptr} in {v}"))
}

fn strings(v: &Value, ptr: &str) -> BTreeSet<String> {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().expect("string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| {
            let have: Vec<String> = docs
                .iter()
                .map(|d| format!("{}/{}", d["kind"], d["metadata"]["name"]))
                .collect();
            panic!("no {kind} {name}; have {have:?}")
        })
}

fn container<'a>(workload: &'a Value, name: &str) -> &'a Value {
    let cs = arr(workload, "/spec/template/spec/containers");
    assert_eq!(
        cs.len(),
        1,
        "{}: exactly one container",
        workload["metadata"]["name"]
    );
    assert_eq!(cs[0]["name"], name, "container name (the runbook's)");
    &cs[0]
}

fn volume<'a>(workload: &'a Value, name: &str) -> &'a Value {
    arr(workload, "/spec/template/spec/volumes")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no volume {name}"))
}

fn mount<'a>(c: &'a Value, path: &str) -> &'a Value {
    arr(c, "/volumeMounts")
        .iter()
        .find(|m| m["mountPath"] == path)
        .unwrap_or_else(|| panic!("nothing mounted at {path} in {}", c["name"]))
}

#[test]
fn validate_sh_passes() {
    let out = validate_sh(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    assert!(stdout.contains("checks ok"), "{stdout}");
    for must in [
        "kubernetes-validate --strict -k 1.30.0",
        "kubernetes-validate --strict -k 1.33.0",
        "helm lint --strict",
        "(default values)",
        "promtool check rules",
        "promtool test rules",
    ] {
        assert!(stdout.contains(must), "validate.sh did not run {must:?}");
    }
}

#[test]
fn exactly_the_runbook_objects_with_fixed_names() {
    let want: BTreeSet<(String, String, String)> = [
        ("Namespace", "tapio-system", ""),
        ("ServiceAccount", "tapio-server", NS),
        ("ServiceAccount", "tapio-agent", NS),
        ("ClusterRole", "tapio-server", ""),
        ("ClusterRoleBinding", "tapio-server", ""),
        ("ConfigMap", "tapio-config", NS),
        ("Secret", "tapio-auth", NS),
        ("PersistentVolumeClaim", "tapio-server-data", NS),
        ("Deployment", "tapio-server", NS),
        ("Service", "tapio-server", NS),
        ("PodDisruptionBudget", "tapio-server", NS),
        ("DaemonSet", "tapio-agent", NS),
        ("NetworkPolicy", "tapio-server", NS),
        ("NetworkPolicy", "tapio-agent", NS),
    ]
    .iter()
    .map(|(k, n, ns)| ((*k).to_owned(), (*n).to_owned(), (*ns).to_owned()))
    .collect();
    for (what, docs) in both() {
        let have: BTreeSet<(String, String, String)> = docs
            .iter()
            .map(|d| {
                (
                    d["kind"].as_str().unwrap_or_default().to_owned(),
                    d["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    d["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect();
        assert_eq!(have, want, "{what}");
        assert_eq!(have.len(), docs.len(), "{what}: an object appears twice");
        // The agent's hostPID and host mounts need the "privileged" Pod Security level.
        let ns = find(&docs, "Namespace", NS);
        assert_eq!(
            s(ns, "/metadata/labels/pod-security.kubernetes.io~1enforce"),
            "privileged",
            "{what}"
        );
    }
}

#[test]
fn server_deployment_is_what_the_runbook_uses() {
    // The flags are declared with the wiring (`topology::Args`).
    let server_main = read("crates/tapio-server/src/topology.rs");
    for (what, docs) in both() {
        let d = find(&docs, "Deployment", "tapio-server");
        // `kubectl logs -l app=tapio-server`: the pods carry that label, the selector uses it.
        assert_eq!(s(d, "/spec/selector/matchLabels/app"), "tapio-server");
        assert_eq!(s(d, "/spec/template/metadata/labels/app"), "tapio-server");
        assert!(
            d["spec"]["revisionHistoryLimit"].as_u64().unwrap_or(0) >= 2,
            "{what}: `kubectl rollout undo` needs a previous revision"
        );
        let c = container(d, "server");
        let ports = arr(c, "/ports");
        assert_eq!(ports.len(), 1, "{what}");
        assert_eq!(ports[0]["containerPort"], 8080, "{what}");
        assert_eq!(ports[0]["name"], "http", "{what}");
        assert_eq!(s(c, "/livenessProbe/httpGet/path"), "/health", "{what}");
        assert_eq!(s(c, "/readinessProbe/httpGet/path"), "/ready", "{what}");
        for p in ["livenessProbe", "readinessProbe"] {
            assert_eq!(c[p]["httpGet"]["port"], "http", "{what}: {p}");
        }
        for kind in ["requests", "limits"] {
            for r in ["cpu", "memory"] {
                assert!(
                    c["resources"][kind][r].is_string(),
                    "{what}: resources.{kind}.{r}"
                );
            }
        }
        // Non-root, read-only root filesystem, nothing extra.
        let pod_sc = &d["spec"]["template"]["spec"]["securityContext"];
        assert_eq!(pod_sc["runAsNonRoot"], true, "{what}");
        assert_ne!(pod_sc["runAsUser"], 0, "{what}");
        assert_eq!(pod_sc["seccompProfile"]["type"], "RuntimeDefault", "{what}");
        let sc = &c["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true, "{what}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
        assert_eq!(strings(sc, "/capabilities/drop"), ["ALL".to_owned()].into());
        assert!(sc["capabilities"]["add"].is_null(), "{what}: no capability");
        assert_ne!(sc["privileged"], true, "{what}");
        // Every flag is one the server has, and the directories are the mounted ones.
        let args = strings(c, "/args");
        for a in &args {
            let flag = a
                .trim_start_matches("--")
                .split('=')
                .next()
                .expect("flag")
                .replace('-', "_");
            assert!(
                server_main.contains(&format!("    pub {flag}: ")),
                "{what}: tapio-server has no flag {a}"
            );
        }
        assert!(args.contains("--listen=0.0.0.0:8080"), "{what}");
        assert!(args.contains("--config-dir=/etc/tapio/config"), "{what}");
        assert!(args.contains("--data-dir=/var/lib/tapio"), "{what}");
        assert!(
            args.contains("--auth-dir=/etc/tapio/auth"),
            "{what}: the API must need tokens from tapio-auth"
        );
        // ConfigMap as files without subPath (updates must reach them), Secret mounted.
        let cfg = mount(c, "/etc/tapio/config");
        assert!(
            cfg["subPath"].is_null(),
            "{what}: subPath stops live updates"
        );
        assert_eq!(
            s(volume(d, s(cfg, "/name")), "/configMap/name"),
            "tapio-config"
        );
        let auth = mount(c, "/etc/tapio/auth");
        assert_eq!(auth["readOnly"], true, "{what}");
        assert_eq!(
            s(volume(d, s(auth, "/name")), "/secret/secretName"),
            "tapio-auth"
        );
        let data = mount(c, "/var/lib/tapio");
        assert_ne!(data["readOnly"], true, "{what}: the store must be writable");
        assert_eq!(
            s(
                volume(d, s(data, "/name")),
                "/persistentVolumeClaim/claimName"
            ),
            "tapio-server-data"
        );
        // Recreate: one SQLite writer; the volume is ReadWriteOnce.
        assert_eq!(s(d, "/spec/strategy/type"), "Recreate", "{what}");
        assert_eq!(
            s(d, "/spec/template/spec/serviceAccountName"),
            "tapio-server"
        );

        let svc = find(&docs, "Service", "tapio-server");
        assert_eq!(s(svc, "/spec/selector/app"), "tapio-server", "{what}");
        let sp = arr(svc, "/spec/ports");
        assert_eq!(sp.len(), 1, "{what}");
        assert_eq!(sp[0]["port"], 8080, "{what}");
        assert_eq!(sp[0]["targetPort"], "http", "{what}");

        let pdb = find(&docs, "PodDisruptionBudget", "tapio-server");
        assert_eq!(
            s(pdb, "/spec/selector/matchLabels/app"),
            "tapio-server",
            "{what}"
        );
        assert!(
            pdb["spec"]["maxUnavailable"].as_u64().unwrap_or(0) >= 1,
            "{what}: a single replica must not block node drains"
        );
    }
}

#[test]
fn configmap_holds_exactly_the_four_runtime_keys_with_valid_defaults() {
    use tapio_core::config::{KEYS, RuntimeConfig};
    let runbook: BTreeSet<&str> = [
        "log-level",
        "load-shedding-enabled",
        "correlation-depth",
        "audit-level",
    ]
    .into();
    assert_eq!(KEYS.iter().copied().collect::<BTreeSet<_>>(), runbook);
    for (what, docs) in both() {
        let cm = find(&docs, "ConfigMap", "tapio-config");
        let data = cm["data"].as_object().expect("data");
        assert_eq!(
            data.keys().map(String::as_str).collect::<BTreeSet<_>>(),
            runbook,
            "{what}"
        );
        assert!(cm["binaryData"].is_null(), "{what}");
        let mut c = RuntimeConfig::default();
        for (k, v) in data {
            c.apply(k, v.as_str().expect("string value"))
                .unwrap_or_else(|e| panic!("{what}: {k}={v}: {e:?}"));
        }
        assert_eq!(c, RuntimeConfig::default(), "{what}: ships the defaults");
    }
}

#[test]
fn auth_secret_ships_no_user_and_helm_values_make_valid_user_files() {
    for (what, docs) in both() {
        let sec = find(&docs, "Secret", "tapio-auth");
        assert_eq!(sec["type"], "Opaque", "{what}");
        assert!(
            sec["data"].is_null() && sec["stringData"].is_null(),
            "{what}: no token may be committed"
        );
    }
    let digest = tapio_core::auth::hex(&tapio_core::auth::hash_token("alice-token"));
    let docs = helm(json!({"auth": {
        "users": {"alice": {"role": "admin", "tokenSha256": digest}},
        "agentToken": "agent-token",
    }}));
    let sec = find(&docs, "Secret", "tapio-auth");
    // Each value is a file the server accepts, and the agent finds its token in its own.
    let alice = tapio_core::auth::parse_user("alice", s(sec, "/stringData/alice"))
        .expect("alice's entry parses");
    assert_eq!(alice.role, tapio_core::auth::Role::Admin);
    assert!(alice.token_matches("alice-token"));
    let agent_file = s(sec, "/stringData/tapio-agent");
    let agent = tapio_core::auth::parse_user("tapio-agent", agent_file).expect("agent entry");
    assert_eq!(agent.role, tapio_core::auth::Role::Agent);
    assert_eq!(
        tapio_core::auth::agent_token(agent_file).as_deref(),
        Some("agent-token")
    );
}

#[test]
fn the_agent_mounts_only_its_own_token() {
    let agent_main = read("crates/tapio-agent/src/main.rs");
    assert!(
        agent_main.contains("    token_file: "),
        "the agent has --token-file"
    );
    for (what, docs) in both() {
        let ds = find(&docs, "DaemonSet", "tapio-agent");
        let c = container(ds, "agent");
        let args = strings(c, "/args");
        assert!(
            args.contains("--token-file=/etc/tapio/agent-auth/token"),
            "{what}: {args:?}"
        );
        let m = mount(c, "/etc/tapio/agent-auth");
        assert_eq!(m["readOnly"], true, "{what}");
        let v = volume(ds, s(m, "/name"));
        assert_eq!(s(v, "/secret/secretName"), "tapio-auth", "{what}");
        assert_eq!(
            v["secret"]["items"],
            json!([{"key": "tapio-agent", "path": "token"}]),
            "{what}: people's entries must not reach the nodes"
        );
    }
}

#[test]
fn agent_daemonset_has_only_what_ebpf_needs() {
    let agent_main = read("crates/tapio-agent/src/main.rs");
    for (what, docs) in both() {
        let ds = find(&docs, "DaemonSet", "tapio-agent");
        assert_eq!(s(ds, "/spec/selector/matchLabels/app"), "tapio-agent");
        let spec = &ds["spec"]["template"]["spec"];
        assert_eq!(spec["hostPID"], true, "{what}: BPF reports host pids");
        assert_ne!(spec["hostNetwork"], true, "{what}");
        assert_ne!(spec["hostIPC"], true, "{what}");
        assert_eq!(spec["automountServiceAccountToken"], false, "{what}");
        assert_eq!(
            s(ds, "/spec/template/spec/serviceAccountName"),
            "tapio-agent"
        );
        assert!(
            arr(ds, "/spec/template/spec/tolerations")
                .iter()
                .any(|t| t["operator"] == "Exists" && t["key"].is_null()),
            "{what}: must run on every node"
        );
        let c = container(ds, "agent");
        let sc = &c["securityContext"];
        assert_ne!(sc["privileged"], true, "{what}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
        assert_eq!(strings(sc, "/capabilities/drop"), ["ALL".to_owned()].into());
        let add = strings(sc, "/capabilities/add");
        let want: BTreeSet<String> = ["BPF", "PERFMON", "SYSLOG"]
            .iter()
            .map(|x| (*x).to_owned())
            .collect();
        assert_eq!(add, want, "{what}: capabilities");
        // Where it ships, and who it says it is.
        let env = arr(c, "/env");
        let var = |n: &str| {
            env.iter()
                .find(|e| e["name"] == n)
                .unwrap_or_else(|| panic!("{what}: no env {n}"))
        };
        assert_eq!(
            var("TAPIO_SERVER")["value"],
            "http://tapio-server.tapio-system:8080"
        );
        assert_eq!(
            var("NODE_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
            "spec.nodeName"
        );
        for a in strings(c, "/args") {
            let flag = a
                .trim_start_matches("--")
                .split('=')
                .next()
                .expect("flag")
                .replace('-', "_");
            assert!(
                agent_main.contains(&format!("    {flag}: ")),
                "{what}: tapio-agent has no flag {a}"
            );
        }
        assert_eq!(arr(c, "/ports")[0]["containerPort"], 9091, "{what}");
        for p in ["livenessProbe", "readinessProbe"] {
            assert!(c[p]["httpGet"]["path"].is_string(), "{what}: {p}");
        }
        for kind in ["requests", "limits"] {
            assert!(c["resources"][kind]["memory"].is_string(), "{what}");
        }
        // Host mounts: read-only, except the spool.
        let expect: BTreeMap<&str, (&str, bool)> = [
            ("/sys/kernel/btf", ("/sys/kernel/btf", true)),
            ("/host/sys/fs/cgroup", ("/sys/fs/cgroup", true)),
            ("/dev/kmsg", ("/dev/kmsg", true)),
            (
                "/var/lib/tapio-agent/spool",
                ("/var/lib/tapio-agent/spool", false),
            ),
        ]
        .into();
        // Besides the host, only the agent's own token (the_agent_mounts_only_its_own_token).
        let mounts: Vec<&Value> = arr(c, "/volumeMounts")
            .iter()
            .filter(|m| m["mountPath"] != "/etc/tapio/agent-auth")
            .collect();
        assert_eq!(mounts.len(), expect.len(), "{what}: {mounts:?}");
        assert_eq!(arr(c, "/volumeMounts").len(), expect.len() + 1, "{what}");
        for m in mounts {
            let at = s(m, "/mountPath");
            let (host, ro) = expect
                .get(at)
                .unwrap_or_else(|| panic!("{what}: unexpected mount {at}"));
            let v = volume(ds, s(m, "/name"));
            assert_eq!(s(v, "/hostPath/path"), *host, "{what}: {at}");
            assert_eq!(m["readOnly"] == true, *ro, "{what}: {at} read-only");
        }
        assert!(
            agent_main.contains("default_value = \"/var/lib/tapio-agent/spool\""),
            "the spool mount is the agent's default spool directory"
        );
    }
}

#[test]
fn rbac_is_read_only_and_never_reads_secrets() {
    const WRITE: [&str; 8] = [
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
        "escalate",
        "bind",
        "impersonate",
    ];
    let watched: [(&str, &str); 11] = [
        ("", "nodes"),
        ("", "pods"),
        ("", "services"),
        ("", "configmaps"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("batch", "jobs"),
        ("discovery.k8s.io", "endpointslices"),
        ("events.k8s.io", "events"),
    ];
    let mut cases = both();
    cases.push((
        "helm rbac.secretMetadata=true",
        helm(json!({"rbac": {"secretMetadata": true}})),
    ));
    for (what, docs) in cases {
        let roles: Vec<&Value> = docs
            .iter()
            .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
            .collect();
        assert_eq!(roles.len(), 1, "{what}: only the server has a role");
        let mut granted = BTreeSet::new();
        let mut secret_verbs = BTreeSet::new();
        for rule in arr(roles[0], "/rules") {
            assert!(rule["nonResourceURLs"].is_null(), "{what}");
            assert!(rule["resourceNames"].is_null(), "{what}");
            let verbs = strings(rule, "/verbs");
            for v in &verbs {
                assert!(
                    !WRITE.contains(&v.as_str()) && v != "*",
                    "{what}: verb {v} in {rule}"
                );
                assert!(
                    ["get", "list", "watch"].contains(&v.as_str()),
                    "{what}: {v}"
                );
            }
            for g in strings(rule, "/apiGroups") {
                for r in strings(rule, "/resources") {
                    assert!(g != "*" && r != "*", "{what}: wildcard in {rule}");
                    assert!(!r.contains('/'), "{what}: subresource {r}");
                    if g.is_empty() && r == "secrets" {
                        secret_verbs.extend(verbs.iter().cloned());
                    }
                    granted.insert((g.clone(), r, verbs.clone()));
                }
            }
        }
        assert!(!secret_verbs.contains("get"), "{what}: no secret get");
        if what.contains("secretMetadata") {
            assert_eq!(
                secret_verbs,
                ["list".to_owned(), "watch".to_owned()].into(),
                "{what}"
            );
        } else {
            assert!(secret_verbs.is_empty(), "{what}: no Secret access");
        }
        for (g, r) in watched {
            assert!(
                granted.iter().any(|(gg, rr, v)| gg == g
                    && rr == r
                    && v.contains("list")
                    && v.contains("watch")),
                "{what}: the server must watch {g}/{r}"
            );
        }
        let bindings: Vec<&Value> = docs
            .iter()
            .filter(|d| d["kind"] == "ClusterRoleBinding" || d["kind"] == "RoleBinding")
            .collect();
        assert_eq!(bindings.len(), 1, "{what}");
        let subjects = arr(bindings[0], "/subjects");
        assert_eq!(
            subjects,
            &vec![json!({"kind": "ServiceAccount", "name": "tapio-server", "namespace": NS})],
            "{what}: only the server's account is bound"
        );
    }
}

#[test]
fn network_policies_let_agents_and_scrapers_reach_the_server() {
    for (what, docs) in both() {
        let server = find(&docs, "NetworkPolicy", "tapio-server");
        assert_eq!(
            s(server, "/spec/podSelector/matchLabels/app"),
            "tapio-server"
        );
        assert_eq!(
            strings(server, "/spec/policyTypes"),
            ["Egress".to_owned(), "Ingress".to_owned()].into()
        );
        let ingress = arr(server, "/spec/ingress");
        assert!(
            ingress.iter().any(|r| {
                r["ports"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["port"] == 8080))
            }),
            "{what}: 8080 must be reachable"
        );
        let egress_ports: BTreeSet<u64> = arr(server, "/spec/egress")
            .iter()
            .flat_map(|r| r["ports"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p["port"].as_u64())
            .collect();
        for p in [53, 443, 6443] {
            assert!(egress_ports.contains(&p), "{what}: server egress {p}");
        }
        let agent = find(&docs, "NetworkPolicy", "tapio-agent");
        assert_eq!(s(agent, "/spec/podSelector/matchLabels/app"), "tapio-agent");
        assert!(
            arr(agent, "/spec/egress").iter().any(|r| {
                r["to"].as_array().is_some_and(|to| {
                    to.iter()
                        .any(|t| t["podSelector"]["matchLabels"]["app"] == "tapio-server")
                }) && r["ports"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["port"] == 8080))
            }),
            "{what}: the agent must reach tapio-server:8080"
        );
    }
}

/// Drops what Helm adds (its labels) so the two ways can be compared object by object.
fn comparable(mut d: Value) -> Value {
    if let Some(m) = d.as_object_mut() {
        m.remove("metadata");
    }
    if let Some(t) = d
        .pointer_mut("/spec/template/metadata")
        .and_then(Value::as_object_mut)
    {
        t.remove("labels");
    }
    d
}

#[test]
fn helm_defaults_render_the_plain_manifests() {
    let plain = plain();
    let helm = helm(json!({}));
    assert_eq!(plain.len(), helm.len());
    for p in &plain {
        let kind = s(p, "/kind");
        let name = s(p, "/metadata/name");
        let h = find(&helm, kind, name);
        assert_eq!(
            p["metadata"]["namespace"], h["metadata"]["namespace"],
            "{kind} {name}"
        );
        assert_eq!(
            comparable(p.clone()),
            comparable(h.clone()),
            "{kind} {name}: helm (right) differs from deploy/kubernetes (left)"
        );
        // Same selector labels, so either way can take over from the other.
        if let Some(l) = p.pointer("/metadata/labels/app") {
            assert_eq!(Some(l), h.pointer("/metadata/labels/app"), "{kind} {name}");
        }
        if let Some(l) = p.pointer("/spec/template/metadata/labels/app") {
            assert_eq!(
                Some(l),
                h.pointer("/spec/template/metadata/labels/app"),
                "{kind} {name}"
            );
        }
    }
}

#[test]
fn production_directory_is_the_normal_state() {
    // The runbook restores normal limits with `kubectl apply -f deploy/kubernetes/production/`.
    let base = root().join("deploy/kubernetes");
    for e in std::fs::read_dir(&base).expect("deploy/kubernetes") {
        let p = e.expect("entry").path();
        if p.extension().is_none_or(|x| x != "yaml") {
            continue;
        }
        let name = p.file_name().expect("name");
        let link = base.join("production").join(name);
        let target = std::fs::read_link(&link)
            .unwrap_or_else(|e| panic!("{} is not a link: {e}", link.display()));
        assert_eq!(target, Path::new("..").join(name));
    }
}

/// Metric names registered in a crate's metrics module (`registry.register("name", …)`).
fn registered(src: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = src;
    while let Some(i) = rest.find(".register(") {
        rest = &rest[i + ".register(".len()..];
        let Some(q) = rest.find('"') else { break };
        let after = &rest[q + 1..];
        let end = after.find('"').expect("closing quote");
        names.insert(format!("{prefix}{}", &after[..end]));
    }
    names
}

fn metric_tokens(text: &str) -> BTreeSet<String> {
    let b = text.as_bytes();
    let mut out = BTreeSet::new();
    let mut i = 0;
    while let Some(off) = text[i..].find("tapio_") {
        let start = i + off;
        let prev_ok = start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        if prev_ok {
            out.insert(text[start..end].to_owned());
        }
        i = end;
    }
    out
}

#[test]
fn alerts_and_dashboard_use_metrics_tapio_exports() {
    let mut known = registered(&read("crates/tapio-server/src/metrics.rs"), "tapio_");
    known.extend(registered(
        &read("crates/tapio-agent/src/metrics.rs"),
        "tapio_agent_",
    ));
    assert!(known.contains("tapio_queue_depth"), "{known:?}");
    let alerts = read("deploy/monitoring/tapio-alerts.yaml");
    let dashboard = read("deploy/monitoring/grafana-dashboard.json");
    let mut used = BTreeSet::new();
    for (file, text) in [
        ("tapio-alerts.yaml", &alerts),
        ("grafana-dashboard.json", &dashboard),
    ] {
        for t in metric_tokens(text) {
            let base = ["_total", "_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suf| t.strip_suffix(suf).filter(|b| known.contains(*b)))
                .unwrap_or(&t)
                .to_owned();
            assert!(known.contains(&base), "{file}: {t} is not a Tapio metric");
            used.insert(base);
        }
    }
    // The signals an operator must be paged or warned on.
    for m in [
        "tapio_events_dropped",
        "tapio_queue_depth",
        "tapio_notifications",
        "tapio_agent_sequence_gaps",
        "tapio_http_requests",
        "tapio_agent_dropped_events",
    ] {
        assert!(used.contains(m), "no alert or panel uses {m}");
    }
    let rules = yaml_docs(&[root().join("deploy/monitoring/tapio-alerts.yaml")]);
    let exprs: Vec<String> = rules[0]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            assert!(
                r["labels"]["severity"].is_string(),
                "{}: severity",
                r["alert"]
            );
            assert!(r["annotations"]["summary"].is_string(), "{}", r["alert"]);
            r["expr"].as_str().expect("expr").to_owned()
        })
        .collect();
    assert!(
        exprs
            .iter()
            .any(|e| e.contains("tapio_notifications_total{result=\"failed\"}"))
    );
    assert!(exprs.iter().any(|e| e.contains("up{job=\"tapio-server\"}")));
    let dash: Value = serde_json::from_str(&dashboard).expect("dashboard JSON");
    assert_eq!(dash["uid"], "tapio-overview");
}

#[test]
fn dockerfile_builds_all_three_binaries_and_runs_the_server_as_non_root() {
    let df = read("Dockerfile");
    assert!(
        df.matches("\nFROM ").count() + usize::from(df.starts_with("FROM ")) >= 2,
        "multi-stage"
    );
    assert!(df.contains("-p tapio-server -p tapio-agent -p tapio-cli"));
    assert!(df.contains("--locked"));
    for bin in ["tapio-server", "tapio-agent", "tapio"] {
        assert!(
            df.contains(&format!("target/release/{bin} "))
                || df.contains(&format!("target/release/{bin}\n")),
            "{bin} is copied out of the build"
        );
    }
    let user = df
        .lines()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert!(!user.contains(" root") && !user.contains(" 0"), "{user}");
    assert!(
        df.contains("curl"),
        "the runbook curls /health inside the pod"
    );
    // The manifests run what the image installs.
    for (what, docs) in both() {
        let cmd = |kind: &str, name: &str, c: &str| {
            let w = find(&docs, kind, name);
            strings(container(w, c), "/command")
                .into_iter()
                .next()
                .expect("command")
        };
        assert_eq!(
            cmd("Deployment", "tapio-server", "server"),
            "/usr/local/bin/tapio-server",
            "{what}"
        );
        assert_eq!(
            cmd("DaemonSet", "tapio-agent", "agent"),
            "/usr/local/bin/tapio-agent",
            "{what}"
        );
    }
    assert!(df.contains("/usr/local/bin/"));
    let ignore = read(".dockerignore");
    let ignored: BTreeSet<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(ignored.contains("target/"));
    for needed in ["crates/", "rules/", "Cargo.toml", "Cargo.lock"] {
        assert!(
            !ignored
                .iter()
                .any(|i| needed.starts_with(i.trim_end_matches('/'))),
            "{needed} is needed by the build"
        );
    }
}

#[test]
fn helm_values_turn_prometheus_on_as_a_data_source() {
    let docs = helm(
        json!({"server": {"prometheus": {"url": "http://prometheus-k8s.monitoring.svc:9090", "interval": "15s"}}}),
    );
    let server = find(&docs, "Deployment", "tapio-server");
    let args = strings(container(server, "server"), "/args");
    assert!(
        args.contains("--prometheus-url=http://prometheus-k8s.monitoring.svc:9090"),
        "{args:?}"
    );
    assert!(args.contains("--prometheus-interval=15s"), "{args:?}");
    // Off by default.
    let docs = helm(json!({}));
    let args = strings(
        container(find(&docs, "Deployment", "tapio-server"), "server"),
        "/args",
    );
    assert!(
        !args.iter().any(|a| a.starts_with("--prometheus")),
        "{args:?}"
    );
}
