//! The OpenAPI document served at `/api/v1/openapi.json` (what `bench/api-fuzz.sh` fuzzes
//! with schemathesis): it parses, is OpenAPI 3.0, is public, and describes exactly the
//! router's routes — every documented path and method is served, and every other method
//! on those paths is the router's 405. Also the refusals found while writing the
//! document that did not answer as it says — a dropped connection (a panic in the
//! handler), a plain-text 400 — now the JSON error.

use std::collections::{BTreeMap, BTreeSet};

use tapio_testkit::{Server, cli_bin, repo_root};

/// Every route of `tapio_server::api::app`, with its methods. Keep in step with the
/// router (the test below also reads the route list out of http.rs).
const APP_ROUTES: &[(&str, &[&str])] = &[
    ("/health", &["get"]),
    ("/ready", &["get"]),
    ("/metrics", &["get"]),
    ("/status", &["get"]),
    ("/status.json", &["get"]),
    ("/api/v1/openapi.json", &["get"]),
    ("/api/v1/evidence", &["get", "post"]),
    ("/api/v1/pods", &["get"]),
    ("/api/v1/events", &["post"]),
    ("/api/v1/alertmanager", &["post"]),
    ("/api/v1/incidents", &["get", "post"]),
    ("/api/v1/incidents/{id}/ack", &["post"]),
    ("/api/v1/incidents/{id}/severity", &["post"]),
    ("/api/v1/incidents/{id}/mitigate", &["post"]),
    ("/api/v1/incidents/{id}/resolve", &["post"]),
    ("/api/v1/incidents/{id}/reopen", &["post"]),
    ("/api/v1/incidents/{id}/notes", &["post"]),
    ("/api/v1/incidents/{id}/timeline", &["get"]),
    ("/api/v1/silences", &["get", "post"]),
    ("/api/v1/silences/{id}/expire", &["post"]),
    ("/api/v1/incidents/summary", &["get"]),
    ("/api/v1/incidents/{id}", &["get"]),
    ("/api/v1/agents", &["get"]),
    ("/api/v1/agents/heartbeat", &["post"]),
    ("/api/v1/config", &["get"]),
    ("/api/v1/cluster", &["get"]),
    ("/api/v1/audit", &["get"]),
    ("/api/v1/operations/{id}", &["get"]),
];

const SOME_ULID: &str = "01JDQ7ZJ8W3XG5M8F9N0P1Q2R3";

fn app_routes() -> BTreeMap<String, BTreeSet<String>> {
    APP_ROUTES
        .iter()
        .map(|(p, ms)| {
            (
                (*p).to_owned(),
                ms.iter().map(|m| (*m).to_owned()).collect(),
            )
        })
        .collect()
}

/// Paths and methods the document describes.
fn doc_routes(doc: &serde_json::Value) -> BTreeMap<String, BTreeSet<String>> {
    let methods = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    doc["paths"]
        .as_object()
        .expect("paths is an object")
        .iter()
        .map(|(p, item)| {
            let ms = item
                .as_object()
                .expect("path item is an object")
                .keys()
                .filter(|k| methods.contains(&k.as_str()))
                .cloned()
                .collect();
            (p.clone(), ms)
        })
        .collect()
}

/// The route templates as written in `app` (src/http.rs): string literals and the
/// OpenAPI path constant.
fn routes_in_source() -> BTreeSet<String> {
    let src = std::fs::read_to_string(repo_root().join("crates/tapio-server/src/api/mod.rs"))
        .expect("read http.rs");
    let body = src
        .split("pub fn app(")
        .nth(1)
        .and_then(|s| s.split("\n}\n").next())
        .expect("fn app in http.rs");
    let mut out = BTreeSet::new();
    for part in body.split(".route(").skip(1) {
        let arg = part.trim_start();
        if let Some(rest) = arg.strip_prefix('"') {
            let end = rest.find('"').expect("closing quote");
            out.insert(rest[..end].to_owned());
        } else if arg.starts_with("OPENAPI_PATH") {
            out.insert(tapio_server::api::OPENAPI_PATH.to_owned());
        } else {
            panic!(
                "a route in http.rs is neither a literal nor OPENAPI_PATH: {}",
                &arg[..arg.len().min(60)]
            );
        }
    }
    out
}

