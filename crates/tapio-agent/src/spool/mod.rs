//! A durable, bounded disk spool for the agent's evidence: what the agent has seen is on
//! disk (fsynced) before it is sent, survives a crash or `kill -9` at any point, and is sent
//! as numbered batches that are resent identically until the server acknowledges them.
//!
//! # On-disk format
//!
//! The spool directory holds segment files and one state file; nothing else is read.
//!
//! * `seg-<20-digit number>.log`: a segment, a plain sequence of records. A new segment is
//!   started when the next record would take the current one past `segment_bytes` (a record
//!   larger than that gets a segment of its own). Segment numbers only grow.
//! * Each record is a 12-byte header and a JSON payload:
//!
//!   | bytes | field |
//!   |---|---|
//!   | 0..4  | magic `F5 54 53 FE` (little-endian `u32` `0xFE53_54F5`; both `F5` and `FE` are invalid in UTF-8, so the magic can never occur inside a payload) |
//!   | 4..8  | payload length, little-endian `u32` (at most 64 MiB) |
//!   | 8..12 | CRC-32 (IEEE) of bytes 4..8 followed by the payload, little-endian `u32` |
//!   | 12..  | payload: `{"rid":R,"last_seq":S,"events":[<Event>,...]}` |
//!
//!   `rid` is the record id, unique and increasing through the spool (segment order equals
//!   rid order); positions in the state file are expressed in rids and event counts, never in
//!   byte offsets, so compacting a segment cannot invalidate them. `last_seq` is the highest
//!   batch seq issued when the record was written (used only if the state file is lost).
//!   One `append` call writes one record and fsyncs it before returning.
//! * A *seq marker* is a record with no events (`"events":[]`), appended and fsynced by
//!   [`Spool::next_batch`] before it issues a new seq, with `last_seq` = that seq. Markers
//!   are skipped when reading events and never keep a segment alive.
//! * `spool.state`: one JSON line and a `crc32:<hex>` line, replaced atomically (write
//!   `spool.state.tmp`, fsync, rename, fsync the directory). It holds `last_seq`, the acked
//!   position (`rid`, `skip`: everything before event `skip` of record `rid` is delivered)
//!   and the in-flight batch, if any (its `seq` and end position). The in-flight batch is
//!   persisted *before* [`Spool::next_batch`] returns it, and the acked position before
//!   [`Spool::ack`] returns.
//!
//! # Guarantees
//!
//! * **Durable**: an event is on disk (fsynced) when `append` returns; it stays until it is
//!   acknowledged (or dropped by the bound below, which is counted).
//! * **Identical resends**: while a batch is in flight, every `next_batch` (also after a
//!   restart) returns the same `seq` and the same events in the same order. Records that
//!   hold in-flight events are never rewritten, so the batch is rebuilt byte for byte from
//!   the segments; it is never held only in memory. The server dedupes by `(agent_id, seq)`
//!   and first event id, so a crash between send and ack costs a duplicate, not a loss.
//! * **Crash recovery**: on open every segment is scanned. A record with a bad magic,
//!   length, CRC or JSON, or a torn final record, is skipped and counted
//!   ([`OpenReport::corrupt_records`]; one contiguous corrupt region counts once); scanning
//!   resyncs at the next magic, so records after the damage are recovered. A torn tail of
//!   the newest segment is truncated away so appends continue after the last good record.
//!   Leftover `*.tmp` files of an interrupted rewrite are removed.
//! * **Lost state file**: if `spool.state` is missing or corrupt while segments exist,
//!   nothing can be proven delivered, so every event still present is pending again
//!   (resending is preferred to losing; the server ignores event ids it holds). The seq
//!   resumes after the highest `last_seq` in the surviving records, which is the highest seq
//!   ever issued: the newest seq marker survives unless every event before it was delivered
//!   and a later record (which carries a `last_seq` at least as high) exists. So no seq is
//!   reused for different content; a reused seq with the same first event but different
//!   events would make the server store nothing. If no segment survives either, the spool
//!   starts again at seq 1 with new events only, which the server records as a sequence
//!   reset and stores.
//! * **Bounded**: the segment bytes on disk (`stats().bytes`; the small state file is not
//!   counted) never exceed `max_bytes`, unless data that may not be touched (the in-flight
//!   batch, a partly delivered record) alone exceeds it, e.g. after `max_bytes` was
//!   lowered; then incoming events are dropped until that data is acked. Appends stay
//!   `min(384, max_bytes / 8)` bytes under `max_bytes`, a reserve for seq markers; if a
//!   marker still does not fit, room is made for it like for an append (counted in the
//!   stats only), or the marker is skipped when nothing can be freed.
//! * **Bounded memory**: events are not kept in memory; the spool keeps an index of
//!   records (segment, offset, length, event count per severity) and reads from disk to form
//!   batches. Only the in-flight batch is cached.
//!
//! # Drop policy when full
//!
//! When an append would take the spool past `max_bytes`:
//!
//! 1. Bytes of already delivered records that still sit in a partly delivered segment are
//!    reclaimed first (no evidence lost). Fully delivered segments are deleted at ack.
//! 2. Then events are dropped by severity, lowest first (debug, info, warning, error,
//!    critical), among the *unsent* stored events (not in flight, not in a partly delivered
//!    or partly in-flight record) and the incoming events. Within one severity the oldest
//!    go first: stored events in spool order, then the incoming ones. A severity is only
//!    touched once every lower severity is gone from that set. Dropped stored events are
//!    removed by rewriting (compacting) their segments (write a temporary file, fsync,
//!    atomic rename); the order of the remaining events does not change.
//! 3. To avoid rewriting segments on every append of a full spool, stored events of the
//!    severity being dropped are dropped until `need + max_bytes / 32` bytes are free (never
//!    moving on to a higher severity or to incoming events for that margin).
//! 4. If the incoming events alone still do not fit, the lowest of them are dropped; an
//!    event that cannot fit even in an empty spool is dropped up front.
//!
//! Every dropped event is counted by severity in [`AppendOutcome::dropped`] and in
//! [`SpoolStats::dropped_by_severity`]. The counters in [`SpoolStats`] cover the life of
//! this `Spool` value (they restart at zero on open, like process metrics).
//!
//! One process owns a spool directory at a time.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tapio_proto::{Event, EventSeverity};

