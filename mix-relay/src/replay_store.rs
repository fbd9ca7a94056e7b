//! A replay filter that survives a restart (MIX.md §8).
//!
//! [`PersistentReplayFilter`] wraps [`MemoryReplayFilter`] and keeps an append-only log of
//! what it accepted, so a packet seen before a restart is still refused after it. Only the
//! 16-byte [`ReplayTag::fingerprint`]s are written, never the tags (a tag is the hop's blinding
//! factor and would link incoming and outgoing packets), with their arrival time.
//!
//! File layout (all integers little-endian):
//!
//! ```text
//! header  16 bytes  "MIXRPLAY" ‖ version u32 (1) ‖ reserved u32 (0)
//! record  24 bytes  arrival ms since the UNIX epoch u64 ‖ fingerprint [u8; 16]
//! record  …
//! ```
//!
//! Once the exact set holds its capacity, further tags go to an in-memory, time-sliced Bloom
//! filter ([`crate::bloom`]) instead of being refused: a full store no longer stops the relay
//! (audit F2). Those overflow tags are not persisted.
//!
//! Accepted inserts are buffered in memory; [`PersistentReplayFilter::flush`] appends them and
//! fsyncs (the relay calls it every second and at shutdown, so a crash forgets at most the
//! last second). [`PersistentReplayFilter::open`] drops expired records and rewrites the file
//! atomically; `flush` does the same when the file has grown far beyond the live set.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use mix_core::{
    FINGERPRINT_LEN, MemoryReplayFilter, ReplayConfig, ReplayError, ReplayFilter, ReplayTag,
};

use crate::bloom::{BloomConfig, SlicedBloom};

/// First bytes of a replay store file.
const MAGIC: [u8; 8] = *b"MIXRPLAY";
/// Format version written after the magic.
const VERSION: u32 = 1;
/// Magic, version, reserved.
const HEADER_LEN: usize = 16;
/// Arrival time and fingerprint.
const RECORD_LEN: usize = 8 + FINGERPRINT_LEN;
/// `flush` compacts once the file holds more than `2 × live + COMPACT_SLACK` records.
const COMPACT_SLACK: u64 = 64 * 1024;

/// The current wall-clock time in milliseconds since the UNIX epoch (0 if the clock is set
/// before 1970), the clock [`PersistentReplayFilter`] records are stamped with.
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The file side of a [`PersistentReplayFilter`].
struct Store {
    path: PathBuf,
    file: File,
    /// Bytes of the file known to hold whole, written records (header included).
    good_len: u64,
    /// Records in the file, live or expired.
    records: u64,
    /// Encoded records not yet written.
    pending: Vec<u8>,
    /// A write failed part-way: cut the file back to `good_len` before appending again.
    dirty: bool,
}

/// A [`ReplayFilter`] backed by [`MemoryReplayFilter`] whose accepted fingerprints are logged
/// to a file, so it survives a restart. Its `now_ms` must be wall-clock milliseconds since
/// the UNIX epoch ([`unix_now_ms`]): times are compared across restarts.
pub struct PersistentReplayFilter {
    config: ReplayConfig,
    filter: MemoryReplayFilter,
    /// Tags beyond the exact set's capacity.
    overflow: SlicedBloom,
    store: Option<Store>,
    /// Latest time seen; the filter treats a clock going backwards as no time passing, and
    /// records are stamped the same way.
    last_ms: u64,
}

