//! The silences in force, shared by the API (`crate::api::silences`), the notifier and
//! the dispatcher: stored durably, held in memory, so a silence applies at once.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use tapio_core::silence::Silence;
use tapio_store::Store;

pub type Shared = Arc<RwLock<Vec<Silence>>>;

/// Silences ended more than this long ago are not listed.
pub const LIST_ENDED_WITHIN_HOURS: i64 = 24;

/// Load the silences still relevant at start.
pub async fn load(store: &dyn Store, now: DateTime<Utc>) -> Vec<Silence> {
    match store
        .silences(now - chrono::Duration::hours(LIST_ENDED_WITHIN_HOURS))
        .await
    {
        Ok(bodies) => bodies
            .iter()
            .filter_map(|b| serde_json::from_str(b).ok())
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "loading silences failed; none apply until they are added again");
            Vec::new()
        }
    }
}
