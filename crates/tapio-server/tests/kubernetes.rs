//! Live Kubernetes watches against a fake API server started by the test, serving real
//! Kubernetes JSON: lists, watch streams, a 410 Gone mid-stream, a bookmark and a
//! throttling 429. Asserts the watcher's state and that relists duplicate no evidence,
//! and that a crash-looping rollout seen live gives the same incident as its replay file.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tapio_testkit::Server;

/// One step of a watch stream.
#[derive(Clone, Debug)]
enum Step {
    /// `{"type": ..., "object": ...}`
    Event(&'static str, Value),
    Bookmark(&'static str, String),
    /// An ERROR event with a 410 Status, then the stream ends (the client must relist).
    Gone,
    /// The server closes the stream normally (watch timeout): the client re-watches from
    /// the last resourceVersion it saw (a bookmark's included).
    End,
    Delay(u64),
}

/// What one watch request gets.
#[derive(Clone, Debug)]
enum Watch {
    /// HTTP 429 with Retry-After: the API server's throttling.
    TooManyRequests,
    /// These steps, then the stream stays open.
    Stream(Vec<Step>),
}

#[derive(Default)]
struct Fake {
    /// Successive list answers per path; the last one repeats.
    lists: HashMap<String, VecDeque<Value>>,
    watches: HashMap<String, VecDeque<Watch>>,
    /// "LIST /api/v1/pods" / "WATCH /api/v1/pods rv=…"
    log: Vec<String>,
    /// Paths the service account may not read (403).
    forbidden: Vec<String>,
}

type Shared = Arc<Mutex<Fake>>;

fn path_of(kind: &str) -> &'static str {
    match kind {
        "Node" => "/api/v1/nodes",
        "Pod" => "/api/v1/pods",
        "Service" => "/api/v1/services",
        "ConfigMap" => "/api/v1/configmaps",
        "Secret" => "/api/v1/secrets",
        "Deployment" => "/apis/apps/v1/deployments",
        "ReplicaSet" => "/apis/apps/v1/replicasets",
        "StatefulSet" => "/apis/apps/v1/statefulsets",
        "DaemonSet" => "/apis/apps/v1/daemonsets",
        "Job" => "/apis/batch/v1/jobs",
        "EndpointSlice" => "/apis/discovery.k8s.io/v1/endpointslices",
        "Event" => "/apis/events.k8s.io/v1/events",
        other => panic!("no path for {other}"),
    }
}

fn list(kind: &str, api_version: &str, rv: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": api_version, "kind": format!("{kind}List"),
           "metadata": {"resourceVersion": rv}, "items": items})
}

async fn handle(State(fake): State<Shared>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let is_watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let mut f = fake.lock().expect("lock");
    if f.forbidden.contains(&path) {
        f.log.push(format!("FORBIDDEN {path}"));
        return (
            StatusCode::FORBIDDEN,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
                   "message": format!("secrets is forbidden: User \"system:serviceaccount:tapio-system:tapio-server\" cannot list resource at {path}")})
            .to_string(),
        )
            .into_response();
    }
    if !is_watch {
        f.log.push(format!("LIST {path}"));
        let body = match f.lists.get_mut(&path) {
            Some(q) if q.len() > 1 => q.pop_front(),
            Some(q) => q.front().cloned(),
            None => None,
        }
        .unwrap_or_else(|| list("", "v1", "1", Vec::new()));
        return (
            [("content-type", HeaderValue::from_static("application/json"))],
            body.to_string(),
        )
            .into_response();
    }
    let rv = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("resourceVersion="))
        .unwrap_or("")
        .to_owned();
    f.log.push(format!("WATCH {path} rv={rv}"));
    let script = f.watches.get_mut(&path).and_then(VecDeque::pop_front);
    drop(f);
    match script {
        Some(Watch::TooManyRequests) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", HeaderValue::from_static("1"))],
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "reason": "TooManyRequests", "code": 429, "message": "slow down"})
            .to_string(),
        )
            .into_response(),
        Some(Watch::Stream(steps)) => {
            let stream = futures_util::stream::unfold(
                (steps.into_iter(), false),
                |(mut it, ended)| async move {
                    if ended {
                        return None;
                    }
                    loop {
                        match it.next() {
                            None => {
                                // Stay open, like a quiet watch.
                                std::future::pending::<()>().await;
                            }
                            Some(Step::End) => return None,
                            Some(Step::Delay(ms)) => {
                                tokio::time::sleep(Duration::from_millis(ms)).await;
                            }
                            Some(Step::Event(t, o)) => {
                                let line = format!("{}\n", json!({"type": t, "object": o}));
                                return Some((Ok::<_, std::io::Error>(line), (it, false)));
                            }
                            Some(Step::Bookmark(kind, rv)) => {
                                let line = format!(
                                    "{}\n",
                                    json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": "v1",
                                           "metadata": {"resourceVersion": rv}}})
                                );
                                return Some((Ok(line), (it, false)));
                            }
                            Some(Step::Gone) => {
                                let line = format!(
                                    "{}\n",
                                    json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                                           "metadata": {}, "status": "Failure",
                                           "message": "too old resource version", "reason": "Expired", "code": 410}})
                                );
                                return Some((Ok(line), (it, true)));
                            }
                        }
                    }
                },
            );
            (
                [("content-type", HeaderValue::from_static("application/json"))],
                Body::from_stream(stream),
            )
                .into_response()
        }
        None => {
            // Nothing scripted: an open, quiet watch.
            let stream = futures_util::stream::pending::<Result<String, std::io::Error>>();
            (
                [("content-type", HeaderValue::from_static("application/json"))],
                Body::from_stream(stream),
            )
                .into_response()
        }
    }
}