fn concrete(path: &str) -> String {
    path.replace("{id}", SOME_ULID)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into()
}

/// Status and body of `method path` with a `{}` body for methods that take one.
fn call(s: &Server, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let url = format!("{}{path}", s.url());
    let auth = token.map(|t| format!("Bearer {t}"));
    let a = agent();
    let mut resp = match method {
        "get" | "delete" => {
            let mut req = if method == "get" {
                a.get(&url)
            } else {
                a.delete(&url)
            };
            if let Some(h) = &auth {
                req = req.header("authorization", h);
            }
            req.call().expect("request")
        }
        _ => {
            let mut req = match method {
                "post" => a.post(&url),
                "put" => a.put(&url),
                _ => a.patch(&url),
            }
            .header("content-type", "application/json");
            if let Some(h) = &auth {
                req = req.header("authorization", h);
            }
            req.send(&b"{}"[..]).expect("request")
        }
    };
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}

fn fetch_doc(s: &Server) -> serde_json::Value {
    let url = format!("{}/api/v1/openapi.json", s.url());
    let mut r = agent().get(&url).call().expect("GET openapi.json");
    assert_eq!(r.status().as_u16(), 200);
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    let text = r.body_mut().read_to_string().expect("body");
    serde_json::from_str(&text).expect("the document is JSON")
}