impl PersistentReplayFilter {
    /// Opens (or creates) the store at `path` and rebuilds the filter from it.
    ///
    /// Records older than the TTL at `now_ms` are dropped, a torn last record (a crash during
    /// a write) is ignored, a record stamped after `now_ms` is treated as arriving at `now_ms`,
    /// and the file is then rewritten with the live records only (atomically: temporary file,
    /// fsync, rename). An empty or header-less file is treated as a new store.
    ///
    /// # Errors
    /// Any I/O error, and [`io::ErrorKind::InvalidData`] if the file does not start with the
    /// store's magic or has an unknown version (it is left untouched: it may not be ours).
    pub fn open(path: &Path, config: ReplayConfig, now_ms: u64) -> io::Result<Self> {
        let mut filter = MemoryReplayFilter::new(config);
        let mut overflow = SlicedBloom::new(BloomConfig::for_ttl(config.ttl_ms, config.buckets));
        let mut records = read_records(path)?;
        let total = records.len();
        let width_ms = (config.ttl_ms / u64::from(config.buckets.max(1))).max(1);
        // Same rule as the in-memory filter: a bucket is forgotten once its end plus the TTL
        // has passed.
        records.retain(|(at, _)| {
            let end = (at / width_ms).saturating_add(1).saturating_mul(width_ms);
            end.saturating_add(config.ttl_ms) > now_ms
        });
        let expired = total - records.len();
        let mut future = 0usize;
        for (at, _) in &mut records {
            if *at > now_ms {
                *at = now_ms;
                future += 1;
            }
        }
        records.sort_by_key(|(at, _)| *at);
        let (mut duplicates, mut refused) = (0usize, 0usize);
        let mut last_ms = 0;
        for (at, fingerprint) in &records {
            last_ms = last_ms.max(*at);
            match filter.insert_fingerprint(*fingerprint, *at) {
                Ok(()) => {}
                Err(ReplayError::Replayed) => duplicates += 1,
                Err(_) => {
                    refused += 1;
                    overflow.insert(fingerprint, *at);
                }
            }
        }
        if future > 0 {
            tracing::warn!(
                path = %path.display(),
                count = future,
                "replay store: records from the future (clock went back?) taken as arriving now"
            );
        }
        if refused > 0 {
            tracing::warn!(
                path = %path.display(),
                count = refused,
                capacity = config.capacity,
                "replay store: more live records than the filter capacity; the rest went to the overflow filter"
            );
        }
        tracing::debug!(
            path = %path.display(),
            restored = filter.len(),
            expired,
            duplicates,
            "replay store opened"
        );
        let store = compact(path, &filter)?;
        Ok(Self {
            config,
            filter,
            overflow,
            store: Some(store),
            last_ms,
        })
    }

    /// A filter with no file behind it: a plain [`MemoryReplayFilter`].
    pub fn in_memory(config: ReplayConfig) -> Self {
        Self {
            config,
            filter: MemoryReplayFilter::new(config),
            overflow: SlicedBloom::new(BloomConfig::for_ttl(config.ttl_ms, config.buckets)),
            store: None,
            last_ms: 0,
        }
    }

    /// Appends the records accepted since the last flush to the file and fsyncs it;
    /// compacts the file instead when it holds more than `2 × live + 65 536` records (and
    /// falls back to appending if compaction fails).
    /// Nothing to do for [`Self::in_memory`]. After an error the records are kept and the
    /// next flush retries.
    ///
    /// # Errors
    /// Any I/O error writing, syncing or compacting the file.
    pub fn flush(&mut self) -> io::Result<()> {
        let Some(store) = self.store.as_mut() else {
            return Ok(());
        };
        let pending_records = (store.pending.len() / RECORD_LEN) as u64;
        let live = self.filter.len() as u64;
        if store.records.saturating_add(pending_records)
            > live.saturating_mul(2).saturating_add(COMPACT_SLACK)
        {
            // Every pending record is in the filter already.
            match compact(&store.path, &self.filter) {
                Ok(fresh) => {
                    *store = fresh;
                    return Ok(());
                }
                // Appending still keeps the data safe; compaction is retried next time.
                Err(e) => tracing::warn!(
                    path = %store.path.display(),
                    error = %e,
                    "replay store: compaction failed, appending instead"
                ),
            }
        }
        if store.pending.is_empty() && !store.dirty {
            return Ok(());
        }
        if store.dirty {
            store.file.set_len(store.good_len)?;
            store.dirty = false;
        }
        if let Err(e) = store
            .file
            .write_all(&store.pending)
            .and_then(|()| store.file.sync_data())
        {
            store.dirty = true;
            return Err(e);
        }
        store.good_len += store.pending.len() as u64;
        store.records += pending_records;
        store.pending.clear();
        Ok(())
    }

    /// How many fingerprints the filter holds.
    pub fn len(&self) -> usize {
        self.filter.len()
    }

    /// Whether the filter holds none.
    pub fn is_empty(&self) -> bool {
        self.filter.is_empty() && self.overflow.is_empty()
    }

    /// The exact set's fill, percent of its capacity.
    pub fn occupancy_percent(&self) -> u64 {
        let capacity = self.config.capacity.max(1) as u64;
        (self.filter.len() as u64).saturating_mul(100) / capacity
    }

    /// Tags held in the overflow Bloom filter.
    pub fn overflow_len(&self) -> usize {
        self.overflow.len()
    }

    /// Overflow slices dropped before their TTL (the replay window shortened) since the last
    /// call.
    pub fn take_window_cut(&mut self) -> u64 {
        self.overflow.take_cut()
    }