/// Start the fake API server; returns its port. It lives as long as the test process.
fn start_fake(fake: Shared) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let app = axum::Router::new().fallback(handle).with_state(fake);
            axum::serve(listener, app).await.expect("serve");
        });
    });
    port
}

fn kubeconfig(dir: &std::path::Path, port: u16) -> String {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{port}\nusers:\n- name: tester\n  user: {{}}\ncontexts:\n- name: fake-ctx\n  context:\n    cluster: fake\n    user: tester\ncurrent-context: fake-ctx\n"
        ),
    )
    .expect("write kubeconfig");
    path.display().to_string()
}

fn pod(name: &str, uid: &str, rv: &str, phase: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "shop", "uid": uid, "resourceVersion": rv,
                        "managedFields": [{"manager": "kubelet", "operation": "Update"}]},
           "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "shop/app:1"}]},
           "status": {"phase": phase}})
}

/// Stored `kubernetes.watch.*` evidence for `kind`: (verb, name, resourceVersion).
fn watch_evidence(s: &Server, kind: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = s.get_json(&format!("/api/v1/evidence?after={after}&limit=5000"));
        let rows = page["evidence"].as_array().cloned().unwrap_or_default();
        if rows.is_empty() {
            return out;
        }
        for r in &rows {
            let e = &r["event"];
            if e["object"]["kind"] == kind {
                out.push((
                    e["type"]
                        .as_str()
                        .unwrap_or("")
                        .trim_start_matches("kubernetes.watch.")
                        .to_owned(),
                    e["object"]["metadata"]["name"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                    e["object"]["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                ));
            }
        }
        after = page["next"].as_i64().expect("next");
    }
}

#[test]
fn relists_after_410_bookmarks_and_429_send_each_change_once() {
    let fake: Shared = Arc::default();
    {
        let mut f = fake.lock().expect("lock");
        f.lists.insert(
            "/api/v1/pods".into(),
            VecDeque::from([
                list(
                    "Pod",
                    "v1",
                    "100",
                    vec![
                        pod("a", "uid-a", "10", "Running"),
                        pod("b", "uid-b", "11", "Running"),
                    ],
                ),
                // After the 410: a unchanged since the watch, b deleted meanwhile, c new.
                list(
                    "Pod",
                    "v1",
                    "200",
                    vec![
                        pod("a", "uid-a", "12", "Failed"),
                        pod("c", "uid-c", "13", "Pending"),
                    ],
                ),
            ]),
        );
        f.watches.insert(
            "/api/v1/pods".into(),
            VecDeque::from([
                Watch::Stream(vec![
                    Step::Event("MODIFIED", pod("a", "uid-a", "12", "Failed")),
                    Step::Bookmark("Pod", "150".into()),
                    // The same object again (a replayed watch event): not sent twice.
                    Step::Event("MODIFIED", pod("a", "uid-a", "12", "Failed")),
                    Step::End,
                ]),
                // Re-watching from the bookmark meets throttling, then the version expired.
                Watch::TooManyRequests,
                Watch::Stream(vec![Step::Gone]),
                Watch::Stream(vec![Step::Event(
                    "MODIFIED",
                    pod("c", "uid-c", "14", "Running"),
                )]),
            ]),
        );
        f.lists.insert(
            "/api/v1/secrets".into(),
            VecDeque::from([json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
                "metadata": {"resourceVersion": "5"},
                "items": [{"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                           "metadata": {"name": "db-credentials", "namespace": "shop", "uid": "uid-s", "resourceVersion": "3"}}]})]),
        );
    }
    let port = start_fake(fake.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = kubeconfig(dir.path(), port);
    let s = Server::start(&["--kubeconfig", &kc, "--cluster-name", "prod"]);
    s.wait_for(30, "the pods after the relist", |s| {
        watch_evidence(s, "Pod").len() >= 6
    });
    std::thread::sleep(Duration::from_secs(2));
    let pods = watch_evidence(&s, "Pod");
    let got: Vec<String> = pods
        .iter()
        .map(|(v, n, rv)| format!("{v} {n} {rv}"))
        .collect();
    assert_eq!(
        got,
        [
            "added a 10",
            "added b 11",
            "modified a 12",
            "added c 13",
            "deleted b 11",
            "modified c 14"
        ],
        "each change exactly once: {got:#?}"
    );
    // The stored object is trimmed.
    let page = s.get_json("/api/v1/evidence?limit=5000");
    let text = page.to_string();
    assert!(!text.contains("managedFields"), "managed fields trimmed");
    assert!(text.contains(r#""cluster":"prod""#));
    // Secrets: metadata only, typed as Secret.
    let secrets = watch_evidence(&s, "Secret");
    assert_eq!(
        secrets,
        [("added".into(), "db-credentials".into(), "3".into())]
    );

    let h = s.get_json("/health");
    let k = &h["components"]["kubernetes"];
    assert_eq!(k["status"], "healthy", "{k}");
    let podst = &k["details"]["kinds"]["Pod"];
    assert_eq!(podst["objects"], 2, "{podst}");
    assert_eq!(podst["synced"], true);
    assert_eq!(podst["relists"], 2, "{podst}");
    assert_eq!(podst["expired"], 1, "the 410: {podst}");
    // The 429 is retried by the client's own backoff, below the watcher: not an error.
    assert_eq!(podst["errors"], 0, "{podst}");
    assert!(podst["unchanged_skipped"].as_u64() >= Some(1), "{podst}");
    let log = fake.lock().expect("lock").log.clone();
    let pods: Vec<&str> = log
        .iter()
        .filter(|l| l.contains(" /api/v1/pods"))
        .map(String::as_str)
        .collect();
    // List, watch from the list's version; after the relist, watch from the new list's
    // version (the 429 retried by the client's backoff, then the 410, then a relist).
    assert_eq!(
        pods[..2],
        ["LIST /api/v1/pods", "WATCH /api/v1/pods rv=100"],
        "{pods:#?}"
    );
    let relist = pods
        .iter()
        .rposition(|l| l.starts_with("LIST"))
        .expect("a relist");
    assert!(relist >= 2, "{pods:#?}");
    assert!(
        pods[relist + 1..]
            .iter()
            .all(|l| *l == "WATCH /api/v1/pods rv=200"),
        "no watch from an expired version after a relist: {pods:#?}"
    );
}

#[test]
fn secrets_outside_the_rbac_are_skipped_and_said_so_other_kinds_watched() {
    let fake: Shared = Arc::default();
    {
        let mut f = fake.lock().expect("lock");
        f.forbidden.push("/api/v1/secrets".into());
        f.lists.insert(
            "/api/v1/pods".into(),
            VecDeque::from([list(
                "Pod",
                "v1",
                "7",
                vec![pod("a", "uid-a", "5", "Running")],
            )]),
        );
    }
    let port = start_fake(fake.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = kubeconfig(dir.path(), port);
    let s = Server::start(&["--kubeconfig", &kc]);
    s.wait_for(20, "the pod", |s| watch_evidence(s, "Pod").len() == 1);
    // The agents' pod source: this node's pods as a PodList.
    let list = s.get_json("/api/v1/pods?node=node-a");
    assert_eq!(list["kind"], "PodList", "{list}");
    assert_eq!(list["items"][0]["metadata"]["uid"], "uid-a", "{list}");
    assert!(list["items"][0]["metadata"].get("managedFields").is_none());
    let other = s.get_json("/api/v1/pods?node=node-z");
    assert_eq!(other["items"], json!([]));
    let (status, e) = s.get("/api/v1/pods").expect("get");
    assert_eq!(status, 400, "{e}");
    s.wait_for(10, "the Secret kind given up", |s| {
        s.get_json("/health")["components"]["kubernetes"]["details"]["kinds"]["Secret"]["forbidden"]
            == true
    });
    let h = s.get_json("/health");
    let k = &h["components"]["kubernetes"];
    assert_eq!(k["status"], "healthy", "{k}");
    assert!(
        k["message"]
            .as_str()
            .is_some_and(|m| m.contains("not permitted (skipped): Secret")),
        "{k}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let tries = fake
        .lock()
        .expect("lock")
        .log
        .iter()
        .filter(|l| l.starts_with("FORBIDDEN"))
        .count();
    assert_eq!(tries, 1, "a 403 is not retried forever");
}

#[test]
fn without_a_cluster_the_component_says_not_configured() {
    let s = Server::start(&["--kube", "off"]);
    let h = s.get_json("/health");
    let k = &h["components"]["kubernetes"];
    assert_eq!(k["status"], "healthy", "{k}");
    assert!(
        k["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("not configured")),
        "{k}"
    );
    assert_eq!(h["status"], "healthy", "{h}");
}

#[test]
fn a_bad_explicit_kubeconfig_stops_the_server_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kc");
    std::fs::write(&kc, "this: [is not a kubeconfig").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tapio-server"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("d"))
        .arg("--config-dir")
        .arg(dir.path().join("c"))
        .arg("--kubeconfig")
        .arg(&kc)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&kc.display().to_string()) && err.contains("--kube off"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// A crash-looping rollout, live through the fake API server vs its replay file
// ---------------------------------------------------------------------------------------

/// core/v1 Event → events.k8s.io/v1 Event (what the watcher reads).
fn events_v1(o: &Value) -> Value {
    let t = o["lastTimestamp"]
        .as_str()
        .or(o["firstTimestamp"].as_str())
        .or(o["eventTime"].as_str())
        .unwrap_or("2026-11-27T10:00:00Z");
    let micro = t.replace('Z', ".000000Z");
    json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
           "metadata": o["metadata"], "eventTime": micro,
           "regarding": o.get("involvedObject").cloned().unwrap_or_else(|| o["regarding"].clone()),
           "reason": o["reason"], "note": o.get("message").cloned().unwrap_or_else(|| o["note"].clone()),
           "type": o["type"], "action": o["reason"],
           "reportingController": o["source"]["component"].as_str().unwrap_or("kubelet"),
           "reportingInstance": o["source"]["host"].as_str().unwrap_or("node"),
           "deprecatedCount": o["count"].as_i64().unwrap_or(1)})
}

// One test (~150 lines) on purpose: the live run and its replay are compared with each
// other, so both belong to the same test.
#[test]
fn a_crash_looping_rollout_seen_live_gives_the_incident_of_its_replay() {
    let root = tapio_testkit::repo_root();
    let scenario = root.join("tests/scenarios/01-bad-rollout-checkout-crashloop/stream.jsonl");
    // The Kubernetes part of the scenario: (offset seconds, verb, object).
    let mut watch: Vec<(i64, String, Value)> = Vec::new();
    let mut t0 = None;
    for line in std::fs::read_to_string(&scenario)
        .expect("scenario")
        .lines()
    {
        let b: Value = serde_json::from_str(line).expect("batch");
        for e in b["events"].as_array().expect("events") {
            let Some(verb) = e["type"]
                .as_str()
                .and_then(|t| t.strip_prefix("kubernetes.watch."))
            else {
                continue;
            };
            let t = chrono::DateTime::parse_from_rfc3339(e["time"].as_str().expect("time"))
                .expect("time");
            let t0 = *t0.get_or_insert(t);
            let mut o = e["object"].clone();
            if o["kind"] == "Event" {
                o = events_v1(&o);
            }
            watch.push(((t - t0).num_seconds(), verb.to_owned(), o));
        }
    }
    // Live: the objects present at the start are the lists; the rest are watch events,
    // per kind, at 1/60 of the scenario's pace.
    let fake: Shared = Arc::default();
    {
        let mut f = fake.lock().expect("lock");
        let mut lists: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut streams: BTreeMap<String, (i64, Vec<Step>)> = BTreeMap::new();
        for (off, verb, o) in &watch {
            let kind = o["kind"].as_str().expect("kind").to_owned();
            if *off == 0 && verb == "added" {
                lists.entry(kind).or_default().push(o.clone());
                continue;
            }
            let (last, steps) = streams.entry(kind).or_default();
            let at_ms = off * 1000 / 60;
            if at_ms > *last {
                steps.push(Step::Delay(u64::try_from(at_ms - *last).unwrap_or(0)));
                *last = at_ms;
            }
            let t = match verb.as_str() {
                "added" => "ADDED",
                "deleted" => "DELETED",
                _ => "MODIFIED",
            };
            steps.push(Step::Event(t, o.clone()));
        }
        for kind in [
            "Node",
            "Pod",
            "Service",
            "ConfigMap",
            "Deployment",
            "ReplicaSet",
            "EndpointSlice",
            "Event",
        ] {
            let items = lists.remove(kind).unwrap_or_default();
            let av = items
                .first()
                .and_then(|o| o["apiVersion"].as_str())
                .unwrap_or("v1")
                .to_owned();
            f.lists.insert(
                path_of(kind).into(),
                VecDeque::from([list(kind, &av, "1000", items)]),
            );
        }
        for (kind, (_, steps)) in streams {
            // Give every watcher time to list first.
            let mut all = vec![Step::Delay(1500)];
            all.extend(steps);
            f.watches
                .insert(path_of(&kind).into(), VecDeque::from([Watch::Stream(all)]));
        }
    }
    let port = start_fake(fake);
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = kubeconfig(dir.path(), port);
    let live = Server::start(&["--kubeconfig", &kc, "--cluster-name", "prod"]);
    let total = watch.len();
    live.wait_for(40, "every watch event stored", |s| {
        s.get_json("/api/v1/evidence?limit=5000")["count"].as_u64() >= Some(total as u64)
    });
    live.wait_for(10, "the incident", |s| {
        s.incidents("").iter().any(|i| i["merged_into"].is_null())
    });
    std::thread::sleep(Duration::from_secs(1));

    // Replay: the same Kubernetes events as a replay file, in-process.
    let replay = dir.path().join("rollout.jsonl");
    let mut lines = Vec::new();
    for (i, (off, verb, o)) in watch.iter().enumerate() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z").expect("t")
            + chrono::Duration::seconds(*off);
        lines.push(
            json!({"version": 1, "agent_id": "kube-watch", "node": "prod", "seq": i + 1,
                   "events": [{"id": ulid::Ulid::new().to_string(), "time": t.to_rfc3339(),
                               "type": format!("kubernetes.watch.{verb}"), "severity": "info",
                               "entity": {"cluster": "prod"}, "object": o}]})
            .to_string(),
        );
    }
    std::fs::write(&replay, lines.join("\n")).expect("write replay");
    let out = std::process::Command::new(tapio_testkit::cli_bin())
        .args(["replay", "--max-speed", "-o", "json"])
        .arg(&replay)
        .output()
        .expect("tapio replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let summary = |incs: &[Value]| -> Vec<(String, String, String)> {
        let mut v: Vec<_> = incs
            .iter()
            .filter(|i| i["merged_into"].is_null())
            .map(|i| {
                let top = &i["hypotheses"][0];
                (
                    i["peak_severity"]
                        .as_str()
                        .or(i["severity"].as_str())
                        .unwrap_or("")
                        .to_owned(),
                    top["cause"].as_str().unwrap_or("none").to_owned(),
                    top["entity"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let from_replay = summary(replayed.as_array().expect("an array of incidents"));
    let from_live = summary(&live.incidents("?limit=1000"));
    assert!(
        from_replay.iter().any(|(sev, cause, entity)| sev == "P1"
            && cause == "bad_rollout"
            && entity == "Deployment/shop/checkout"),
        "the replay finds the bad rollout: {from_replay:?}"
    );
    assert_eq!(from_live, from_replay, "live and replay agree");
}
