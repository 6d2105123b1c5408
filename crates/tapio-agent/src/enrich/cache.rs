//! What makes a resolution cheap: the bounded pid cache, and the map from cgroup v2 ids
//! (directory inode numbers) back to cgroup paths, for processes already gone.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::*;

use super::cgroup::CgroupInfo;

/// Entries in the pid cache of [`Enricher`].
pub(super) const PID_CACHE_ENTRIES: usize = 4096;
/// How long a resolved pid stays cached.
pub(super) const PID_CACHE_TTL: Duration = Duration::from_secs(3);
/// The cgroup2 tree is walked again on an unknown cgroup id at most this often.
pub(super) const INODE_REBUILD_INTERVAL: Duration = Duration::from_secs(1);
/// At most this many cgroup directories are mapped (a node has a few thousand).
pub(super) const MAX_CGROUP_DIRS: usize = 100_000;
/// Cgroup directories deeper than this below the cgroup2 root are not visited.
pub(super) const MAX_CGROUP_DEPTH: usize = 32;

pub(super) type PidKey = (u32, u64);

#[derive(Debug)]
pub(super) struct CacheEntry {
    pub(super) at: Instant,
    pub(super) generation: u64,
    pub(super) found: Option<(String, CgroupInfo)>,
    pub(super) enriched: Enriched,
}

/// Bounded, approximately least-recently-used: entries go to `hot`; when `hot` is half
/// the capacity it becomes `cold` (dropping the old `cold`); a hit in `cold` moves back.
#[derive(Debug, Default)]
pub(super) struct PidCache {
    hot: HashMap<PidKey, CacheEntry>,
    cold: HashMap<PidKey, CacheEntry>,
}

impl PidCache {
    const HALF: usize = PID_CACHE_ENTRIES / 2;

    pub(super) fn get_mut(&mut self, key: &PidKey) -> Option<&mut CacheEntry> {
        if !self.hot.contains_key(key) {
            let entry = self.cold.remove(key)?;
            self.insert(*key, entry);
        }
        self.hot.get_mut(key)
    }

    pub(super) fn insert(&mut self, key: PidKey, entry: CacheEntry) {
        if self.hot.len() >= Self::HALF && !self.hot.contains_key(&key) {
            self.cold = std::mem::take(&mut self.hot);
        }
        self.hot.insert(key, entry);
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.hot.len() + self.cold.len()
    }
}

/// Cgroup v2 id (directory inode number) → path below the cgroup2 root.
#[derive(Debug)]
pub(super) struct CgroupInodes {
    pub(super) root: Option<PathBuf>,
    map: HashMap<u64, String>,
    built_at: Option<Instant>,
}

impl CgroupInodes {
    pub(super) fn new(root: Option<PathBuf>) -> Self {
        Self {
            root,
            map: HashMap::new(),
            built_at: None,
        }
    }

    /// The path of `id`, walking the tree again on a miss at most once per
    /// [`INODE_REBUILD_INTERVAL`].
    pub(super) fn lookup(&mut self, id: u64, now: Instant) -> Option<String> {
        if let Some(path) = self.map.get(&id) {
            return Some(path.clone());
        }
        let stale = self
            .built_at
            .is_none_or(|t| now.duration_since(t) >= INODE_REBUILD_INTERVAL);
        if !stale {
            return None;
        }
        self.rebuild(now);
        self.map.get(&id).cloned()
    }

    pub(super) fn rebuild(&mut self, now: Instant) {
        self.built_at = Some(now);
        let Some(root) = &self.root else { return };
        let mut map = HashMap::new();
        if let Ok(meta) = std::fs::metadata(root) {
            map.insert(meta.ino(), "/".to_owned());
        }
        let mut stack: Vec<(PathBuf, String, usize)> = vec![(root.clone(), String::new(), 0)];
        'walk: while let Some((dir, rel, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                // Not following symlinks: cgroupfs has none, and a loop must not hang us.
                let Ok(file_type) = entry.file_type() else {
                    continue;
                };
                if !file_type.is_dir() {
                    continue;
                }
                let Ok(meta) = entry.metadata() else { continue };
                let child_rel = format!("{rel}/{}", entry.file_name().to_string_lossy());
                map.insert(meta.ino(), child_rel.clone());
                if map.len() >= MAX_CGROUP_DIRS {
                    tracing::warn!(
                        max = MAX_CGROUP_DIRS,
                        "cgroup tree larger than the map; truncated"
                    );
                    break 'walk;
                }
                if depth + 1 < MAX_CGROUP_DEPTH {
                    stack.push((entry.path(), child_rel, depth + 1));
                }
            }
        }
        self.map = map;
    }
}
