//! `/health` and `/ready`.
//!
//! Components and what makes them unwell:
//! - `store` (critical): does not answer a read within 2 s → unhealthy (Tapio unhealthy, 503);
//!   its writes fail (a full disk) → degraded, and `/ready` answers 503 until a write
//!   succeeds again ([`StoreWrites`]).
//!
//! With authentication on, `/health` without a viewer token shows statuses only
//! ([`public_view`]).
//! - `ingest`: an agent's batches went missing in the last 15 minutes, or load shedding
//!   dropped evidence in the last minute → degraded.
//! - `correlator`: no loop iteration for 30 s, an error persisting incidents, or a backlog
//!   over 100,000 events → degraded.
//! - `config`: a key's current file content was refused (the previous value is in force)
//!   → degraded.
//! - `kubernetes`: "not configured" (healthy) without a cluster; degraded while a watched
//!   kind has not completed its first list for 60 s or its watch failed in the last minute.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;
use tapio_proto::{ComponentHealth, HealthReport, HealthStatus};

use crate::api::AppState;

const GAP_WINDOW_MS: i64 = 15 * 60 * 1000;
const SHED_WINDOW_MS: i64 = 60 * 1000;
const CORRELATOR_STALL_MS: i64 = 30_000;
const CORRELATOR_MAX_LAG: u64 = 100_000;

fn component(
    status: HealthStatus,
    critical: bool,
    message: impl Into<String>,
    details: serde_json::Value,
) -> ComponentHealth {
    ComponentHealth {
        status,
        message: message.into(),
        critical,
        details,
    }
}

