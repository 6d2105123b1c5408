//! The spool's guarantees tested end to end through its API: order and identical resends,
//! crashes at every step (with and without the state file), torn and corrupt records, the
//! drop policy of a full spool, and segment deletion. They exercise the format, the index
//! and the drop planning together, so they live apart from any one of them.

use std::collections::HashSet;

use chrono::DateTime;
use tapio_proto::{AttrValue, Entity, EventType};
use ulid::Ulid;

use super::*;

const DEBUG: EventSeverity = EventSeverity::Debug;
const INFO: EventSeverity = EventSeverity::Info;
const WARNING: EventSeverity = EventSeverity::Warning;
const ERROR: EventSeverity = EventSeverity::Error;
const CRITICAL: EventSeverity = EventSeverity::Critical;

fn ev(severity: EventSeverity, n: usize, pad: usize) -> Event {
    Event {
        id: Ulid::new(),
        time: DateTime::from_timestamp(1_700_000_000 + n as i64, 0).expect("valid time"),
        kind: EventType::parse("kernel.test.spooled").expect("valid type"),
        severity,
        entity: Entity::default(),
        attributes: BTreeMap::from([
            ("n".to_owned(), AttrValue::Int(n as i64)),
            ("pad".to_owned(), AttrValue::String("x".repeat(pad))),
        ]),
        object: None,
    }
}

fn evs(severity: EventSeverity, count: usize) -> Vec<Event> {
    (0..count).map(|n| ev(severity, n, 10)).collect()
}

fn config(dir: &Path) -> SpoolConfig {
    SpoolConfig {
        dir: dir.to_path_buf(),
        max_bytes: 1 << 20,
        segment_bytes: 4096,
    }
}

fn open(cfg: &SpoolConfig) -> (Spool, OpenReport) {
    let (spool, report) = Spool::open(cfg.clone()).expect("open spool");
    spool.check_invariants();
    (spool, report)
}

fn ids(events: &[Event]) -> Vec<Ulid> {
    events.iter().map(|e| e.id).collect()
}

fn seg_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(parse_seg_name)
                .is_some()
        })
        .collect();
    v.sort();
    v
}

/// Mimics the server's batch handling (tapio-store): a batch with a known (seq, first
/// event id) stores nothing; a known seq with another first id is a sequence reset;
/// events are deduplicated by id.
#[derive(Default)]
struct FakeServer {
    batches: BTreeMap<u64, Option<Ulid>>,
    seen: HashSet<Ulid>,
    stored: Vec<Ulid>,
}

impl FakeServer {
    fn receive(&mut self, b: &Batch) {
        let first = b.events.first().map(|e| e.id);
        if let Some(prior) = self.batches.get(&b.seq) {
            if *prior == first {
                return;
            }
            self.batches.retain(|s, _| *s <= b.seq);
        }
        self.batches.insert(b.seq, first);
        for e in &b.events {
            if self.seen.insert(e.id) {
                self.stored.push(e.id);
            }
        }
    }
}

impl Spool {
    /// Index, byte counts and pending count agree with the files on disk.
    fn check_invariants(&self) {
        let on_disk: BTreeMap<u64, u64> = seg_files(&self.config.dir)
            .iter()
            .map(|p| {
                let id = p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(parse_seg_name)
                    .expect("segment name");
                (id, fs::metadata(p).expect("stat").len())
            })
            .collect();
        assert_eq!(on_disk, self.segments, "segment sizes match the files");
        assert_eq!(self.bytes, on_disk.values().sum::<u64>());
        assert!(
            self.records
                .windows(2)
                .all(|w| w[0].rid < w[1].rid && (w[0].seg, w[0].offset) < (w[1].seg, w[1].offset))
        );
        assert!(
            self.records
                .iter()
                .all(|r| self.segments.contains_key(&r.seg) && r.rid < self.next_rid)
        );
        assert_eq!(self.pending, self.count_from(self.acked));
        let mut cache = None;
        for r in &self.records {
            let p = read_payload(&self.config.dir, r, &mut cache)
                .expect("read")
                .expect("indexed record is readable");
            assert_eq!(p.events.len() as u32, r.count);
            assert_eq!(sev_counts(&p.events), r.sev);
        }
    }

    fn drain_into(&mut self, server: &mut FakeServer, max: usize) {
        while let Some(b) = self.next_batch(max).expect("next batch") {
            server.receive(&b);
            self.ack(b.seq).expect("ack");
        }
        self.check_invariants();
    }
}