#[test]
fn the_document_describes_exactly_the_routers_routes() {
    let s = Server::start(&["--kube", "off"]);
    let doc = fetch_doc(&s);
    let version = doc["openapi"].as_str().unwrap_or("");
    assert!(version.starts_with("3.0."), "openapi: {version:?}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    let app = app_routes();
    assert_eq!(
        app.keys().cloned().collect::<BTreeSet<_>>(),
        routes_in_source(),
        "APP_ROUTES in this test and the routes in http.rs differ"
    );
    assert_eq!(
        doc_routes(&doc),
        app,
        "the document's paths and methods differ from the router's"
    );

    let every_method = ["get", "post", "put", "delete", "patch"];
    for (path, methods) in &app {
        for m in every_method {
            let (status, body) = call(&s, m, &concrete(path), None);
            let no_route = status == 404 && body.contains("no route");
            if methods.contains(m) {
                assert!(
                    !no_route && status != 405,
                    "{m} {path} is documented but the router answers {status}: {body}"
                );
                assert!(status < 500, "{m} {path}: {status} {body}");
            } else {
                assert_eq!(status, 405, "{m} {path} is not documented: {body}");
            }
        }
    }

    // Every operation names its security (public ones none), and the public set is the
    // one auth.rs exempts.
    let public: BTreeSet<String> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .filter(|(_, item)| {
            item["get"]["security"]
                .as_array()
                .is_some_and(|a| a.is_empty())
        })
        .map(|(p, _)| p.clone())
        .collect();
    let expected: BTreeSet<String> = [
        "/health",
        "/ready",
        "/metrics",
        "/status",
        "/status.json",
        "/api/v1/openapi.json",
    ]
    .iter()
    .map(|p| (*p).to_owned())
    .collect();
    assert_eq!(public, expected);
}

#[test]
fn the_document_is_public_with_authentication_on() {
    let auth = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(cli_bin())
        .args(["auth", "add-user", "ada", "--role", "viewer", "--auth-dir"])
        .arg(auth.path())
        .output()
        .expect("tapio auth add-user");
    assert!(out.status.success());
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let dir = auth.path().to_string_lossy().into_owned();
    let s = Server::start(&["--kube", "off", "--auth-dir", &dir]);
    let doc = fetch_doc(&s);
    assert!(doc["paths"]["/api/v1/incidents"].is_object());
    // The document says the API needs a bearer token, and it does.
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    assert_eq!(call(&s, "get", "/api/v1/incidents", None).0, 401);
    assert_eq!(call(&s, "get", "/api/v1/incidents", Some(&token)).0, 200);
}

/// Durations too long for the calendar were a panic in the handler (the connection
/// dropped, no answer); they are refused naming the parameter.
#[test]
fn durations_past_the_calendar_are_refused_not_a_panic() {
    let s = Server::start(&["--kube", "off"]);
    for since in ["99999999999d", "18446744073709551615s"] {
        let (status, body) = call(&s, "get", &format!("/api/v1/audit?since={since}"), None);
        assert_eq!(status, 400, "since={since}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["error"]["field"], "since", "{body}");
    }
    for duration in ["99999999999d", "3000000d"] {
        let (status, v) = s.post(
            "/api/v1/silences",
            format!(r#"{{"matchers":{{"namespace":"shop"}},"duration":"{duration}"}}"#).as_bytes(),
            &[("content-type", "application/json")],
        );
        assert_eq!(status, 400, "duration={duration}: {v}");
        assert_eq!(v["error"]["field"], "duration", "{v}");
    }
    // The server is still whole.
    assert_eq!(s.get("/ready").expect("ready").0, 200);
    let (status, _) = s.post(
        "/api/v1/silences",
        br#"{"matchers":{"namespace":"shop"},"duration":"2h"}"#,
        &[("content-type", "application/json")],
    );
    assert_eq!(status, 201);
}

/// Answers the document promises as JSON errors were plain text or unbounded before:
/// a path id that does not decode, and the heartbeat body (now limited by
/// --max-body-bytes and gzip-aware like every other body).
#[test]
fn every_refusal_is_the_json_error_shape() {
    let s = Server::start(&["--kube", "off", "--max-body-bytes", "2048"]);
    for (method, path) in [
        ("get", "/api/v1/incidents/%FF%FE"),
        ("get", "/api/v1/incidents/%FF/timeline"),
        ("post", "/api/v1/incidents/%FF/ack"),
        ("post", "/api/v1/incidents/%C3/notes"),
        ("post", "/api/v1/silences/%FF/expire"),
    ] {
        let (status, body) = call(&s, method, path, None);
        assert_eq!(status, 400, "{method} {path}: {body}");
        let v: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{method} {path}: {body}"));
        assert_eq!(v["error"]["field"], "id", "{body}");
    }

    let heartbeat = |agent: &str, padding: usize| {
        serde_json::json!({
            "agent_id": agent, "node": "n1", "version": "0.1.0",
            "started_at": "2026-01-01T00:00:00Z", "sent_at": "2026-01-01T00:00:10Z",
            "kernel": {"kernel_release": "6.1.0", "btf_present": true, "bpf_allowed": true,
                       "programs": []},
            "spool_pending_events": 0, "spool_bytes": 0, "last_error": "x".repeat(padding),
        })
        .to_string()
    };
    let json = [("content-type", "application/json")];
    let (status, v) = s.post(
        "/api/v1/agents/heartbeat",
        heartbeat("a1", 0).as_bytes(),
        &json,
    );
    assert_eq!(status, 204, "{v}");
    let (status, v) = s.post(
        "/api/v1/agents/heartbeat",
        heartbeat("a2", 4000).as_bytes(),
        &json,
    );
    assert_eq!(status, 413, "{v}");
    assert_eq!(v["error"]["code"], "payload_too_large", "{v}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, heartbeat("a3", 0).as_bytes()).expect("gzip");
    let (status, v) = s.post(
        "/api/v1/agents/heartbeat",
        &gz.finish().expect("gzip"),
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
    );
    assert_eq!(status, 204, "{v}");
    let agents = s.get_json("/api/v1/agents");
    let ids: Vec<&str> = agents["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|a| a["agent_id"].as_str())
        .collect();
    assert_eq!(ids, ["a1", "a3"]);
}