/// The health report: one component after the other (store, ingest, load, correlator,
/// config, Kubernetes, cluster). About 200 lines because each component's rule sits next
/// to the figures it shows; the module docs list the rules.
pub async fn report(state: &AppState) -> HealthReport {
    let now_ms = Utc::now().timestamp_millis();
    let mut components = BTreeMap::new();

    // store: a liveness ping and the agents' table, read at once, so /health costs one
    // cheap store round trip even under a write flood. Row counts and sizes come from
    // `StatsCache` (refreshed every few seconds off the request path): counting under a
    // flood costs tens of milliseconds.
    let (ping, agents) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(2), state.store.ping()),
        tokio::time::timeout(Duration::from_secs(2), state.store.agents()),
    );
    let store = match ping {
        Ok(Ok(())) => match state.store_writes.failing() {
            // Reads work, writes do not (a full disk): degraded, not unhealthy — a restart
            // would not help, and /ready takes the instance out of rotation.
            Some((since_ms, n, err)) => component(
                HealthStatus::Degraded,
                true,
                format!(
                    "store writes failing since {} ({n} failed writes; nothing new is stored, /ready answers 503): {err}",
                    chrono::DateTime::from_timestamp_millis(since_ms)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_default()
                ),
                json!({
                    "writes_failing": true,
                    "failed_writes": n,
                    "last_write_error": err,
                    "stats": state.store_stats.get(state.store.as_ref()).await,
                    "pending_writes": state.store.pending_writes(),
                }),
            ),
            None => component(
                HealthStatus::Healthy,
                true,
                "store answers",
                json!({
                    "stats": state.store_stats.get(state.store.as_ref()).await,
                    "pending_writes": state.store.pending_writes(),
                }),
            ),
        },
        Ok(Err(e)) => component(
            HealthStatus::Unhealthy,
            true,
            format!("store error: {e}"),
            serde_json::Value::Null,
        ),
        Err(_) => component(
            HealthStatus::Unhealthy,
            true,
            "store did not answer within 2 s",
            serde_json::Value::Null,
        ),
    };
    components.insert("store".to_owned(), store);

    // ingest
    let ing = &state.ingest.outcomes.status;
    let agents = agents.ok().and_then(Result::ok).unwrap_or_default();
    let gaps: Vec<_> = agents
        .iter()
        .filter(|a| a.missing_batches > 0)
        .map(|a| json!({"agent_id": a.agent_id, "node": a.node, "missing_batches": a.missing_batches}))
        .collect();
    let cfg = state.config.borrow().clone();
    let recent_gap = now_ms - ing.last_gap_ms.load(Ordering::Relaxed) < GAP_WINDOW_MS;
    let recent_shed = now_ms - ing.last_shed_ms.load(Ordering::Relaxed) < SHED_WINDOW_MS;
    let (st, msg) = if recent_gap {
        (
            HealthStatus::Degraded,
            "evidence batches went missing in the last 15 minutes (see details.sequence_gaps)"
                .to_owned(),
        )
    } else if recent_shed {
        (
            HealthStatus::Degraded,
            "load shedding dropped low-priority evidence in the last minute".to_owned(),
        )
    } else {
        (HealthStatus::Healthy, "accepting evidence".to_owned())
    };
    components.insert(
        "ingest".to_owned(),
        component(
            st,
            false,
            msg,
            json!({
                "batches_accepted": ing.batches.load(Ordering::Relaxed),
                "bodies_rejected": ing.rejected.load(Ordering::Relaxed),
                "events_shed": ing.shed.load(Ordering::Relaxed),
                "load_shedding_enabled": cfg.config.load_shedding_enabled,
                "pressure": state.ingest.load.pressure(),
                "agents": agents.len(),
                "sequence_gaps": gaps,
            }),
        ),
    );

    components.insert(
        "load".to_owned(),
        crate::security::protect::health(&state.ingest.load, now_ms),
    );

    // correlator
    let c = &state.correlator;
    let hb = c.heartbeat_ms.load(Ordering::Relaxed);
    let lag = c.lag();
    let err = c.last_error.lock().ok().and_then(|g| g.clone());
    let (st, msg) = if hb == 0 || now_ms - hb > CORRELATOR_STALL_MS {
        (
            HealthStatus::Degraded,
            "correlator loop is not running".to_owned(),
        )
    } else if let Some(e) = &err {
        (HealthStatus::Degraded, format!("correlator error: {e}"))
    } else if lag > CORRELATOR_MAX_LAG {
        (
            HealthStatus::Degraded,
            format!("correlator is {lag} events behind"),
        )
    } else {
        (HealthStatus::Healthy, "correlating".to_owned())
    };
    components.insert(
        "correlator".to_owned(),
        component(
            st,
            false,
            msg,
            json!({
                "engine": "correlation-engine",
                "depth": cfg.config.correlation_depth.as_str(),
                "cursor": c.cursor.load(Ordering::Relaxed),
                "lag_events": lag,
                "processed_events": c.processed.load(Ordering::Relaxed),
                "active_incidents": c.active.load(Ordering::Relaxed),
            }),
        ),
    );

    // config
    let (st, msg) = if cfg.rejected.is_empty() {
        (
            HealthStatus::Healthy,
            format!("generation {}", cfg.generation),
        )
    } else {
        (
            HealthStatus::Degraded,
            format!(
                "refused values kept out: {}",
                cfg.rejected
                    .iter()
                    .map(|(k, v)| format!("{k}={v:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    };
    components.insert(
        "config".to_owned(),
        component(
            st,
            false,
            msg,
            json!({
                "generation": cfg.generation,
                "config_dir": state.config_dir,
                "rejected": cfg.rejected,
            }),
        ),
    );

    components.insert("kubernetes".to_owned(), kube_component(state, now_ms));
    if let Some(c) = &state.cluster {
        components.insert("cluster".to_owned(), cluster_component(c));
    }

    let status = components
        .values()
        .map(|c| match (c.status, c.critical) {
            (HealthStatus::Unhealthy, true) => HealthStatus::Unhealthy,
            (HealthStatus::Healthy, _) => HealthStatus::Healthy,
            _ => HealthStatus::Degraded,
        })
        .max()
        .unwrap_or(HealthStatus::Healthy);
    HealthReport {
        status,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_seconds: state.started.elapsed().as_secs(),
        config_generation: cfg.generation,
        components,
    }
}

fn kube_component(state: &AppState, now_ms: i64) -> ComponentHealth {
    let k = &state.kube;
    let source = k.source.lock().map(|s| s.clone()).unwrap_or_default();
    if !k.configured.load(Ordering::Relaxed) {
        return component(
            HealthStatus::Healthy,
            false,
            format!("not configured: {source}"),
            json!({"configured": false}),
        );
    }
    let kinds = k.kinds.lock().map(|m| m.clone()).unwrap_or_default();
    let started_ms = now_ms - i64::try_from(state.started.elapsed().as_millis()).unwrap_or(0);
    let mut problems = Vec::new();
    let mut skipped = Vec::new();
    for (kind, s) in &kinds {
        if s.forbidden {
            // Secrets are outside the default RBAC by design; any other kind is a
            // misconfigured ClusterRole.
            if *kind == "Secret" {
                skipped.push(*kind);
            } else {
                problems.push(format!("{kind}: not permitted by RBAC (list/watch needed)"));
            }
        } else if let Some(at) = s.last_error_at
            && now_ms - at.timestamp_millis() < 60_000
        {
            problems.push(format!(
                "{kind}: {}",
                s.last_error.as_deref().unwrap_or("watch error")
            ));
        } else if !s.synced && now_ms - started_ms > 60_000 {
            problems.push(format!("{kind}: first list not complete"));
        }
    }
    let objects: usize = kinds.values().map(|s| s.objects).sum();
    let synced = kinds.values().filter(|s| s.synced).count();
    let (st, msg) = if problems.is_empty() {
        (
            HealthStatus::Healthy,
            if skipped.is_empty() {
                format!("{source}: {synced} kinds synced, {objects} objects")
            } else {
                format!(
                    "{source}: {synced} kinds synced, {objects} objects; not permitted (skipped): {}",
                    skipped.join(", ")
                )
            },
        )
    } else {
        (
            HealthStatus::Degraded,
            format!("{source}: {}", problems.join("; ")),
        )
    };
    component(
        st,
        false,
        msg,
        json!({"configured": true, "source": source, "kinds": kinds}),
    )
}

/// `/health`. With authentication on, a caller without a viewer (or higher) token gets the
/// status only — overall and per component — without messages or details, which name
/// files, nodes, agents and errors.
pub async fn health(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let mut r = report(&state).await;
    let code = if r.status == HealthStatus::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    if state.auth.enabled() && !may_see_details(&state, &headers) {
        r = public_view(r);
    }
    (code, Json(r)).into_response()
}

/// The message of every component in the public form of `/health`.
pub const PUBLIC_MESSAGE: &str = "details need a viewer token (tapio check --token / TAPIO_TOKEN)";

fn may_see_details(state: &AppState, headers: &HeaderMap) -> bool {
    let Some((scheme, token)) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
    else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && state.auth.authenticate(token.trim()).is_some_and(|c| {
            crate::security::auth::allows(
                c.role,
                crate::security::auth::Need::Role(crate::security::auth::Role::Viewer),
            )
        })
}

/// Status only: no version, messages or details.
pub fn public_view(r: HealthReport) -> HealthReport {
    HealthReport {
        status: r.status,
        version: String::new(),
        uptime_seconds: 0,
        config_generation: 0,
        components: r
            .components
            .into_iter()
            .map(|(name, c)| {
                (
                    name,
                    ComponentHealth {
                        status: c.status,
                        message: PUBLIC_MESSAGE.to_owned(),
                        critical: c.critical,
                        details: serde_json::Value::Null,
                    },
                )
            })
            .collect(),
    }
}

/// 200 once the store is open and migrated (the listener only starts after that) and
/// while it answers; 503 during shutdown.
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if state.shutting_down.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reason": "shutting down"})),
        )
            .into_response();
    }
    if state.store_writes.failing().is_some() {
        // No reason text: /ready is public; /health (with a token) says why.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reason": "store writes are failing (see /health)"})),
        )
            .into_response();
    }
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({"ready": true}))).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(component = "store", error = %e, "not ready: the store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"ready": false, "reason": "the store does not answer (see /health)"})),
            )
                .into_response()
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reason": "store did not answer within 2 s"})),
        )
            .into_response(),
    }
}