/// Record magic; on disk (little-endian) `F5 54 53 FE`.
mod format;
#[cfg(test)]
mod tests;

use format::*;

/// Where and how large the spool is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Directory owned by the spool (created if missing).
    pub dir: PathBuf,
    /// Bound on the bytes of all segment files.
    pub max_bytes: u64,
    /// A new segment is started when a record would take the current one past this.
    pub segment_bytes: u64,
}

/// Counts per event severity, indexed in severity order (debug, info, warning, error,
/// critical).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts([u64; 5]);

impl Counts {
    /// The severities in index order.
    const ORDER: [EventSeverity; 5] = [
        EventSeverity::Debug,
        EventSeverity::Info,
        EventSeverity::Warning,
        EventSeverity::Error,
        EventSeverity::Critical,
    ];

    fn add(&mut self, other: &Counts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// The severities with a non-zero count.
    fn to_map(self) -> BTreeMap<EventSeverity, u64> {
        Self::ORDER
            .into_iter()
            .zip(self.0)
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// How the state file was found on open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateRecovery {
    /// No state file and no segments: a new spool.
    Fresh,
    /// The state file was read.
    Loaded,
    /// No state file, but segments: every event present is pending again.
    Missing,
    /// The state file could not be used (reason given): every event present is pending
    /// again.
    Corrupt(String),
}

/// What [`Spool::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    pub state: StateRecovery,
    /// Corrupt regions skipped (bad magic, length, CRC or JSON, torn tail); each contiguous
    /// region counts once.
    pub corrupt_records: u64,
    /// Bytes in those regions.
    pub corrupt_bytes: u64,
    /// Events not yet acknowledged (including an in-flight batch).
    pub pending_events: u64,
    /// Seq of the batch that was in flight, if any; `next_batch` returns it again.
    pub in_flight_seq: Option<u64>,
    /// Segment files left after removing fully delivered ones.
    pub segments: usize,
}

/// Result of [`Spool::append`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Incoming events written (the rest of them were dropped).
    pub stored: usize,
    /// Every event dropped by this call, by severity (only severities with drops): older
    /// stored events compacted away *and* incoming ones, so `events.len() - stored` is the
    /// incoming part only when no stored event was dropped.
    pub dropped: BTreeMap<EventSeverity, u64>,
}

/// A batch to send; resent with the same `seq` and events until acked or discarded.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub seq: u64,
    pub events: Vec<Event>,
}

