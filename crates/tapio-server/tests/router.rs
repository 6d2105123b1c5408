//! The HTTP contract, driven through the router without a socket
//! (`tower::ServiceExt::oneshot` on `tapio_server::app`): status codes, the error body
//! (`{"error": {"code", "message", "field"?}}`), and the role matrix. The same state the
//! server runs with (`topology::embedded_state`), over a real embedded store.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tapio_core::auth::{Role, user_file};
use tapio_server::topology::embedded_state;
use tapio_store::sqlite::{Durability, SqliteStore};
use tower::ServiceExt;

struct Fixture {
    _dir: tempfile::TempDir,
    router: axum::Router,
}

const TOKENS: &[(&str, Role, &str)] = &[
    (
        "vera",
        Role::Viewer,
        "tapio_viewer_token_0123456789abcdef0123456789",
    ),
    (
        "rick",
        Role::Responder,
        "tapio_responder_token_0123456789abcdef01234567",
    ),
    (
        "ada",
        Role::Admin,
        "tapio_admin_token_0123456789abcdef0123456789ab",
    ),
    (
        "node-a",
        Role::Agent,
        "tapio_agent_token_0123456789abcdef0123456789ab",
    ),
];

/// A server state over a fresh store; with `auth`, the four users above.
fn fixture(auth: bool) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("data"), Durability::Normal).expect("store");
    let auth_dir = auth.then(|| {
        let d = dir.path().join("auth");
        std::fs::create_dir_all(&d).expect("auth dir");
        for (name, role, tok) in TOKENS {
            std::fs::write(d.join(name), user_file(*role, tok)).expect("user file");
        }
        d
    });
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).expect("config dir");
    let state = embedded_state(Arc::new(store), config, auth_dir);
    Fixture {
        _dir: dir,
        router: tapio_server::app(state),
    }
}

async fn call(
    f: &Fixture,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = match body {
        Some(v) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let resp = f
        .router
        .clone()
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("the router always answers");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

fn batch(seq: u64) -> Value {
    json!({
        "version": 1, "agent_id": "node-a", "node": "node-a", "seq": seq,
        "events": [{
            "id": ulid::Ulid::new().to_string(),
            "time": chrono::Utc::now().to_rfc3339(),
            "type": "kernel.memory.oom_kill",
            "severity": "critical",
            "entity": {"node": "node-a", "cluster": "prod", "namespace": "shop", "pod": "checkout-1"},
            "attributes": {"pid": 42}
        }]
    })
}

/// The error body every refusal carries: a code and a message, as JSON.
fn assert_error(v: &Value, code: &str) {
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
}

#[tokio::test]
async fn unknown_routes_methods_and_bodies_answer_json_errors() {
    let f = fixture(false);
    let (s, v) = call(&f, "GET", "/api/v1/nothing-here", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&v, "not_found");

    let (s, v) = call(&f, "PUT", "/api/v1/evidence", None, None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert!(v["error"]["code"].is_string(), "{v}");

    // Not JSON at all, then JSON that names a bad field.
    let resp = f
        .router
        .clone()
        .oneshot(
            Request::post("/api/v1/evidence")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{not json"))
                .expect("request"),
        )
        .await
        .expect("answer");
    assert!(resp.status().is_client_error(), "{}", resp.status());
    let mut bad = batch(1);
    bad["events"][0]["severity"] = json!("apocalyptic");
    let (s, v) = call(&f, "POST", "/api/v1/evidence", None, Some(bad)).await;
    assert!(s.is_client_error(), "{s}");
    assert!(
        v["error"]["field"]
            .as_str()
            .is_some_and(|fld| fld.contains("severity")),
        "the error names the field: {v}"
    );

    // A good batch is stored, and the same batch again is a duplicate, not an error.
    let good = batch(1);
    let (s, v) = call(&f, "POST", "/api/v1/evidence", None, Some(good.clone())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], 1, "{v}");
    let (s, v) = call(&f, "POST", "/api/v1/evidence", None, Some(good)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], 0, "{v}");
    assert_eq!(v["duplicate_batch"], true, "{v}");

    // Probes answer without a store round trip failing.
    let (s, v) = call(&f, "GET", "/health", None, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["status"].is_string(), "{v}");
}

#[tokio::test]
async fn the_role_matrix() {
    let f = fixture(true);
    let id = ulid::Ulid::new().to_string();
    let ack = format!("/api/v1/incidents/{id}/ack");
    // (method, path, body, who may) — everyone else is refused 403, nobody without a
    // token gets past 401.
    let routes: Vec<(&str, String, Option<Value>, &[Role])> = vec![
        (
            "GET",
            "/api/v1/incidents".into(),
            None,
            &[Role::Viewer, Role::Responder, Role::Admin],
        ),
        (
            "POST",
            "/api/v1/evidence".into(),
            Some(batch(7)),
            &[Role::Agent, Role::Admin],
        ),
        ("GET", "/api/v1/audit".into(), None, &[Role::Admin]),
        (
            "POST",
            ack.clone(),
            Some(json!({})),
            &[Role::Responder, Role::Admin],
        ),
    ];
    for (method, path, body, allowed) in &routes {
        let (s, v) = call(&f, method, path, None, body.clone()).await;
        assert_eq!(
            s,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a token: {v}"
        );
        assert_error(&v, "unauthorized");
        for (_, role, tok) in TOKENS {
            let (s, v) = call(&f, method, path, Some(tok), body.clone()).await;
            if allowed.contains(role) {
                assert!(
                    s != StatusCode::UNAUTHORIZED && s != StatusCode::FORBIDDEN,
                    "{method} {path} as {}: {s} {v}",
                    role.as_str()
                );
            } else {
                assert_eq!(
                    s,
                    StatusCode::FORBIDDEN,
                    "{method} {path} as {}: {v}",
                    role.as_str()
                );
                assert_error(&v, "forbidden");
            }
        }
    }
    // A wrong token is 401, like none; the public probes need none.
    let (s, _) = call(&f, "GET", "/api/v1/incidents", Some("tapio_wrong"), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(&f, "GET", "/ready", None, None).await;
    assert_eq!(s, StatusCode::OK);
}