#[test]
fn round_trip_in_order_and_fresh_seq_starts_at_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path());
    let (mut spool, report) = open(&cfg);
    assert_eq!(report.state, StateRecovery::Fresh);
    assert_eq!(spool.stats().last_seq, 0);
    assert_eq!(spool.next_batch(10).expect("next"), None);

    let mut all = Vec::new();
    for (sev, n) in [(INFO, 3), (CRITICAL, 1), (WARNING, 4)] {
        let batch = evs(sev, n);
        all.extend(batch.clone());
        let out = spool.append(batch).expect("append");
        assert_eq!(out.stored, n);
        assert!(out.dropped.is_empty());
    }
    assert_eq!(spool.append(Vec::new()).expect("append").stored, 0);
    assert_eq!(spool.pending_events(), 8);
    spool.check_invariants();

    let b = spool.next_batch(100).expect("next").expect("batch");
    assert_eq!(b.seq, 1, "a fresh spool starts at seq 1");
    assert_eq!(b.events, all, "same events, same order");
    assert_eq!(spool.stats().in_flight_events, 8);
    assert_eq!(spool.ack(1).expect("ack"), 8);
    assert_eq!(spool.pending_events(), 0);
    assert_eq!(spool.next_batch(100).expect("next"), None);
    assert_eq!(spool.stats().last_seq, 1);
    spool.check_invariants();
}

#[test]
fn batches_split_records_and_keep_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut spool, _) = open(&config(tmp.path()));
    let a = evs(INFO, 5);
    let b = evs(ERROR, 5);
    spool.append(a.clone()).expect("append");
    spool.append(b.clone()).expect("append");
    let mut got = Vec::new();
    let mut seqs = Vec::new();
    while let Some(batch) = spool.next_batch(3).expect("next") {
        assert!(batch.events.len() <= 3);
        seqs.push(batch.seq);
        got.extend(batch.events);
        spool.ack(*seqs.last().expect("seq")).expect("ack");
    }
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    assert_eq!(ids(&got), ids(&[a, b].concat()));
    spool.check_invariants();
}

#[test]
fn reopen_resends_in_flight_identically_and_continues_seq() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path());
    let events: Vec<Event> = (0..10).map(|n| ev(WARNING, n, 10)).collect();
    let (mut spool, _) = open(&cfg);
    for pair in events.chunks(2) {
        spool.append(pair.to_vec()).expect("append");
    }
    let b1 = spool.next_batch(3).expect("next").expect("batch");
    assert_eq!((b1.seq, ids(&b1.events)), (1, ids(&events[..3])));
    spool.ack(1).expect("ack");
    let b2 = spool.next_batch(4).expect("next").expect("batch");
    assert_eq!((b2.seq, ids(&b2.events)), (2, ids(&events[3..7])));
    // Asking again without an ack returns the same batch, whatever the size asked.
    assert_eq!(spool.next_batch(1).expect("next"), Some(b2.clone()));
    drop(spool); // no ack: the agent dies here

    let (mut spool, report) = open(&cfg);
    assert_eq!(report.state, StateRecovery::Loaded);
    assert_eq!(report.in_flight_seq, Some(2));
    assert_eq!(report.pending_events, 7, "acked events are not pending");
    let again = spool.next_batch(100).expect("next").expect("batch");
    assert_eq!(again, b2, "same seq, same events, same order");
    spool.ack(2).expect("ack");
    let b3 = spool.next_batch(100).expect("next").expect("batch");
    assert_eq!((b3.seq, ids(&b3.events)), (3, ids(&events[7..])));
    spool.ack(3).expect("ack");
    drop(spool);

    let (mut spool, report) = open(&cfg);
    assert_eq!(report.pending_events, 0);
    assert_eq!(
        spool.next_batch(100).expect("next"),
        None,
        "acked not resent"
    );
    spool.append(evs(INFO, 1)).expect("append");
    let b4 = spool.next_batch(100).expect("next").expect("batch");
    assert_eq!(b4.seq, 4, "seq continues after a restart");
}

