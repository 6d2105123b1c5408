//! The spool's on-disk format (described in the [module documentation](super)): the
//! record header and payload, scanning a segment for valid records and resyncing after
//! damage, segment file names, and the checksummed state file.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tapio_proto::Event;
use ulid::Ulid;

use super::{SpoolError, io_err, sev_index};

pub(super) const MAGIC: u32 = 0xFE53_54F5;
pub(super) const MAGIC_BYTES: [u8; 4] = MAGIC.to_le_bytes();
/// Record header: magic, length, CRC.
pub(super) const HEADER: usize = 12;
/// Largest payload a record may have; anything claiming more is corrupt.
pub(super) const MAX_PAYLOAD: usize = 64 << 20;
/// Upper bound of a record's bytes besides its events (header, `{"rid":..,"last_seq":..,
/// "events":[` with two 20-digit numbers, `]}`).
pub(super) const MAX_OVERHEAD: usize = 96;
pub(super) const PAYLOAD_SUFFIX: &[u8] = b"]}";
pub(super) const STATE_FILE: &str = "spool.state";
pub(super) const STATE_TMP: &str = "spool.state.tmp";
pub(super) const STATE_VERSION: u32 = 1;
pub(super) const SEG_PREFIX: &str = "seg-";
pub(super) const SEG_SUFFIX: &str = ".log";
pub(super) const TMP_SUFFIX: &str = ".tmp";

/// A position in the spool: before event `skip` of record `rid`. Kept normalized:
/// `skip` is 0 or less than the record's event count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(super) struct Cursor {
    pub(super) rid: u64,
    pub(super) skip: u32,
}

