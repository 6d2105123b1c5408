//! Every class of bad input gets a 4xx with `{error: {code, message}}` naming the
//! offending field or value, and nothing already stored is lost or changed.

use std::io::Write;

use tapio_testkit::{Server, example};

fn assert_error(
    s: &Server,
    body: &[u8],
    headers: &[(&str, &str)],
    status: u16,
    code: &str,
) -> serde_json::Value {
    let (got, v) = s.post("/api/v1/evidence", body, headers);
    assert_eq!(got, status, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"].as_str().is_some_and(|m| m.len() > 10),
        "a message for people: {v}"
    );
    v
}

#[test]
fn each_bad_input_class_is_refused_clearly_and_harmlessly() {
    let s = Server::start(&["--max-body-bytes", "65536"]);
    let (status, _) = s.post("/api/v1/evidence", &example("evidence-batch.json"), &[]);
    assert_eq!(status, 200);
    s.wait_for(5, "the incident", |s| s.incidents("").len() == 1);
    let before_incidents = s.get_json("/api/v1/incidents");
    let before_agents = s.get_json("/api/v1/agents");

    let good = String::from_utf8(example("evidence-batch.json")).expect("utf8");

    // malformed JSON
    let v = assert_error(
        &s,
        b"{\"version\": 1, \"agent_id\": ",
        &[],
        400,
        "malformed_json",
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("line")
    );
    // wrong types
    let v = assert_error(
        &s,
        good.replace("\"seq\": 1", "\"seq\": \"first\"").as_bytes(),
        &[],
        400,
        "invalid_field",
    );
    assert_eq!(v["error"]["field"], "seq");
    let v = assert_error(
        &s,
        good.replace("\"pid\": 48213", "\"pid\": {\"n\": 1}")
            .as_bytes(),
        &[],
        400,
        "invalid_field",
    );
    assert_eq!(v["error"]["field"], "events[0].attributes.pid");
    let v = assert_error(
        &s,
        good.replace("kernel.container.oom_kill", "OOMKill")
            .as_bytes(),
        &[],
        400,
        "invalid_field",
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("OOMKill")
    );
    // unknown envelope version
    let v = assert_error(
        &s,
        good.replace("\"version\": 1", "\"version\": 99").as_bytes(),
        &[],
        400,
        "unsupported_version",
    );
    assert!(v["error"]["message"].as_str().unwrap_or("").contains("99"));
    // oversized body (declared and streamed), and a gzip bomb
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(70_000));
    assert_error(&s, big.as_bytes(), &[], 413, "payload_too_large");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&vec![b' '; 10 * 1024 * 1024]).expect("gzip");
    let bomb = enc.finish().expect("gzip");
    assert!(bomb.len() < 65536);
    assert_error(
        &s,
        &bomb,
        &[("content-encoding", "gzip")],
        413,
        "payload_too_large",
    );
    assert_error(
        &s,
        b"{}",
        &[("content-encoding", "br")],
        415,
        "unsupported_encoding",
    );
    // invalid UTF-8
    let mut bad = good.clone().into_bytes();
    let at = good.find("java").expect("java");
    bad[at] = 0xff;
    assert_error(&s, &bad, &[], 400, "invalid_utf8");
    // timestamps far in the future
    let v = assert_error(
        &s,
        good.replace("2026-11-27T09:30:00.120Z", "2031-01-01T00:00:00Z")
            .as_bytes(),
        &[],
        422,
        "timestamp_in_future",
    );
    assert_eq!(v["error"]["field"], "events[0].time");
    // single events API and query parameters
    let (st, v) = s.post("/api/v1/events", br#"{"type":"bad type"}"#, &[]);
    assert_eq!(st, 400, "{v}");
    let (st, body) = s.get("/api/v1/incidents?severity=P9").expect("get");
    assert_eq!(st, 400);
    assert!(body.contains("P9"), "{body}");
    let (st, body) = s.get("/api/v1/incidents/not-an-id").expect("get");
    assert_eq!(st, 400);
    assert!(body.contains("not-an-id"));
    let (st, _) = s.get("/api/v1/nothing").expect("get");
    assert_eq!(st, 404);

    // Nothing stored was lost or changed, and the refusals are counted.
    assert_eq!(s.get_json("/api/v1/incidents"), before_incidents);
    assert_eq!(
        s.get_json("/api/v1/agents")["agents"][0]["events"],
        before_agents["agents"][0]["events"]
    );
    assert!(s.metric("tapio_batches_rejected_total") >= 10.0);
    assert_eq!(s.get_json("/health")["status"], "healthy");
}

/// A rule file with a bad value or an unknown field stops the server at start, naming the
/// file, the rule and the field; a valid one is loaded.
#[test]
fn rule_files_are_validated_on_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "[[rule]]\nname = \"mine\"\ncause = \"c\"\non = \"pod\"\nsymptoms = [\"crash_loop\"]\nconfidence = 0.5\nexplain = \"e\"\n",
            vec!["rule \"mine\"", "field \"on\"", "\"pod\""],
        ),
        (
            "[[rule]]\nname = \"mine\"\ncause = \"c\"\non = \"subject\"\nsymptoms = [\"crash_loop\"]\nconfidence = 0.5\nexplain = \"e\"\nwhen = \"now\"\n",
            vec!["line 8", "when"],
        ),
    ];
    for (i, (text, needles)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("rules{i}.toml"));
        std::fs::write(&path, text).expect("write rules");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tapio-server"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join(format!("d{i}")))
            .arg("--config-dir")
            .arg(dir.path().join(format!("c{i}")))
            .arg("--rules")
            .arg(&path)
            .output()
            .expect("run tapio-server");
        assert!(
            !out.status.success(),
            "a bad rule file must stop the server"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&path.display().to_string()), "{err}");
        for n in needles {
            assert!(err.contains(n), "{n:?} in {err}");
        }
    }
}