#[test]
fn exactly_once_across_crashes_between_send_and_ack() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = SpoolConfig {
        segment_bytes: 700,
        ..config(tmp.path())
    };
    let mut server = FakeServer::default();
    let mut appended = Vec::new();
    let (mut spool, _) = open(&cfg);
    // A deterministic mix of appends, sends that are lost, sends whose ack is lost, and
    // kill -9 at every step between them.
    for step in 0..60usize {
        let batch: Vec<Event> = (0..1 + step % 3).map(|n| ev(INFO, n, 20)).collect();
        appended.extend(ids(&batch));
        spool.append(batch).expect("append");
        if step % 2 == 0 {
            let b = spool
                .next_batch(1 + step % 4)
                .expect("next")
                .expect("batch");
            match step % 5 {
                0 => {}                  // request lost: not received, not acked
                1 => server.receive(&b), // received, answer lost
                _ => {
                    server.receive(&b);
                    spool.ack(b.seq).expect("ack");
                }
            }
        }
        if step % 3 == 1 {
            drop(spool);
            spool = open(&cfg).0;
        }
    }
    spool.drain_into(&mut server, 4);
    assert_eq!(
        server.stored, appended,
        "every event stored exactly once, in order"
    );
    assert_eq!(spool.stats().segments, 0);
}

#[test]
fn no_loss_across_crashes_that_also_lose_the_state_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = SpoolConfig {
        segment_bytes: 900,
        ..config(tmp.path())
    };
    let mut server = FakeServer::default();
    let mut appended = Vec::new();
    let (mut spool, _) = open(&cfg);
    for step in 0..80usize {
        let batch: Vec<Event> = (0..1 + step % 4).map(|n| ev(ERROR, n, 20)).collect();
        appended.extend(ids(&batch));
        spool.append(batch).expect("append");
        if step % 3 != 2 {
            // Batch sizes vary, so a resend after a lost state is shaped differently.
            let b = spool
                .next_batch(1 + step % 5)
                .expect("next")
                .expect("batch");
            server.receive(&b);
            if step % 4 != 0 {
                spool.ack(b.seq).expect("ack");
            }
        }
        if step % 7 == 3 {
            drop(spool);
            if step % 2 == 1 {
                fs::remove_file(tmp.path().join(STATE_FILE)).expect("remove state");
            }
            spool = open(&cfg).0;
        }
    }
    spool.drain_into(&mut server, 3);
    assert_eq!(
        server.stored, appended,
        "each event stored once, in append order"
    );
}

#[test]
fn torn_final_record_is_skipped_counted_and_cut() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path());
    let (mut spool, _) = open(&cfg);
    let a = evs(INFO, 2);
    let b = evs(ERROR, 2);
    spool.append(a.clone()).expect("append");
    spool.append(b.clone()).expect("append");
    spool.append(evs(CRITICAL, 2)).expect("append");
    drop(spool);

    // A torn write: the last record lost its final bytes.
    let seg = seg_files(tmp.path()).pop().expect("segment");
    let len = fs::metadata(&seg).expect("stat").len();
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .and_then(|f| f.set_len(len - 7))
        .expect("truncate");

    let (mut spool, report) = open(&cfg);
    assert_eq!(report.corrupt_records, 1);
    assert_eq!(report.pending_events, 4);
    assert_eq!(spool.stats().corrupt_records, 1);
    let c = evs(WARNING, 3);
    spool.append(c.clone()).expect("append after recovery");
    spool.check_invariants();
    drop(spool);

    let (mut spool, report) = open(&cfg);
    assert_eq!(
        report.corrupt_records, 0,
        "the torn tail was cut, not found again"
    );
    let batch = spool.next_batch(100).expect("next").expect("batch");
    assert_eq!(ids(&batch.events), ids(&[a, b, c].concat()));
}