    /// The file behind the filter, if any.
    pub fn path(&self) -> Option<&Path> {
        self.store.as_ref().map(|s| s.path.as_path())
    }
}

impl ReplayFilter for PersistentReplayFilter {
    /// As [`MemoryReplayFilter`]; an accepted tag's fingerprint is queued for the next
    /// [`PersistentReplayFilter::flush`].
    fn check_and_insert(&mut self, tag: &ReplayTag, now_ms: u64) -> Result<(), ReplayError> {
        self.insert_fingerprint(tag.fingerprint(), now_ms)
    }
}

impl PersistentReplayFilter {
    /// [`ReplayFilter::check_and_insert`] for a fingerprint.
    fn insert_fingerprint(
        &mut self,
        fingerprint: [u8; FINGERPRINT_LEN],
        now_ms: u64,
    ) -> Result<(), ReplayError> {
        let at = now_ms.max(self.last_ms);
        self.overflow.expire(at);
        if self.overflow.contains(&fingerprint) {
            return Err(ReplayError::Replayed);
        }
        match self.filter.insert_fingerprint(fingerprint, at) {
            Ok(()) => {}
            // Full: remember it in the overflow filter rather than refuse every packet.
            Err(ReplayError::Full) => {
                self.overflow.insert(&fingerprint, at);
                self.last_ms = at;
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        self.last_ms = at;
        if let Some(store) = self.store.as_mut() {
            // Only the start of the tag's bucket reaches the disk (audit F16): expiry needs no
            // more, and a seized data directory then holds no per-packet timing log.
            let width_ms = (self.config.ttl_ms / u64::from(self.config.buckets.max(1))).max(1);
            let bucket_start = at.saturating_sub(at % width_ms);
            store.pending.extend_from_slice(&bucket_start.to_le_bytes());
            store.pending.extend_from_slice(&fingerprint);
        }
        Ok(())
    }
}

impl fmt::Debug for PersistentReplayFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("PersistentReplayFilter");
        d.field("config", &self.config)
            .field("len", &self.filter.len());
        if let Some(store) = &self.store {
            d.field("path", &store.path)
                .field("file_records", &store.records)
                .field("pending", &(store.pending.len() / RECORD_LEN));
        }
        d.finish()
    }
}

fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    for (o, b) in h
        .iter_mut()
        .zip(MAGIC.iter().chain(&VERSION.to_le_bytes()).chain(&[0u8; 4]))
    {
        *o = *b;
    }
    h
}

fn invalid_data(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("replay store {}: {what}", path.display()),
    )
}

/// Reads every whole record of the file at `path` (none if it does not exist).
fn read_records(path: &Path) -> io::Result<Vec<(u64, [u8; FINGERPRINT_LEN])>> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    }
    if bytes.len() < HEADER_LEN {
        // Empty, or a header cut short: a store that never got its first record.
        if !bytes.iter().zip(&MAGIC).all(|(a, b)| a == b) {
            return Err(invalid_data(path, "not a replay store file (bad magic)"));
        }
        if !bytes.is_empty() {
            tracing::warn!(path = %path.display(), "replay store: torn header, starting empty");
        }
        return Ok(Vec::new());
    }
    let (head, body) = bytes.split_at(HEADER_LEN);
    if head.get(..MAGIC.len()) != Some(&MAGIC[..]) {
        return Err(invalid_data(path, "not a replay store file (bad magic)"));
    }
    let version = head
        .get(8..12)
        .and_then(|v| <[u8; 4]>::try_from(v).ok())
        .map_or(0, u32::from_le_bytes);
    if version != VERSION {
        return Err(invalid_data(
            path,
            &format!("unsupported version {version} (this build reads {VERSION})"),
        ));
    }
    let (chunks, torn) = body.as_chunks::<RECORD_LEN>();
    if !torn.is_empty() {
        tracing::warn!(
            path = %path.display(),
            bytes = torn.len(),
            "replay store: ignoring a torn last record"
        );
    }
    Ok(chunks
        .iter()
        .map(|chunk| {
            let (at, fingerprint) = chunk.split_at(8);
            let mut at_bytes = [0u8; 8];
            at_bytes.copy_from_slice(at);
            let mut fp = [0u8; FINGERPRINT_LEN];
            fp.copy_from_slice(fingerprint);
            (u64::from_le_bytes(at_bytes), fp)
        })
        .collect())
}

