//! What this server runs with: `GET /api/v1/config` (the effective live config) and `GET
//! /api/v1/cluster` (scale-out replicas and partitions).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use tapio_proto::ConfigView;

use crate::api::AppState;

pub async fn get_config(State(state): State<Arc<AppState>>) -> Json<ConfigView> {
    let eff = state.config.borrow().clone();
    Json(ConfigView {
        generation: eff.generation,
        log_level: eff.config.log_level.to_string(),
        load_shedding_enabled: eff.config.load_shedding_enabled,
        correlation_depth: eff.config.correlation_depth.to_string(),
        audit_level: eff.config.audit_level.to_string(),
        config_dir: state.config_dir.clone(),
        rejected: eff.rejected,
        updated_at: eff.updated_at,
    })
}

/// Replicas, partition owners and bus lag (`tapio check --all`). One node: `mode: single`.
pub async fn get_cluster(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    match &state.cluster {
        None => Json(serde_json::json!({
            "mode": "single",
            "replica": null,
            "partitions": 1,
            "replicas": [],
            "partition_owners": [],
        })),
        Some(c) => {
            let mut v = serde_json::to_value(c.snapshot()).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("mode".into(), "scale-out".into());
            }
            Json(v)
        }
    }
}