#[test]
fn garbage_in_the_middle_is_skipped_and_later_records_recovered() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path());
    let (mut spool, _) = open(&cfg);
    let recs: Vec<Vec<Event>> = (0..4).map(|_| evs(WARNING, 2)).collect();
    for r in &recs {
        spool.append(r.clone()).expect("append");
    }
    let lens: Vec<u64> = spool.records.iter().map(|r| r.len).collect();
    drop(spool);

    let seg = seg_files(tmp.path()).pop().expect("segment");
    let mut data = fs::read(&seg).expect("read");
    // Overwrite the middle of record 1 (bad CRC) ...
    let r1 = lens[0] as usize;
    data[r1 + 20..r1 + 40].fill(b'#');
    // ... and insert junk (including a fake header) between records 2 and 3.
    let r3 = (lens[0] + lens[1] + lens[2]) as usize;
    let mut junk = MAGIC_BYTES.to_vec();
    junk.extend_from_slice(&[0xff; 8]);
    junk.extend_from_slice(b"not a record at all");
    data.splice(r3..r3, junk);
    fs::write(&seg, &data).expect("write");

    let (mut spool, report) = open(&cfg);
    assert_eq!(report.corrupt_records, 2);
    assert_eq!(report.pending_events, 6);
    let batch = spool.next_batch(100).expect("next").expect("batch");
    let want: Vec<Event> = [&recs[0], &recs[2], &recs[3]]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    assert_eq!(batch.events, want);
    spool.ack(batch.seq).expect("ack");
    assert_eq!(
        spool.stats().segments,
        0,
        "the damaged segment is gone once delivered"
    );
}

/// Appended and dropped events by severity, checking the bound after every append.
#[derive(Default)]
struct Tally {
    appended: Counts,
    dropped: Counts,
}

impl Counts {
    fn get(&self, s: EventSeverity) -> u64 {
        self.0[sev_index(s)]
    }
    fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    fn add_map(&mut self, m: &BTreeMap<EventSeverity, u64>) {
        for (s, n) in m {
            self.0[sev_index(*s)] += n;
        }
    }
}

fn count(m: &BTreeMap<EventSeverity, u64>, s: EventSeverity) -> u64 {
    m.get(&s).copied().unwrap_or(0)
}

impl Tally {
    fn append(&mut self, spool: &mut Spool, batch: Vec<Event>) -> AppendOutcome {
        for e in &batch {
            self.appended.0[sev_index(e.severity)] += 1;
        }
        let out = spool.append(batch).expect("append");
        self.dropped.add_map(&out.dropped);
        assert!(spool.stats().bytes <= spool.config.max_bytes, "bound held");
        spool.check_invariants();
        out
    }
}

fn pending_by_sev(spool: &Spool) -> Counts {
    let mut c = Counts::default();
    for r in &spool.records {
        for (i, n) in r.sev.iter().enumerate() {
            c.0[i] += u64::from(*n);
        }
    }
    c
}

#[test]
fn full_spool_drops_lowest_severity_first() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = SpoolConfig {
        dir: tmp.path().to_path_buf(),
        max_bytes: 16 * 1024,
        segment_bytes: 2048,
    };
    let (mut spool, _) = open(&cfg);
    let mut t = Tally::default();

    // Fill with info, interleaved with a little debug and critical.
    for n in 0..60 {
        let sev = match n % 10 {
            3 => DEBUG,
            7 => CRITICAL,
            _ => INFO,
        };
        t.append(&mut spool, vec![ev(sev, n, 200)]);
    }
    assert!(t.dropped.total() > 0, "the spool filled up");
    assert_eq!(
        t.dropped.get(WARNING) + t.dropped.get(ERROR) + t.dropped.get(CRITICAL),
        0
    );
    let p = pending_by_sev(&spool);
    assert_eq!(p.get(DEBUG), 0, "debug went before info");
    assert!(p.get(INFO) > 0);

    // Warnings push out the remaining info, never critical.
    for n in 0..40 {
        let out = t.append(&mut spool, vec![ev(WARNING, n, 200)]);
        if count(&out.dropped, WARNING) > 0 {
            assert_eq!(pending_by_sev(&spool).get(INFO), 0, "info before warning");
        }
    }
    let p = pending_by_sev(&spool);
    assert_eq!(p.get(INFO), 0, "info went before warning");
    assert!(t.dropped.get(WARNING) > 0);
    assert_eq!(t.dropped.get(CRITICAL), 0);

    // Criticals push out warnings (oldest first), keeping every critical that fits.
    for n in 0..20 {
        t.append(&mut spool, vec![ev(CRITICAL, n, 200)]);
    }
    let p = pending_by_sev(&spool);
    assert_eq!(
        t.dropped.get(CRITICAL),
        0,
        "criticals fit once warnings are gone"
    );
    assert_eq!(p.get(CRITICAL), t.appended.get(CRITICAL));

    // Conservation: every event is either pending or counted as dropped.
    for s in Counts::ORDER {
        assert_eq!(t.appended.get(s), p.get(s) + t.dropped.get(s), "{s:?}");
    }
    assert_eq!(spool.stats().dropped_by_severity, t.dropped.to_map());
    assert_eq!(spool.stats().pending_events, p.total());

    // The survivors come out in their original order and survive a restart.
    drop(spool);
    let (mut spool, _) = open(&cfg);
    let mut server = FakeServer::default();
    spool.drain_into(&mut server, 1000);
    assert_eq!(server.stored.len() as u64, p.total());
}

