//! Live runtime configuration from a directory shaped like a mounted ConfigMap.
//!
//! Kubernetes updates a mounted ConfigMap by writing a new timestamped directory and
//! swapping the `..data` symlink; the key files are symlinks through it. Reading each key
//! by path on every poll follows whatever the links point at now, so the swap needs no
//! special case, and a poll (default every second) never misses an update the way an
//! inotify watch on a replaced directory can.
//!
//! A key whose file is absent takes its default (the ConfigMap is the source of truth);
//! a value that does not parse is refused with an ERROR naming key and value, and the
//! previous value stays in force. Every applied change increments the generation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tapio_core::config::{KEYS, RuntimeConfig};
use tokio::sync::watch;

use crate::metrics::{KeyLabel, Metrics};

#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    pub config: RuntimeConfig,
    pub generation: u64,
    pub updated_at: DateTime<Utc>,
    /// Key → refused value, for keys whose current file content is invalid.
    pub rejected: BTreeMap<String, String>,
}

pub struct ConfigSource {
    dir: PathBuf,
    tx: watch::Sender<Effective>,
    metrics: Arc<Metrics>,
}

/// Read one key file. `Ok(None)`: absent.
fn read_key(dir: &Path, key: &str) -> Result<Option<String>, String> {
    match std::fs::read(dir.join(key)) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| "<not UTF-8>".to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("<unreadable: {e}>")),
    }
}

impl ConfigSource {
    /// Load the directory once (generation 1) and return the source and a receiver.
    pub fn load(dir: PathBuf, metrics: Arc<Metrics>) -> (Self, watch::Receiver<Effective>) {
        if !dir.is_dir() {
            tracing::warn!(
                config_dir = %dir.display(),
                "config directory does not exist; using defaults and watching for it to appear"
            );
        }
        let defaults = RuntimeConfig::default();
        let mut rejected = BTreeMap::new();
        let config = Self::compute(&dir, &defaults, &mut rejected, &metrics);
        let eff = Effective {
            config,
            generation: 1,
            updated_at: Utc::now(),
            rejected,
        };
        metrics.config_generation.set(1);
        tracing::info!(
            config_dir = %dir.display(),
            log_level = %config.log_level,
            load_shedding_enabled = config.load_shedding_enabled,
            correlation_depth = %config.correlation_depth,
            audit_level = %config.audit_level,
            generation = 1,
            "runtime config loaded"
        );
        let (tx, rx) = watch::channel(eff);
        (Self { dir, tx, metrics }, rx)
    }

    /// Build the candidate config from the files. Invalid values keep `current`'s value.
    fn compute(
        dir: &Path,
        current: &RuntimeConfig,
        rejected: &mut BTreeMap<String, String>,
        metrics: &Metrics,
    ) -> RuntimeConfig {
        let defaults = RuntimeConfig::default();
        let mut next = *current;
        for key in KEYS {
            // Err: (refused value, what would have been accepted).
            let result = match read_key(dir, key) {
                Ok(None) => {
                    let d = defaults.get(key).unwrap_or_default();
                    next.apply(key, &d).map_err(|e| (d, e.allowed))
                }
                Ok(Some(v)) => next.apply(key, &v).map_err(|e| (v, e.allowed)),
                Err(unreadable) => Err((unreadable, "a readable UTF-8 file".to_owned())),
            };
            match result {
                Ok(()) => {
                    rejected.remove(key);
                }
                Err((bad, allowed)) => {
                    let bad = bad.trim().to_owned();
                    if rejected.get(key) != Some(&bad) {
                        tracing::error!(
                            key,
                            value = %bad,
                            kept = %current.get(key).unwrap_or_default(),
                            "config value refused: {key}={bad:?} is not one of {allowed}; keeping the previous value"
                        );
                        metrics
                            .config_rejections
                            .get_or_create(&KeyLabel {
                                key: key.to_owned(),
                            })
                            .inc();
                        rejected.insert(key.to_owned(), bad);
                    }
                }
            }
        }
        next
    }

    /// Re-read the directory; publish a new generation if anything changed.
    pub fn poll(&self) {
        let cur = self.tx.borrow().clone();
        let mut rejected = cur.rejected.clone();
        let next = Self::compute(&self.dir, &cur.config, &mut rejected, &self.metrics);
        if next == cur.config && rejected == cur.rejected {
            return;
        }
        let generation = if next == cur.config {
            cur.generation
        } else {
            cur.generation + 1
        };
        if next != cur.config {
            for key in KEYS {
                let (old, new) = (cur.config.get(key), next.get(key));
                if old != new {
                    tracing::info!(
                        key,
                        old = %old.unwrap_or_default(),
                        new = %new.unwrap_or_default(),
                        generation,
                        "config change applied"
                    );
                }
            }
            self.metrics.config_generation.set(generation as i64);
        }
        self.tx.send_replace(Effective {
            config: next,
            generation,
            updated_at: if next == cur.config {
                cur.updated_at
            } else {
                Utc::now()
            },
            rejected,
        });
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub async fn run(self, every: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.poll(),
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapio_core::config::CorrelationDepth;

    #[test]
    fn symlink_swap_like_kubernetes_is_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let write_gen = |name: &str, depth: &str| {
            let d = root.join(name);
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::write(d.join("correlation-depth"), depth).expect("write");
        };
        write_gen("..2026_11_27_1", "basic");
        std::os::unix::fs::symlink("..2026_11_27_1", root.join("..data")).expect("link");
        std::os::unix::fs::symlink("..data/correlation-depth", root.join("correlation-depth"))
            .expect("link");
        let metrics = Arc::new(Metrics::new());
        let (src, rx) = ConfigSource::load(root.to_path_buf(), metrics);
        assert_eq!(
            rx.borrow().config.correlation_depth,
            CorrelationDepth::Basic
        );

        // Kubernetes: new dir, new link, atomic rename over ..data.
        write_gen("..2026_11_27_2", "deep");
        std::os::unix::fs::symlink("..2026_11_27_2", root.join("..data_tmp")).expect("link");
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).expect("swap");
        src.poll();
        assert_eq!(rx.borrow().config.correlation_depth, CorrelationDepth::Deep);
        assert_eq!(rx.borrow().generation, 2);

        write_gen("..2026_11_27_3", "bogus");
        std::os::unix::fs::symlink("..2026_11_27_3", root.join("..data_tmp")).expect("link");
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).expect("swap");
        src.poll();
        let eff = rx.borrow().clone();
        assert_eq!(eff.config.correlation_depth, CorrelationDepth::Deep);
        assert_eq!(eff.generation, 2);
        assert_eq!(
            eff.rejected.get("correlation-depth").map(String::as_str),
            Some("bogus")
        );
    }
}