/// Rewrites the file at `path` with the filter's live fingerprints (atomically) and opens it
/// for appending.
fn compact(path: &Path, filter: &MemoryReplayFilter) -> io::Result<Store> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut bytes = Vec::with_capacity(HEADER_LEN + filter.len() * RECORD_LEN);
    bytes.extend_from_slice(&header());
    let mut records = 0u64;
    for (at, fingerprint) in filter.fingerprints() {
        bytes.extend_from_slice(&at.to_le_bytes());
        bytes.extend_from_slice(fingerprint);
        records += 1;
    }
    let written = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    crate::keys::sync_dir(dir);
    let file = fs::OpenOptions::new().append(true).open(path)?;
    Ok(Store {
        path: path.to_owned(),
        file,
        good_len: bytes.len() as u64,
        records,
        pending: Vec::new(),
        dirty: false,
    })
}

#[cfg(test)]
mod tests {
    use mix_core::{NodeSecretKey, PACKET_LEN, hazmat};

    use super::*;

    const HOUR: u64 = 3_600_000;
    const T0: u64 = 1_750_000_000_000;

    /// A real replay tag, as a hop computes it for a packet whose α encodes `i`.
    fn tag(i: u32) -> ReplayTag {
        let node = NodeSecretKey::from_bytes([7; 32]);
        let mut scalar = [1u8; 32];
        scalar[4..8].copy_from_slice(&i.to_le_bytes());
        let mut base = [0u8; 32];
        base[0] = 9;
        let mut packet = vec![0u8; PACKET_LEN];
        packet[..32].copy_from_slice(&hazmat::x25519(&scalar, &base));
        node.hop_secrets(&packet).unwrap().replay_tag().clone()
    }

    fn config() -> ReplayConfig {
        ReplayConfig::default()
    }

    fn file_len(path: &Path) -> usize {
        usize::try_from(fs::metadata(path).unwrap().len()).unwrap()
    }

    fn records_in(path: &Path) -> usize {
        (file_len(path) - HEADER_LEN) / RECORD_LEN
    }

    #[test]
    fn unix_now_is_after_2023() {
        assert!(unix_now_ms() > 1_700_000_000_000);
    }

    #[test]
    fn a_new_store_has_just_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.db");
        let f = PersistentReplayFilter::open(&path, config(), T0).unwrap();
        assert!(f.is_empty());
        assert_eq!(fs::read(&path).unwrap(), header());
        assert_eq!(&header()[..8], b"MIXRPLAY");
        assert_eq!(&header()[8..], &[1, 0, 0, 0, 0, 0, 0, 0]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(f.path(), Some(path.as_path()));
    }