/// Snapshot of the spool's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolStats {
    /// Bytes of all segment files.
    pub bytes: u64,
    pub max_bytes: u64,
    /// Events not yet acknowledged (including the in-flight batch).
    pub pending_events: u64,
    /// Events in the in-flight batch.
    pub in_flight_events: u64,
    pub in_flight_seq: Option<u64>,
    pub segments: usize,
    /// Corrupt regions found at open and corrupt records found since.
    pub corrupt_records: u64,
    /// Events dropped to stay within `max_bytes`, by severity (only severities with
    /// drops), since open.
    pub dropped_by_severity: BTreeMap<EventSeverity, u64>,
    /// Events in batches the server refused ([`Spool::discard`]) since open.
    pub rejected_events: u64,
    /// Highest seq issued so far (0 before the first batch).
    pub last_seq: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("invalid spool config: {0}")]
    Config(String),
    #[error("spool: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("batch seq {seq} is not in flight (in flight: {in_flight:?})")]
    NotInFlight { seq: u64, in_flight: Option<u64> },
    #[error("spool: encoding evidence: {0}")]
    Encode(#[from] serde_json::Error),
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SpoolError + use<> {
    let path = path.to_path_buf();
    move |source| SpoolError::Io { op, path, source }
}

fn sev_index(s: EventSeverity) -> usize {
    match s {
        EventSeverity::Debug => 0,
        EventSeverity::Info => 1,
        EventSeverity::Warning => 2,
        EventSeverity::Error => 3,
        EventSeverity::Critical => 4,
    }
}

/// Size bookkeeping of one record (stored or incoming) while planning drops; the size
/// formula matches [`encode_record`] exactly.
struct Candidate {
    overhead: u64,
    sev: Vec<u8>,
    lens: Vec<u64>,
    keep: Vec<bool>,
    kept: usize,
    kept_bytes: u64,
}

impl Candidate {
    fn new(overhead: u64) -> Self {
        Self {
            overhead,
            sev: Vec::new(),
            lens: Vec::new(),
            keep: Vec::new(),
            kept: 0,
            kept_bytes: 0,
        }
    }

    fn from_payload(p: &Payload) -> Result<Self, SpoolError> {
        let mut c = Self::new(record_overhead(p.rid, p.last_seq));
        for e in &p.events {
            let mut w = CountingWriter(0);
            serde_json::to_writer(&mut w, e)?;
            c.push(sev_index(e.severity), w.0);
        }
        Ok(c)
    }

    fn push(&mut self, sev: usize, len: u64) {
        self.sev.push(sev as u8);
        self.lens.push(len);
        self.keep.push(true);
        self.kept += 1;
        self.kept_bytes += len;
    }

    /// Record size with the kept events (0: no record at all).
    fn size(&self) -> u64 {
        if self.kept == 0 {
            0
        } else {
            self.overhead + self.kept_bytes + (self.kept as u64 - 1)
        }
    }

    /// Drops event `i`; returns the bytes saved.
    fn drop_at(&mut self, i: usize) -> u64 {
        let before = self.size();
        self.keep[i] = false;
        self.kept -= 1;
        self.kept_bytes -= self.lens[i];
        before - self.size()
    }

    /// Drops kept events of severity `s` in order while `stop` says continue; returns the
    /// bytes saved.
    fn drop_severity(&mut self, s: usize, mut stop: impl FnMut(u64) -> bool) -> (u64, bool) {
        let mut saved = 0;
        for i in 0..self.sev.len() {
            if self.keep[i] && usize::from(self.sev[i]) == s {
                saved += self.drop_at(i);
                if stop(saved) {
                    return (saved, true);
                }
            }
        }
        (saved, false)
    }
}

struct CountingWriter(u64);

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What to remove from stored segments to make room.
#[derive(Default)]
struct Plan {
    /// Remove the delivered records still sitting in partly delivered segments.
    reclaim: bool,
    /// Records losing events, with the events to keep.
    touched: BTreeMap<u64, Candidate>,
    /// Records found unreadable while planning.
    corrupt: BTreeSet<u64>,
}

/// The durable, bounded evidence spool. See the module documentation.
#[derive(Debug)]
pub struct Spool {
    config: SpoolConfig,
    /// Every valid record in the segment files, in rid (= segment, offset) order.
    records: Vec<RecordMeta>,
    /// Segment number → file size.
    segments: BTreeMap<u64, u64>,
    bytes: u64,
    next_seg: u64,
    next_rid: u64,
    acked: Cursor,
    in_flight: Option<InFlight>,
    last_seq: u64,
    pending: u64,
    corrupt_records: u64,
    dropped: Counts,
    rejected_events: u64,
}

impl Spool {
    /// Opens (creating if needed) the spool in `config.dir` and recovers its state.
    pub fn open(config: SpoolConfig) -> Result<(Spool, OpenReport), SpoolError> {
        if config.max_bytes == 0 || config.segment_bytes == 0 {
            return Err(SpoolError::Config(
                "max_bytes and segment_bytes must be greater than 0".to_owned(),
            ));
        }
        let dir = config.dir.clone();
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;

        let mut seg_ids = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
            let entry = entry.map_err(io_err("read directory", &dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name == STATE_TMP
                || (name.starts_with(SEG_PREFIX)
                    && name.ends_with(&format!("{SEG_SUFFIX}{TMP_SUFFIX}")))
            {
                // An interrupted state write or segment rewrite; the original is intact.
                let path = entry.path();
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
            } else if let Some(id) = parse_seg_name(name) {
                seg_ids.push(id);
            }
        }
        seg_ids.sort_unstable();

        let state_path = dir.join(STATE_FILE);
        let loaded = match fs::read(&state_path) {
            Ok(bytes) => decode_state(&bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(String::new()),
            Err(e) => return Err(io_err("read", &state_path)(e)),
        };

        let mut records = Vec::new();
        let mut segments = BTreeMap::new();
        let mut corrupt = 0u64;
        let mut corrupt_bytes = 0u64;
        let mut max_last_seq = 0u64;
        let mut prev_rid = None;
        for (i, &id) in seg_ids.iter().enumerate() {
            let path = seg_path(&dir, id);
            let data = fs::read(&path).map_err(io_err("read", &path))?;
            let scan = scan_segment(id, &data, &mut prev_rid);
            corrupt += scan.corrupt;
            corrupt_bytes += scan.corrupt_bytes;
            max_last_seq = max_last_seq.max(scan.max_last_seq);
            let mut size = data.len() as u64;
            if scan.corrupt > 0 {
                tracing::warn!(
                    segment = %path.display(),
                    regions = scan.corrupt,
                    bytes = scan.corrupt_bytes,
                    "spool: skipped corrupt records"
                );
            }
            if scan.torn_tail && i + 1 == seg_ids.len() {
                // A torn final write: cut it so appends continue after the last good record.
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_err("open", &path))?;
                f.set_len(scan.valid_end as u64)
                    .and_then(|()| f.sync_all())
                    .map_err(io_err("truncate", &path))?;
                size = scan.valid_end as u64;
            }
            records.extend(scan.records);
            segments.insert(id, size);
        }

        let (state, acked, in_flight, last_seq) = match loaded {
            Ok(st) => (
                StateRecovery::Loaded,
                st.acked,
                st.in_flight.map(|state| InFlight {
                    state,
                    cached: None,
                }),
                st.last_seq,
            ),
            Err(reason) => {
                let state = if !reason.is_empty() {
                    tracing::warn!(%reason, "spool: state file unusable; resending every event present");
                    StateRecovery::Corrupt(reason)
                } else if seg_ids.is_empty() {
                    StateRecovery::Fresh
                } else {
                    tracing::warn!("spool: state file missing; resending every event present");
                    StateRecovery::Missing
                };
                (state, Cursor::default(), None, max_last_seq)
            }
        };

        let unsent_from = in_flight.as_ref().map_or(acked, |f| f.state.end);
        let next_rid = [
            prev_rid.map_or(0, |r| r + 1),
            acked.first_untouched_rid(),
            unsent_from.first_untouched_rid(),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        let next_seg = seg_ids.last().map_or(1, |s| s + 1);
        let bytes = segments.values().sum();

        let mut spool = Spool {
            config,
            records,
            segments,
            bytes,
            next_seg,
            next_rid,
            acked,
            in_flight,
            last_seq,
            pending: 0,
            corrupt_records: corrupt,
            dropped: Counts::default(),
            rejected_events: 0,
        };
        if state != StateRecovery::Loaded {
            spool.write_state(&spool.state_file())?;
        }
        spool.delete_delivered_segments()?;
        spool.recompute_pending();

        let report = OpenReport {
            state,
            corrupt_records: corrupt,
            corrupt_bytes,
            pending_events: spool.pending,
            in_flight_seq: spool.in_flight.as_ref().map(|f| f.state.seq),
            segments: spool.segments.len(),
        };
        Ok((spool, report))
    }

    /// Writes `events` as one record (fsynced before returning), making room by the drop
    /// policy of the module documentation if the spool is full.
    pub fn append(&mut self, events: Vec<Event>) -> Result<AppendOutcome, SpoolError> {
        let mut stored = 0;
        let mut dropped = Counts::default();
        let limit = self.append_limit().min(MAX_PAYLOAD as u64);
        let mut chunk: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut chunk_bytes = 0u64;
        for ev in events {
            let json = serde_json::to_vec(&ev)?;
            let sev = sev_index(ev.severity);
            let len = json.len() as u64;
            if len + MAX_OVERHEAD as u64 > limit {
                // Cannot fit even in an empty spool.
                dropped.0[sev] += 1;
                self.dropped.0[sev] += 1;
                continue;
            }
            if chunk_bytes + len + 1 + MAX_OVERHEAD as u64 > MAX_PAYLOAD as u64 {
                // Too much for one record: split (each part is its own record).
                stored += self.append_record(std::mem::take(&mut chunk), &mut dropped)?;
                chunk_bytes = 0;
            }
            chunk_bytes += len + 1;
            chunk.push((sev, json));
        }
        stored += self.append_record(chunk, &mut dropped)?;
        Ok(AppendOutcome {
            stored,
            dropped: dropped.to_map(),
        })
    }

    /// Writes one record of encoded events (severity index, JSON), making room first;
    /// returns how many were stored and adds every drop to `dropped` (and the stats).
    fn append_record(
        &mut self,
        events: Vec<(usize, Vec<u8>)>,
        dropped: &mut Counts,
    ) -> Result<usize, SpoolError> {
        if events.is_empty() {
            return Ok(0);
        }
        let rid = self.next_rid;
        let last_seq = self.last_seq;
        let mut incoming = Candidate::new(record_overhead(rid, last_seq));
        for (sev, json) in &events {
            incoming.push(*sev, json.len() as u64);
        }
        let max = self.append_limit();
        for _round in 0..4 {
            if incoming.kept == 0 || self.bytes + incoming.size() <= max {
                break;
            }
            let need = self.bytes + incoming.size() - max;
            let plan = self.plan_room(need, &mut incoming)?;
            self.execute(&plan, dropped)?;
        }
        if incoming.kept > 0 && self.bytes + incoming.size() > max {
            // Only untouchable data (in flight, partly delivered) is left and it fills the
            // spool: nothing incoming fits.
            for i in 0..incoming.keep.len() {
                if incoming.keep[i] {
                    incoming.drop_at(i);
                }
            }
        }
        let mut kept = Vec::with_capacity(incoming.kept);
        let mut sev = [0u32; 5];
        for ((s, json), keep) in events.into_iter().zip(&incoming.keep) {
            if *keep {
                sev[s] += 1;
                kept.push(json);
            } else {
                dropped.0[s] += 1;
                self.dropped.0[s] += 1;
            }
        }
        if kept.is_empty() {
            return Ok(0);
        }
        let rec = encode_record(rid, last_seq, &kept);
        debug_assert_eq!(rec.len() as u64, incoming.size());
        self.write_record(&rec, rid, kept.len() as u32, sev)?;
        Ok(kept.len())
    }

    fn write_record(
        &mut self,
        rec: &[u8],
        rid: u64,
        count: u32,
        sev: [u32; 5],
    ) -> Result<(), SpoolError> {
        let len = rec.len() as u64;
        let seg = match self.segments.last_key_value() {
            Some((&id, &size)) if size == 0 || size + len <= self.config.segment_bytes => id,
            _ => self.next_seg,
        };
        let new_file = !self.segments.contains_key(&seg);
        let path = seg_path(&self.config.dir, seg);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        if new_file {
            sync_dir(&self.config.dir)?;
            self.next_seg = seg + 1;
        }
        // The real end of the file, in case an earlier failed write left bytes behind.
        let offset = f.metadata().map_err(io_err("stat", &path))?.len();
        if let Err(e) = f.write_all(rec).and_then(|()| f.sync_data()) {
            // Best effort: do not leave a partial record for the next append to follow.
            let _ = f.set_len(offset);
            return Err(io_err("write", &path)(e));
        }
        let old = self.segments.insert(seg, offset + len).unwrap_or(0);
        self.bytes = self.bytes - old + offset + len;
        self.records.push(RecordMeta {
            rid,
            seg,
            offset,
            len,
            count,
            sev,
        });
        self.next_rid = rid + 1;
        self.pending += u64::from(count);
        Ok(())
    }

    /// Appends keep the spool this far under `max_bytes`, so seq markers rarely need room.
    fn append_limit(&self) -> u64 {
        let reserve = (4 * (MAX_OVERHEAD as u64)).min(self.config.max_bytes / 8);
        self.config.max_bytes - reserve
    }

    /// Position after the in-flight batch (or the acked position): unsent events start here.
    fn unsent_from(&self) -> Cursor {
        self.in_flight.as_ref().map_or(self.acked, |f| f.state.end)
    }

    /// Decides what to remove to free `need` bytes; marks dropped incoming events in
    /// `incoming`. Reads only the records it considers.
    fn plan_room(&self, need: u64, incoming: &mut Candidate) -> Result<Plan, SpoolError> {
        let mut plan = Plan::default();
        let need = need as i64;
        let margin = need + (self.config.max_bytes / 32) as i64;
        let mut freed: i64 = 0;

        let delivered = self.records.partition_point(|r| r.rid < self.acked.rid);
        if delivered > 0 {
            plan.reclaim = true;
            freed += self.records[..delivered]
                .iter()
                .map(|r| r.len as i64)
                .sum::<i64>();
            if freed >= need {
                return Ok(plan);
            }
        }

        let first = self.unsent_from().first_untouched_rid();
        let start = self.records.partition_point(|r| r.rid < first);
        let mut cache = None;
        'tiers: for s in 0..5 {
            for meta in &self.records[start..] {
                if meta.sev[s] == 0 || plan.corrupt.contains(&meta.rid) {
                    continue;
                }
                let c = match plan.touched.entry(meta.rid) {
                    Entry::Occupied(o) => o.into_mut(),
                    Entry::Vacant(v) => match read_payload(&self.config.dir, meta, &mut cache)? {
                        None => {
                            plan.corrupt.insert(meta.rid);
                            freed += meta.len as i64;
                            continue;
                        }
                        Some(p) => {
                            let c = Candidate::from_payload(&p)?;
                            freed += meta.len as i64 - c.size() as i64;
                            v.insert(c)
                        }
                    },
                };
                let base = freed;
                let (saved, done) = c.drop_severity(s, |saved| base + saved as i64 >= margin);
                freed += saved as i64;
                if done {
                    break 'tiers;
                }
            }
            if freed >= need {
                break;
            }
            let base = freed;
            let (saved, done) = incoming.drop_severity(s, |saved| base + saved as i64 >= need);
            freed += saved as i64;
            if done {
                break;
            }
        }
        Ok(plan)
    }

    /// Carries out a plan by rewriting the affected segments; adds the stored events
    /// dropped to `dropped` (and the stats) segment by segment, as they really go.
    fn execute(&mut self, plan: &Plan, dropped: &mut Counts) -> Result<(), SpoolError> {
        self.corrupt_records += plan.corrupt.len() as u64;
        let mut affected = BTreeSet::new();
        for r in &self.records {
            if (plan.reclaim && r.rid < self.acked.rid)
                || plan.touched.contains_key(&r.rid)
                || plan.corrupt.contains(&r.rid)
            {
                affected.insert(r.seg);
            }
        }
        let mut result = Ok(());
        for &seg in &affected {
            result = self.rewrite_segment(seg, plan, dropped);
            if result.is_err() {
                break;
            }
        }
        self.recompute_pending();
        result?;
        if !affected.is_empty() {
            sync_dir(&self.config.dir)?;
        }
        Ok(())
    }

    fn rewrite_segment(
        &mut self,
        seg: u64,
        plan: &Plan,
        dropped: &mut Counts,
    ) -> Result<(), SpoolError> {
        let path = seg_path(&self.config.dir, seg);
        let data = fs::read(&path).map_err(io_err("read", &path))?;
        let lo = self.records.partition_point(|r| r.seg < seg);
        let hi = self.records.partition_point(|r| r.seg <= seg);
        let mut out = Vec::with_capacity(data.len());
        let mut metas = Vec::with_capacity(hi - lo);
        let mut seg_dropped = Counts::default();
        let mut corrupt = 0u64;
        for meta in &self.records[lo..hi] {
            if (plan.reclaim && meta.rid < self.acked.rid) || plan.corrupt.contains(&meta.rid) {
                continue;
            }
            let Some(raw) = data.get(meta.offset as usize..(meta.offset + meta.len) as usize)
            else {
                corrupt += 1;
                continue;
            };
            let offset = out.len() as u64;
            let parsed = match plan.touched.get(&meta.rid) {
                None => None,
                Some(c) => match parse_record(raw) {
                    Ok((p, _)) if p.events.len() == c.keep.len() => Some((p, c)),
                    Ok(_) => None,
                    Err(_) => {
                        corrupt += 1;
                        continue;
                    }
                },
            };
            let Some((p, c)) = parsed else {
                out.extend_from_slice(raw);
                metas.push(RecordMeta {
                    offset,
                    ..meta.clone()
                });
                continue;
            };
            let mut kept = Vec::with_capacity(c.kept);
            let mut sev = [0u32; 5];
            for (ev, keep) in p.events.iter().zip(&c.keep) {
                let s = sev_index(ev.severity);
                if *keep {
                    kept.push(serde_json::to_vec(ev)?);
                    sev[s] += 1;
                } else {
                    seg_dropped.0[s] += 1;
                }
            }
            if kept.is_empty() {
                continue;
            }
            let rec = encode_record(p.rid, p.last_seq, &kept);
            out.extend_from_slice(&rec);
            metas.push(RecordMeta {
                rid: meta.rid,
                seg,
                offset,
                len: rec.len() as u64,
                count: kept.len() as u32,
                sev,
            });
        }

        if out.is_empty() {
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
        } else {
            let tmp = path.with_extension(format!("log{TMP_SUFFIX}"));
            let write = || -> io::Result<()> {
                let mut f = File::create(&tmp)?;
                f.write_all(&out)?;
                f.sync_all()
            };
            if let Err(e) = write() {
                let _ = fs::remove_file(&tmp);
                return Err(io_err("write", &tmp)(e));
            }
            fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
        }
        let old = self.segments.get(&seg).copied().unwrap_or(0);
        if out.is_empty() {
            self.segments.remove(&seg);
        } else {
            self.segments.insert(seg, out.len() as u64);
        }
        self.bytes = self.bytes - old + out.len() as u64;
        self.records.splice(lo..hi, metas);
        self.corrupt_records += corrupt;
        dropped.add(&seg_dropped);
        self.dropped.add(&seg_dropped);
        Ok(())
    }

    /// The batch to send: the in-flight one again if there is one, else a new batch of up
    /// to `max_events` (at least 1) of the oldest unsent events with `seq = last_seq + 1`,
    /// persisted as in flight before it is returned. `None` when nothing is pending.
    pub fn next_batch(&mut self, max_events: usize) -> Result<Option<Batch>, SpoolError> {
        if let Some(f) = &self.in_flight {
            let seq = f.state.seq;
            if let Some(events) = &f.cached {
                return Ok(Some(Batch {
                    seq,
                    events: events.clone(),
                }));
            }
            let want = f.state.clone();
            let (events, _) = self.collect(self.acked, Some(want.end), usize::MAX)?;
            if events.is_empty() {
                // Nothing of it survived (corruption): the seq stays used; the server sees
                // the gap, which is the truth.
                tracing::warn!(seq, "spool: in-flight batch unreadable; skipping it");
                self.finish(seq, false)?;
            } else {
                if events.len() as u64 != want.events
                    || events.first().map(|e| e.id) != want.first_id
                {
                    tracing::warn!(
                        seq,
                        expected = want.events,
                        found = events.len(),
                        "spool: in-flight batch partly unreadable; resending what is left"
                    );
                }
                if let Some(f) = &mut self.in_flight {
                    f.cached = Some(events.clone());
                }
                return Ok(Some(Batch { seq, events }));
            }
        }

        if self.pending == 0 {
            return Ok(None);
        }
        // The seq marker goes first: making room for it may compact unsent records, which
        // must happen before they become the batch.
        self.write_seq_marker(self.last_seq + 1)?;
        let (events, end) = self.collect(self.acked, None, max_events.max(1))?;
        if events.is_empty() {
            return Ok(None);
        }
        let state = InFlightState {
            seq: self.last_seq + 1,
            end,
            events: events.len() as u64,
            first_id: events.first().map(|e| e.id),
        };
        let file = StateFile {
            version: STATE_VERSION,
            last_seq: state.seq,
            acked: self.acked,
            in_flight: Some(state.clone()),
        };
        self.write_state(&file)?;
        self.last_seq = state.seq;
        let seq = state.seq;
        self.in_flight = Some(InFlight {
            state,
            cached: Some(events.clone()),
        });
        Ok(Some(Batch { seq, events }))
    }

    /// Reads events from `from` up to `until` (exclusive) or `max` events; returns them and
    /// the position after the last one. Unreadable records are forgotten and counted.
    fn collect(
        &mut self,
        from: Cursor,
        until: Option<Cursor>,
        max: usize,
    ) -> Result<(Vec<Event>, Cursor), SpoolError> {
        let mut out = Vec::new();
        let mut end = from;
        let mut bad = Vec::new();
        let mut cache = None;
        let start = self.records.partition_point(|r| r.rid < from.rid);
        for meta in &self.records[start..] {
            if out.len() >= max {
                break;
            }
            if let Some(u) = until
                && (meta.rid > u.rid || (meta.rid == u.rid && u.skip == 0))
            {
                break;
            }
            if meta.count == 0 {
                // A seq marker: no events.
                end = Cursor {
                    rid: meta.rid + 1,
                    skip: 0,
                };
                continue;
            }
            let Some(p) = read_payload(&self.config.dir, meta, &mut cache)? else {
                bad.push(meta.rid);
                end = Cursor {
                    rid: meta.rid + 1,
                    skip: 0,
                };
                continue;
            };
            let n = p.events.len();
            let skip = if meta.rid == from.rid {
                from.skip as usize
            } else {
                0
            };
            let limit = match until {
                Some(u) if u.rid == meta.rid => (u.skip as usize).min(n),
                _ => n,
            };
            let mut idx = skip;
            for ev in p.events.into_iter().take(limit).skip(skip) {
                if out.len() >= max {
                    break;
                }
                out.push(ev);
                idx += 1;
            }
            end = if idx >= n {
                Cursor {
                    rid: meta.rid + 1,
                    skip: 0,
                }
            } else {
                Cursor {
                    rid: meta.rid,
                    skip: idx as u32,
                }
            };
        }
        if !bad.is_empty() {
            tracing::warn!(records = bad.len(), "spool: records became unreadable");
            self.corrupt_records += bad.len() as u64;
            self.records.retain(|r| !bad.contains(&r.rid));
            self.recompute_pending();
        }
        Ok((out, end))
    }

    /// The server stored batch `seq`: it is delivered; fully delivered segments are
    /// deleted. Returns the number of events in the batch. Error (and no change) if `seq`
    /// is not the batch in flight.
    pub fn ack(&mut self, seq: u64) -> Result<u64, SpoolError> {
        self.finish(seq, false)
    }

    /// The server permanently refused batch `seq` (e.g. HTTP 400): like [`Spool::ack`], but
    /// its events are counted in [`SpoolStats::rejected_events`].
    pub fn discard(&mut self, seq: u64) -> Result<u64, SpoolError> {
        self.finish(seq, true)
    }

    fn finish(&mut self, seq: u64, rejected: bool) -> Result<u64, SpoolError> {
        let state = match &self.in_flight {
            Some(f) if f.state.seq == seq => f.state.clone(),
            other => {
                return Err(SpoolError::NotInFlight {
                    seq,
                    in_flight: other.as_ref().map(|f| f.state.seq),
                });
            }
        };
        let events = self
            .in_flight
            .as_ref()
            .and_then(|f| f.cached.as_ref())
            .map_or(state.events, |e| e.len() as u64);
        let file = StateFile {
            version: STATE_VERSION,
            last_seq: self.last_seq,
            acked: state.end,
            in_flight: None,
        };
        self.write_state(&file)?;
        self.acked = state.end;
        self.in_flight = None;
        if rejected {
            self.rejected_events += events;
        }
        self.recompute_pending();
        self.delete_delivered_segments()?;
        Ok(events)
    }

    /// Appends a record without events whose `last_seq` is `seq` (fsynced), so that the
    /// highest issued seq can be recovered from the segments if the state file is lost.
    /// Uses the reserve kept free by appends; if the spool is full it makes room like an
    /// append (delivered bytes first), and if even that fails the marker is skipped: the
    /// byte bound wins.
    fn write_seq_marker(&mut self, seq: u64) -> Result<(), SpoolError> {
        let rid = self.next_rid;
        let rec = encode_record(rid, seq, &[]);
        let len = rec.len() as u64;
        let max = self.config.max_bytes;
        if self.bytes + len > max {
            let plan = self.plan_room(self.bytes + len - max, &mut Candidate::new(0))?;
            self.execute(&plan, &mut Counts::default())?;
        }
        if self.bytes + len > max {
            tracing::warn!(seq, "spool: full of undeliverable data; seq marker skipped");
            return Ok(());
        }
        self.write_record(&rec, rid, 0, [0; 5])
    }

    /// Deletes the segments before the first record with unacked events (seq markers do
    /// not hold a segment: once no event needs them, a later record or the state carries
    /// the seq).
    fn delete_delivered_segments(&mut self) -> Result<(), SpoolError> {
        let first_pending = self
            .records
            .iter()
            .position(|r| r.rid >= self.acked.rid && r.count > 0)
            .unwrap_or(self.records.len());
        let doomed: Vec<u64> = match self.records.get(first_pending) {
            Some(r) => self.segments.range(..r.seg).map(|(&s, _)| s).collect(),
            None => self.segments.keys().copied().collect(),
        };
        if doomed.is_empty() {
            return Ok(());
        }
        for seg in &doomed {
            let path = seg_path(&self.config.dir, *seg);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e)),
            }
            if let Some(size) = self.segments.remove(seg) {
                self.bytes -= size;
            }
        }
        self.records.retain(|r| self.segments.contains_key(&r.seg));
        sync_dir(&self.config.dir)
    }

    fn count_from(&self, c: Cursor) -> u64 {
        let i = self.records.partition_point(|r| r.rid < c.rid);
        self.records[i..]
            .iter()
            .map(|r| {
                let skip = if r.rid == c.rid { c.skip } else { 0 };
                u64::from(r.count.saturating_sub(skip))
            })
            .sum()
    }

    fn recompute_pending(&mut self) {
        self.pending = self.count_from(self.acked);
    }

    fn state_file(&self) -> StateFile {
        StateFile {
            version: STATE_VERSION,
            last_seq: self.last_seq,
            acked: self.acked,
            in_flight: self.in_flight.as_ref().map(|f| f.state.clone()),
        }
    }

    fn write_state(&self, st: &StateFile) -> Result<(), SpoolError> {
        let content = encode_state(st)?;
        let dir = &self.config.dir;
        let tmp = dir.join(STATE_TMP);
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(content.as_bytes())?;
            f.sync_all()
        };
        write().map_err(io_err("write", &tmp))?;
        let path = dir.join(STATE_FILE);
        fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
        sync_dir(dir)
    }

    /// Events not yet acknowledged (including the in-flight batch).
    pub fn pending_events(&self) -> u64 {
        self.pending
    }

    /// Seq of the batch in flight, if any.
    pub fn in_flight_seq(&self) -> Option<u64> {
        self.in_flight.as_ref().map(|f| f.state.seq)
    }

    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    pub fn stats(&self) -> SpoolStats {
        let in_flight_events = match &self.in_flight {
            Some(f) => self.pending - self.count_from(f.state.end).min(self.pending),
            None => 0,
        };
        SpoolStats {
            bytes: self.bytes,
            max_bytes: self.config.max_bytes,
            pending_events: self.pending,
            in_flight_events,
            in_flight_seq: self.in_flight_seq(),
            segments: self.segments.len(),
            corrupt_records: self.corrupt_records,
            dropped_by_severity: self.dropped.to_map(),
            rejected_events: self.rejected_events,
            last_seq: self.last_seq,
        }
    }
}