#[test]
fn incoming_lowest_dropped_when_it_alone_does_not_fit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = SpoolConfig {
        dir: tmp.path().to_path_buf(),
        max_bytes: 2048,
        segment_bytes: 1024,
    };
    let (mut spool, _) = open(&cfg);
    let mut batch: Vec<Event> = (0..8).map(|n| ev(INFO, n, 300)).collect();
    batch.insert(3, ev(CRITICAL, 99, 300));
    batch.push(ev(ERROR, 100, 300));
    let out = spool.append(batch).expect("append");
    assert!(spool.stats().bytes <= cfg.max_bytes);
    assert_eq!(
        count(&out.dropped, CRITICAL) + count(&out.dropped, ERROR),
        0
    );
    assert_eq!(out.stored as u64 + out.dropped.values().sum::<u64>(), 10);
    let b = spool.next_batch(100).expect("next").expect("batch");
    let sevs: Vec<EventSeverity> = b.events.iter().map(|e| e.severity).collect();
    assert!(sevs.contains(&CRITICAL) && sevs.contains(&ERROR));
    // An event larger than the whole spool is dropped, counted, and nothing else is.
    let huge = ev(CRITICAL, 0, 4096);
    let out = spool.append(vec![huge]).expect("append");
    assert_eq!((out.stored, count(&out.dropped, CRITICAL)), (0, 1));
    assert_eq!(spool.next_batch(100).expect("next"), Some(b));
}

#[test]
fn in_flight_batch_is_never_compacted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = SpoolConfig {
        dir: tmp.path().to_path_buf(),
        max_bytes: 8 * 1024,
        segment_bytes: 1024,
    };
    let (mut spool, _) = open(&cfg);
    for n in 0..10 {
        spool.append(vec![ev(INFO, n, 200)]).expect("append");
    }
    let b = spool.next_batch(4).expect("next").expect("batch");
    for n in 0..60 {
        spool.append(vec![ev(CRITICAL, n, 200)]).expect("append");
        assert!(spool.stats().bytes <= cfg.max_bytes);
    }
    assert!(count(&spool.stats().dropped_by_severity, INFO) > 0);
    spool.check_invariants();
    assert_eq!(spool.next_batch(100).expect("next"), Some(b.clone()));
    drop(spool);
    let (mut spool, _) = open(&cfg);
    assert_eq!(spool.next_batch(100).expect("next"), Some(b.clone()));
    spool.ack(b.seq).expect("ack");
    spool.check_invariants();
}

#[test]
fn segments_deleted_after_ack() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = SpoolConfig {
        segment_bytes: 600,
        ..config(tmp.path())
    };
    let (mut spool, _) = open(&cfg);
    for n in 0..12 {
        spool.append(vec![ev(INFO, n, 100)]).expect("append");
    }
    let segs = spool.stats().segments;
    assert!(segs >= 4, "rolled into {segs} segments");
    assert_eq!(seg_files(tmp.path()).len(), segs);
    let b = spool.next_batch(6).expect("next").expect("batch");
    spool.ack(b.seq).expect("ack");
    let after = spool.stats().segments;
    assert!(
        after < segs && after > 0,
        "delivered segments deleted: {after}"
    );
    assert_eq!(seg_files(tmp.path()).len(), after);
    spool.check_invariants();
    let b = spool.next_batch(100).expect("next").expect("batch");
    spool.ack(b.seq).expect("ack");
    assert_eq!(seg_files(tmp.path()).len(), 0);
    assert_eq!(spool.stats().bytes, 0);
    // And it keeps working afterwards.
    spool.append(evs(INFO, 1)).expect("append");
    assert_eq!(spool.stats().segments, 1);
    spool.check_invariants();
}