    #[test]
    fn the_file_holds_bucket_starts_not_arrival_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.db");
        let width = config().ttl_ms / u64::from(config().buckets);
        let mut f = PersistentReplayFilter::open(&path, config(), T0).unwrap();
        let arrivals = [T0 + 1, T0 + 1234, T0 + width + 77, T0 + 2 * width + 5];
        for (i, at) in (0u32..).zip(arrivals) {
            f.check_and_insert(&tag(i), at).unwrap();
        }
        f.flush().unwrap();
        let stamps: Vec<u64> = read_records(&path)
            .unwrap()
            .into_iter()
            .map(|(at, _)| at)
            .collect();
        let expected: Vec<u64> = arrivals.iter().map(|at| at - at % width).collect();
        assert_eq!(stamps, expected);
        assert!(stamps.iter().all(|at| at % width == 0));
        drop(f);
        // Still refused after a restart within the TTL.
        let mut g = PersistentReplayFilter::open(&path, config(), T0 + 2 * width + 10).unwrap();
        assert_eq!(
            g.check_and_insert(&tag(1), T0 + 2 * width + 20),
            Err(ReplayError::Replayed)
        );
    }

    #[test]
    fn a_tag_seen_before_a_restart_is_refused_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.db");
        let mut f = PersistentReplayFilter::open(&path, config(), T0).unwrap();
        for i in 0..10 {
            f.check_and_insert(&tag(i), T0 + u64::from(i)).unwrap();
        }
        assert_eq!(
            f.check_and_insert(&tag(3), T0 + 20),
            Err(ReplayError::Replayed)
        );
        // Nothing reaches the file before a flush; a refused tag is not recorded.
        assert_eq!(records_in(&path), 0);
        f.flush().unwrap();
        assert_eq!(records_in(&path), 10);
        f.flush().unwrap();
        assert_eq!(records_in(&path), 10);
        drop(f);

        let mut g = PersistentReplayFilter::open(&path, config(), T0 + 1000).unwrap();
        assert_eq!(g.len(), 10);
        for i in 0..10 {
            assert_eq!(
                g.check_and_insert(&tag(i), T0 + 2000),
                Err(ReplayError::Replayed)
            );
        }
        assert_eq!(g.check_and_insert(&tag(10), T0 + 2000), Ok(()));
        g.flush().unwrap();
        drop(g);
        let h = PersistentReplayFilter::open(&path, config(), T0 + 3000).unwrap();
        assert_eq!(h.len(), 11);
    }

    #[test]
    fn expired_records_are_dropped_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.db");
        let mut f = PersistentReplayFilter::open(&path, config(), T0).unwrap();
        f.check_and_insert(&tag(1), T0).unwrap();
        f.check_and_insert(&tag(2), T0 + HOUR / 2).unwrap();
        f.flush().unwrap();
        drop(f);

        // Just before the TTL both are still refused.
        let mut g = PersistentReplayFilter::open(&path, config(), T0 + HOUR - 1).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(
            g.check_and_insert(&tag(1), T0 + HOUR - 1),
            Err(ReplayError::Replayed)
        );
        drop(g);

        // Past TTL + one bucket, the first is gone, from memory and from the file.
        let later = T0 + HOUR + HOUR / 12 + 1;
        let mut g = PersistentReplayFilter::open(&path, config(), later).unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(records_in(&path), 1);
        assert_eq!(g.check_and_insert(&tag(1), later), Ok(()));
        assert_eq!(
            g.check_and_insert(&tag(2), later),
            Err(ReplayError::Replayed)
        );
    }

    #[test]
    fn a_torn_last_record_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.db");
        let mut f = PersistentReplayFilter::open(&path, config(), T0).unwrap();
        for i in 0..3 {
            f.check_and_insert(&tag(i), T0).unwrap();
        }
        f.flush().unwrap();
        drop(f);
        // A crash in the middle of the third record.
        let len = file_len(&path);
        let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(u64::try_from(len - 5).unwrap()).unwrap();
        drop(file);

        let mut g = PersistentReplayFilter::open(&path, config(), T0 + 10).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(file_len(&path), HEADER_LEN + 2 * RECORD_LEN);
        assert_eq!(
            g.check_and_insert(&tag(0), T0 + 10),
            Err(ReplayError::Replayed)
        );
        assert_eq!(g.check_and_insert(&tag(2), T0 + 10), Ok(()));
    }

    #[test]
    fn garbage_is_refused_or_ignored_without_panicking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.db");

        // Not ours: refused and left alone.
        fs::write(&path, b"hello, this is somebody else's file").unwrap();
        let err = PersistentReplayFilter::open(&path, config(), T0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("magic"), "{err}");
        assert_eq!(
            fs::read(&path).unwrap(),
            b"hello, this is somebody else's file"
        );

        // A future version: refused.
        let mut v2 = header().to_vec();
        v2[8] = 2;
        fs::write(&path, &v2).unwrap();
        let err = PersistentReplayFilter::open(&path, config(), T0).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");

        // Empty or a torn header: a new store.
        for bytes in [&b""[..], &b"MIXR"[..]] {
            fs::write(&path, bytes).unwrap();
            let f = PersistentReplayFilter::open(&path, config(), T0).unwrap();
            assert!(f.is_empty());
            assert_eq!(fs::read(&path).unwrap(), header());
        }

        // Random records with absurd times: no panic, future ones count as now.
        let mut bytes = header().to_vec();
        for i in 0..100u64 {
            bytes.extend_from_slice(&(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes());
            bytes.extend_from_slice(&[u8::try_from(i).unwrap(); FINGERPRINT_LEN]);
        }
        bytes.extend_from_slice(&[0xff; 7]);
        fs::write(&path, &bytes).unwrap();
        let f = PersistentReplayFilter::open(&path, config(), T0).unwrap();
        assert!(f.len() <= 100);
        let mut g = PersistentReplayFilter::open(&path, config(), T0).unwrap();
        assert_eq!(g.len(), f.len());
        // The filter still works at the real time.
        assert_eq!(g.check_and_insert(&tag(1), T0), Ok(()));
    }

    #[test]
    fn flush_compacts_a_file_far_larger_than_the_live_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.db");
        let cfg = ReplayConfig {
            ttl_ms: 1000,
            capacity: 1 << 20,
            buckets: 4,
        };
        let mut f = PersistentReplayFilter::open(&path, cfg, 0).unwrap();
        let n = u32::try_from(COMPACT_SLACK).unwrap() + 10;
        // Uniform like real fingerprints (the filter hashes with their first bytes).
        let fp = |i: u32| hazmat::kdf(b"fingerprint", &i.to_le_bytes());
        for i in 0..n {
            f.insert_fingerprint(fp(i), 0).unwrap();
        }
        f.flush().unwrap();
        assert_eq!(records_in(&path), n as usize);
        // Later, all of those have expired; a few new ones arrive.
        for i in 0..5 {
            f.check_and_insert(&tag(n + i), 10_000).unwrap();
        }
        assert_eq!(f.len(), 5);
        f.flush().unwrap();
        assert_eq!(records_in(&path), 5);
        // Appending works after compaction.
        f.check_and_insert(&tag(n + 5), 10_001).unwrap();
        f.flush().unwrap();
        assert_eq!(records_in(&path), 6);
        drop(f);
        let g = PersistentReplayFilter::open(&path, cfg, 10_002).unwrap();
        assert_eq!(g.len(), 6);
    }

    #[test]
    fn the_file_holds_fingerprints_never_tags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.db");
        let mut f = PersistentReplayFilter::open(&path, config(), T0).unwrap();
        let tags: Vec<ReplayTag> = (0..200).map(tag).collect();
        for (i, t) in tags.iter().enumerate() {
            f.check_and_insert(t, T0 + u64::try_from(i).unwrap())
                .unwrap();
        }
        f.flush().unwrap();
        drop(f);
        // Reopening compacts: check both the appended and the rewritten forms.
        let appended = fs::read(&path).unwrap();
        PersistentReplayFilter::open(&path, config(), T0 + 500).unwrap();
        let compacted = fs::read(&path).unwrap();
        for bytes in [&appended, &compacted] {
            assert_eq!(bytes.len(), HEADER_LEN + 200 * RECORD_LEN);
            for t in &tags {
                let secret = t.as_bytes();
                // No 32-byte tag, and not even 8 consecutive bytes of one.
                for window in secret.windows(8) {
                    assert!(!bytes.windows(8).any(|w| w == window));
                }
                let fp = t.fingerprint();
                assert!(bytes.windows(FINGERPRINT_LEN).any(|w| w == fp));
            }
        }
    }

    #[test]
    fn a_clock_going_backwards_does_not_shorten_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.db");
        let mut f = PersistentReplayFilter::open(&path, config(), T0).unwrap();
        f.check_and_insert(&tag(1), T0 + HOUR).unwrap();
        f.check_and_insert(&tag(2), T0).unwrap(); // stamped T0 + HOUR
        f.flush().unwrap();
        drop(f);
        let mut g = PersistentReplayFilter::open(&path, config(), T0 + HOUR + HOUR / 2).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(
            g.check_and_insert(&tag(2), T0 + HOUR + HOUR / 2),
            Err(ReplayError::Replayed)
        );
    }

    #[test]
    fn in_memory_filters_have_no_file() {
        let mut f = PersistentReplayFilter::in_memory(config());
        assert!(f.is_empty());
        f.check_and_insert(&tag(1), T0).unwrap();
        assert_eq!(f.check_and_insert(&tag(1), T0), Err(ReplayError::Replayed));
        f.flush().unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f.path(), None);
        assert!(format!("{f:?}").contains("len: 1"));
    }

    #[test]
    fn a_full_filter_remembers_in_the_overflow_and_persists_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.db");
        let cfg = ReplayConfig {
            ttl_ms: HOUR,
            capacity: 2,
            buckets: 12,
        };
        let mut f = PersistentReplayFilter::open(&path, cfg, T0).unwrap();
        f.check_and_insert(&tag(1), T0).unwrap();
        f.check_and_insert(&tag(2), T0).unwrap();
        assert_eq!(f.occupancy_percent(), 100);
        // Beyond the capacity: accepted, remembered in the overflow filter, never written.
        assert_eq!(f.check_and_insert(&tag(3), T0), Ok(()));
        assert_eq!(
            f.check_and_insert(&tag(3), T0 + 1),
            Err(ReplayError::Replayed)
        );
        assert_eq!(
            f.check_and_insert(&tag(1), T0 + 1),
            Err(ReplayError::Replayed)
        );
        assert_eq!(f.overflow_len(), 1);
        f.flush().unwrap();
        assert_eq!(records_in(&path), 2);
        // Forgotten with the TTL, as the exact set's tags.
        assert_eq!(f.check_and_insert(&tag(3), T0 + 2 * HOUR), Ok(()));
    }
}