impl Cursor {
    /// First rid none of whose events lie before this position.
    pub(super) fn first_untouched_rid(self) -> u64 {
        self.rid + u64::from(self.skip > 0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct InFlightState {
    pub(super) seq: u64,
    /// The batch is every event from the acked position up to here.
    pub(super) end: Cursor,
    pub(super) events: u64,
    pub(super) first_id: Option<Ulid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct StateFile {
    pub(super) version: u32,
    pub(super) last_seq: u64,
    pub(super) acked: Cursor,
    pub(super) in_flight: Option<InFlightState>,
}

#[derive(Debug)]
pub(super) struct InFlight {
    pub(super) state: InFlightState,
    /// The batch as returned (after a restart: rebuilt on the first `next_batch`).
    pub(super) cached: Option<Vec<Event>>,
}

/// Index entry of one valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RecordMeta {
    pub(super) rid: u64,
    pub(super) seg: u64,
    pub(super) offset: u64,
    /// Whole record, header included.
    pub(super) len: u64,
    pub(super) count: u32,
    pub(super) sev: [u32; 5],
}

#[derive(Deserialize)]
pub(super) struct Payload {
    pub(super) rid: u64,
    pub(super) last_seq: u64,
    pub(super) events: Vec<Event>,
}

pub(super) fn sev_counts(events: &[Event]) -> [u32; 5] {
    let mut sev = [0u32; 5];
    for e in events {
        sev[sev_index(e.severity)] += 1;
    }
    sev
}

pub(super) fn payload_prefix(rid: u64, last_seq: u64) -> String {
    format!("{{\"rid\":{rid},\"last_seq\":{last_seq},\"events\":[")
}

/// Bytes of a record besides its events and the commas between them.
pub(super) fn record_overhead(rid: u64, last_seq: u64) -> u64 {
    (HEADER + payload_prefix(rid, last_seq).len() + PAYLOAD_SUFFIX.len()) as u64
}

pub(super) fn record_crc(len_bytes: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len_bytes);
    h.update(payload);
    h.finalize()
}

/// One record: header and `{"rid":..,"last_seq":..,"events":[..]}` built from already
/// encoded events, so its size is exactly `record_overhead + sum(len) + commas`.
pub(super) fn encode_record(rid: u64, last_seq: u64, events: &[Vec<u8>]) -> Vec<u8> {
    let prefix = payload_prefix(rid, last_seq);
    let body: usize = events.iter().map(Vec::len).sum::<usize>() + events.len().saturating_sub(1);
    let payload_len = prefix.len() + body + PAYLOAD_SUFFIX.len();
    let mut out = Vec::with_capacity(HEADER + payload_len);
    out.extend_from_slice(&MAGIC_BYTES);
    out.extend_from_slice(&(payload_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(prefix.as_bytes());
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(e);
    }
    out.extend_from_slice(PAYLOAD_SUFFIX);
    let crc = record_crc(&out[4..8], &out[HEADER..]);
    out[8..12].copy_from_slice(&crc.to_le_bytes());
    out
}

pub(super) fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(super) enum ParseError {
    /// Not a record here (magic, length, truncation or CRC): resync at the next magic.
    Resync,
    /// A well-framed record (CRC matches) whose payload does not decode: skip its bytes.
    Payload(usize),
}

/// Parses the record at the start of `buf`; returns it and its total length.
pub(super) fn parse_record(buf: &[u8]) -> Result<(Payload, usize), ParseError> {
    if buf.len() < HEADER || le_u32(buf, 0) != MAGIC {
        return Err(ParseError::Resync);
    }
    let len = le_u32(buf, 4) as usize;
    if len > MAX_PAYLOAD || buf.len() - HEADER < len {
        return Err(ParseError::Resync);
    }
    let total = HEADER + len;
    let payload = &buf[HEADER..total];
    if record_crc(&buf[4..8], payload) != le_u32(buf, 8) {
        return Err(ParseError::Resync);
    }
    serde_json::from_slice::<Payload>(payload)
        .map(|p| (p, total))
        .map_err(|_| ParseError::Payload(total))
}

pub(super) fn find_magic(data: &[u8], from: usize) -> Option<usize> {
    data.get(from..)?
        .windows(4)
        .position(|w| w == MAGIC_BYTES)
        .map(|p| p + from)
}

/// What a scan of one segment found.
#[derive(Default)]
pub(super) struct Scan {
    pub(super) records: Vec<RecordMeta>,
    pub(super) max_last_seq: u64,
    pub(super) corrupt: u64,
    pub(super) corrupt_bytes: u64,
    /// End of the last well-framed record.
    pub(super) valid_end: usize,
    /// The segment ends in a corrupt region (a torn write).
    pub(super) torn_tail: bool,
}

pub(super) fn scan_segment(seg: u64, data: &[u8], prev_rid: &mut Option<u64>) -> Scan {
    let mut scan = Scan::default();
    let mut pos = 0usize;
    let mut garbage: Option<usize> = None;
    let close_garbage = |scan: &mut Scan, garbage: &mut Option<usize>, pos: usize| {
        if let Some(start) = garbage.take() {
            scan.corrupt += 1;
            scan.corrupt_bytes += (pos - start) as u64;
        }
    };
    while pos < data.len() {
        match parse_record(&data[pos..]) {
            Ok((p, total)) => {
                close_garbage(&mut scan, &mut garbage, pos);
                if prev_rid.is_some_and(|prev| p.rid <= prev) {
                    // Out of order: cannot be placed; treat as corrupt.
                    scan.corrupt += 1;
                    scan.corrupt_bytes += total as u64;
                } else {
                    *prev_rid = Some(p.rid);
                    scan.max_last_seq = scan.max_last_seq.max(p.last_seq);
                    scan.records.push(RecordMeta {
                        rid: p.rid,
                        seg,
                        offset: pos as u64,
                        len: total as u64,
                        count: p.events.len() as u32,
                        sev: sev_counts(&p.events),
                    });
                }
                pos += total;
                scan.valid_end = pos;
            }
            Err(ParseError::Payload(total)) => {
                close_garbage(&mut scan, &mut garbage, pos);
                scan.corrupt += 1;
                scan.corrupt_bytes += total as u64;
                pos += total;
                scan.valid_end = pos;
            }
            Err(ParseError::Resync) => {
                garbage.get_or_insert(pos);
                pos = find_magic(data, pos + 1).unwrap_or(data.len());
            }
        }
    }
    if garbage.is_some() {
        scan.torn_tail = true;
        close_garbage(&mut scan, &mut garbage, data.len());
    }
    scan
}

/// Reads and verifies one indexed record; `None` if it is no longer there intact.
pub(super) fn read_payload(
    dir: &Path,
    meta: &RecordMeta,
    cache: &mut Option<(u64, File)>,
) -> Result<Option<Payload>, SpoolError> {
    if cache.as_ref().map(|(s, _)| *s) != Some(meta.seg) {
        let path = seg_path(dir, meta.seg);
        match File::open(&path) {
            Ok(f) => *cache = Some((meta.seg, f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("open", &path)(e)),
        }
    }
    let Some((_, f)) = cache.as_mut() else {
        return Ok(None);
    };
    let path = seg_path(dir, meta.seg);
    let mut buf = vec![0u8; meta.len as usize];
    f.seek(SeekFrom::Start(meta.offset))
        .map_err(io_err("seek", &path))?;
    match f.read_exact(&mut buf) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(io_err("read", &path)(e)),
    }
    match parse_record(&buf) {
        Ok((p, total)) if total == buf.len() && p.rid == meta.rid => Ok(Some(p)),
        _ => Ok(None),
    }
}

pub(super) fn seg_path(dir: &Path, seg: u64) -> PathBuf {
    dir.join(format!("{SEG_PREFIX}{seg:020}{SEG_SUFFIX}"))
}

pub(super) fn parse_seg_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(SEG_PREFIX)?.strip_suffix(SEG_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

pub(super) fn encode_state(st: &StateFile) -> Result<String, SpoolError> {
    let json = serde_json::to_string(st)?;
    let crc = crc32fast::hash(json.as_bytes());
    Ok(format!("{json}\ncrc32:{crc:08x}\n"))
}

pub(super) fn decode_state(bytes: &[u8]) -> Result<StateFile, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let (json, crc_line) = text
        .trim_end_matches('\n')
        .rsplit_once('\n')
        .ok_or("no checksum line")?;
    let crc = crc_line
        .strip_prefix("crc32:")
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or("malformed checksum line")?;
    if crc32fast::hash(json.as_bytes()) != crc {
        return Err("checksum mismatch".to_owned());
    }
    let st: StateFile = serde_json::from_str(json).map_err(|e| e.to_string())?;
    if st.version != STATE_VERSION {
        return Err(format!("unknown state version {}", st.version));
    }
    if let Some(f) = &st.in_flight
        && (f.seq != st.last_seq || f.end < st.acked)
    {
        return Err("in-flight batch inconsistent with acked position".to_owned());
    }
    Ok(st)
}