#[test]
fn ack_or_discard_of_a_seq_not_in_flight_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut spool, _) = open(&config(tmp.path()));
    assert!(matches!(
        spool.ack(1),
        Err(SpoolError::NotInFlight {
            seq: 1,
            in_flight: None
        })
    ));
    spool.append(evs(INFO, 3)).expect("append");
    let b = spool.next_batch(10).expect("next").expect("batch");
    assert!(matches!(
        spool.ack(7),
        Err(SpoolError::NotInFlight {
            seq: 7,
            in_flight: Some(1)
        })
    ));
    assert!(spool.discard(2).is_err());
    assert_eq!(spool.pending_events(), 3);
    assert_eq!(spool.next_batch(10).expect("next"), Some(b));
    assert_eq!(spool.discard(1).expect("discard"), 3);
    let stats = spool.stats();
    assert_eq!((stats.rejected_events, stats.pending_events), (3, 0));
    assert!(spool.ack(1).is_err(), "already finished");
}

#[test]
fn deleted_state_file_loses_no_unacked_event() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path());
    let mut server = FakeServer::default();
    let mut appended = Vec::new();
    let (mut spool, _) = open(&cfg);
    for n in 0..6 {
        let batch = vec![ev(INFO, n, 10), ev(ERROR, n, 10)];
        appended.extend(ids(&batch));
        spool.append(batch).expect("append");
        // Batches are formed while events trickle in (smaller than later ones will be).
        if n % 2 == 1 {
            let b = spool.next_batch(100).expect("next").expect("batch");
            server.receive(&b);
            spool.ack(b.seq).expect("ack");
        }
    }
    let tail = evs(WARNING, 5);
    appended.extend(ids(&tail));
    spool.append(tail).expect("append");
    let b = spool.next_batch(3).expect("next").expect("batch");
    server.receive(&b); // received, never acked
    let last_seq = spool.stats().last_seq;
    let unacked = spool.pending_events();
    drop(spool);
    fs::remove_file(tmp.path().join(STATE_FILE)).expect("remove state");

    let (mut spool, report) = open(&cfg);
    assert_eq!(report.state, StateRecovery::Missing);
    assert!(report.pending_events >= unacked);
    assert_eq!(
        spool.stats().last_seq,
        last_seq,
        "the seq marker in the segments brings the seq back"
    );
    // Batches are now larger than the one in flight was: with a reused seq and the same
    // first event, the server would have ignored the difference.
    spool.drain_into(&mut server, 100);
    assert!(spool.stats().last_seq > last_seq);
    let stored: HashSet<Ulid> = server.stored.iter().copied().collect();
    assert_eq!(stored.len(), server.stored.len());
    assert!(
        appended.iter().all(|id| stored.contains(id)),
        "no event lost"
    );
}

#[test]
fn corrupt_state_file_falls_back_to_resending() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path());
    let (mut spool, _) = open(&cfg);
    let events = evs(WARNING, 4);
    spool.append(events.clone()).expect("append");
    let b = spool.next_batch(2).expect("next").expect("batch");
    spool.ack(b.seq).expect("ack");
    drop(spool);
    let path = tmp.path().join(STATE_FILE);
    let mut text = fs::read(&path).expect("read");
    text[5] ^= 0x20;
    fs::write(&path, text).expect("write");

    let (mut spool, report) = open(&cfg);
    assert!(matches!(report.state, StateRecovery::Corrupt(_)));
    let b = spool.next_batch(100).expect("next").expect("batch");
    assert_eq!(ids(&b.events), ids(&events), "everything present is resent");
    spool.ack(b.seq).expect("ack");
    drop(spool);
    let (_, report) = open(&cfg);
    assert_eq!(
        report.state,
        StateRecovery::Loaded,
        "a new state file was written"
    );
}

#[test]
fn leftover_tmp_files_and_open_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path());
    let (mut spool, _) = open(&cfg);
    spool.append(evs(INFO, 2)).expect("append");
    drop(spool);
    let seg = seg_files(tmp.path()).pop().expect("segment");
    let stray = seg.with_extension("log.tmp");
    fs::write(&stray, b"half a rewrite").expect("write");
    fs::write(tmp.path().join(STATE_TMP), b"half a state").expect("write");
    let (spool, report) = open(&cfg);
    assert_eq!((report.corrupt_records, report.pending_events), (0, 2));
    assert!(!stray.exists() && !tmp.path().join(STATE_TMP).exists());
    drop(spool);
    assert!(matches!(
        Spool::open(SpoolConfig {
            max_bytes: 0,
            ..cfg
        }),
        Err(SpoolError::Config(_))
    ));
}
