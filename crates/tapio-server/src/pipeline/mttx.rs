//! MTTD / MTTA / MTTR / MTBF on `/metrics`: the figures `tapio report` prints, over a
//! trailing window (`--mttx-window`, default 30 days), recomputed every minute from the
//! store with the same code (`tapio_core::report::compute`), so the dashboard and the
//! weekly report never disagree on a definition.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tapio_core::report::{Metrics as Figures, Report};
use tapio_store::{IncidentFilter, Store};
use tokio::sync::watch;

use crate::metrics::{Metrics, MttxLabels, ServiceMttxLabels, SeverityLabel};

/// Services exported per measure (the ones with the most incidents), bounding the series.
pub const MAX_SERVICES: usize = 50;
/// Incidents read per recomputation (the store's list limit). The store lists the most
/// severe first, so past it P4s, then P3s, are left out, never P1s (logged).
const MAX_INCIDENTS: usize = 1000;

fn means(f: &Figures) -> [(&'static str, Option<f64>); 4] {
    [
        ("mttd", f.mttd.map(|s| s.mean_secs)),
        ("mtta", f.mtta.map(|s| s.mean_secs)),
        ("mttr", f.mttr.map(|s| s.mean_secs)),
        ("mtbf", f.mtbf.map(|s| s.mean_secs)),
    ]
}

/// Replace the exported figures with the ones of `r`. A measure with no data has no
/// series (absent, not a misleading zero).
pub fn publish(m: &Metrics, r: &Report, window: Duration) {
    m.mttx.clear();
    m.target_met.clear();
    m.service_mttx.clear();
    m.mttx_window
        .set(i64::try_from(window.as_secs()).unwrap_or(i64::MAX));
    for row in &r.by_severity {
        let severity = row.severity.as_str().to_owned();
        m.window_incidents
            .get_or_create(&SeverityLabel {
                severity: severity.clone(),
            })
            .set(i64::try_from(row.metrics.count).unwrap_or(i64::MAX));
        for (measure, v) in means(&row.metrics) {
            if let Some(v) = v {
                m.mttx
                    .get_or_create(&MttxLabels {
                        measure: measure.into(),
                        severity: severity.clone(),
                    })
                    .set(v);
            }
        }
        let c = &row.metrics.compliance;
        for (measure, rate) in [("mtta", c.ack_rate), ("mttr", c.resolve_rate)] {
            if let Some(rate) = rate {
                m.target_met
                    .get_or_create(&MttxLabels {
                        measure: measure.into(),
                        severity: severity.clone(),
                    })
                    .set(rate);
            }
        }
    }
    for row in r.by_service.iter().take(MAX_SERVICES) {
        for (measure, v) in means(&row.metrics) {
            if let Some(v) = v {
                m.service_mttx
                    .get_or_create(&ServiceMttxLabels {
                        measure: measure.into(),
                        service: row.service.clone(),
                    })
                    .set(v);
            }
        }
    }
}

async fn recompute(store: &dyn Store, m: &Metrics, window: Duration) {
    let now = Utc::now();
    let Some(from) = chrono::Duration::from_std(window)
        .ok()
        .and_then(|w| now.checked_sub_signed(w))
    else {
        return;
    };
    let incidents = match store
        .list_incidents(IncidentFilter {
            // An incident that started in the window was updated in it too.
            since: Some(from),
            limit: MAX_INCIDENTS,
            ..IncidentFilter::default()
        })
        .await
    {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(component = "mttx", error = %e, "reading incidents for MTTx failed; figures unchanged");
            return;
        }
    };
    if incidents.len() >= MAX_INCIDENTS {
        tracing::warn!(
            component = "mttx",
            limit = MAX_INCIDENTS,
            "more incidents in the MTTx window than one read returns; the least severe are left out"
        );
    }
    let report = tapio_core::report::compute(&incidents, from, now);
    publish(m, &report, window);
}

/// Recompute now, then every `every` until shutdown.
pub async fn run(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    window: Duration,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        recompute(store.as_ref(), &metrics, window).await;
    }
}