/// Scale-out: every partition owned and the lease loop talking to PostgreSQL and NATS.
/// Not critical: an unowned partition delays correlation (evidence waits on the bus), it
/// does not lose anything, and this replica still ingests.
fn cluster_component(c: &crate::pipeline::cluster::Cluster) -> ComponentHealth {
    let v = c.snapshot();
    let unowned: Vec<i32> = v
        .partition_owners
        .iter()
        .filter(|p| !p.owned)
        .map(|p| p.partition)
        .collect();
    let live = v.replicas.iter().filter(|r| r.live).count();
    let mine = v
        .partition_owners
        .iter()
        .filter(|p| p.owner.as_deref() == Some(v.replica.as_str()))
        .count();
    let (status, msg) = if let Some(e) = &v.last_error {
        (HealthStatus::Degraded, format!("lease round failing: {e}"))
    } else if v.updated_at.is_none() {
        (HealthStatus::Degraded, "joining the cluster".to_owned())
    } else if !unowned.is_empty() {
        (
            HealthStatus::Degraded,
            format!(
                "partitions without an owner: {unowned:?} (their evidence waits on the bus until a replica takes them)"
            ),
        )
    } else {
        (
            HealthStatus::Healthy,
            format!(
                "{live} replicas, {mine} of {} partitions owned here, bus lag {}",
                v.partitions,
                v.bus_pending_total
                    .map_or("unknown (NATS did not answer)".to_owned(), |n| n
                        .to_string())
            ),
        )
    };
    component(
        status,
        false,
        msg,
        json!({
            "replica": v.replica,
            "leader": v.leader,
            "replicas": live,
            "partitions": v.partitions,
            "owned_here": mine,
            "bus_pending": v.bus_pending_total,
        }),
    )
}
