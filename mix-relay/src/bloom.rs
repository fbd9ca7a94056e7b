//! A time-sliced Bloom filter of replay fingerprints: the replay store's overflow once its
//! exact, persisted set is full (audit F2).
//!
//! The exact set ([`mix_core::MemoryReplayFilter`]) costs about 50 bytes a tag and refuses
//! new tags when full, which let one peer stop a relay by filling it. Beyond that capacity,
//! tags go here instead, at about 5.4 bytes each (43 bits for a false-positive rate of 1e-9
//! per slice). Tags are grouped in slices by arrival; a slice holds at most
//! [`BloomConfig::per_slice`] tags (a full slice starts the next one early) and is forgotten
//! once its last tag is older than the TTL. At most [`BloomConfig::max_slices`] slices are
//! held: beyond that the oldest is dropped early, so under a flood larger than the memory
//! budget the replay window shortens instead of honest packets being refused. A lookup checks
//! every live slice, so the false-positive rate of one honest packet is at most
//! `max_slices × fp_per_slice` (2.6e-8 with the defaults), and a lookup of a tag not held
//! stops at the first clear bit of each slice (about two probes).
//!
//! Not persisted: after a restart only the exact set's tags are remembered.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};

use mix_core::FINGERPRINT_LEN;

/// The sizing of a [`SlicedBloom`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BloomConfig {
    /// How long a tag is remembered, ms.
    pub ttl_ms: u64,
    /// The nominal slice width, ms (a slice may close earlier when full).
    pub slice_ms: u64,
    /// Tags per slice.
    pub per_slice: usize,
    /// The false-positive rate of one slice when full.
    pub fp_per_slice: f64,
    /// Slices held at most.
    pub max_slices: usize,
}

impl BloomConfig {
    /// One hour in 5-minute slices of 2^20 tags at 1e-9, at most 26 slices (about 140 MiB
    /// when all are allocated; none are until the exact store is full).
    pub fn for_ttl(ttl_ms: u64, buckets: u32) -> Self {
        let buckets = u64::from(buckets.max(1));
        Self {
            ttl_ms,
            slice_ms: (ttl_ms / buckets).max(1),
            per_slice: 1 << 20,
            fp_per_slice: 1e-9,
            max_slices: usize::try_from(2 * (buckets + 1)).unwrap_or(usize::MAX),
        }
    }

    /// Bits per slice and hash functions: `m = -n ln p / ln²2`, `k = (m / n) ln 2`.
    fn shape(&self) -> (usize, u32) {
        let n = self.per_slice.max(1) as f64;
        let p = self.fp_per_slice.clamp(1e-15, 0.5);
        let ln2 = core::f64::consts::LN_2;
        let m = (-n * p.ln() / (ln2 * ln2)).ceil().max(64.0);
        let k = ((m / n) * ln2).round().clamp(1.0, 64.0);
        // Whole 64-bit words.
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "bounded above"
        )]
        let words = ((m / 64.0).ceil() as usize).max(1);
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "1..=64"
        )]
        (words, k as u32)
    }
}

struct Slice {
    /// When its first tag arrived, ms.
    opened_ms: u64,
    /// When its last tag arrived, ms.
    last_ms: u64,
    len: usize,
    bits: Vec<u64>,
}

/// A time-sliced Bloom filter of fingerprints (see the module docs).
pub struct SlicedBloom {
    config: BloomConfig,
    words: usize,
    k: u32,
    slices: VecDeque<Slice>,
    /// A per-process key: the bit positions of a tag are not predictable by others.
    keys: (std::hash::RandomState, std::hash::RandomState),
    /// Slices dropped before their TTL since the last [`Self::take_cut`].
    cut: u64,
}

impl SlicedBloom {
    /// An empty filter (nothing allocated until the first insert).
    pub fn new(config: BloomConfig) -> Self {
        let (words, k) = config.shape();
        Self {
            config,
            words,
            k,
            slices: VecDeque::new(),
            keys: (std::hash::RandomState::new(), std::hash::RandomState::new()),
            cut: 0,
        }
    }

    /// Tags held.
    pub fn len(&self) -> usize {
        self.slices.iter().map(|s| s.len).sum()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.slices.is_empty()
    }

    /// Bytes of bit arrays allocated.
    pub fn bytes(&self) -> usize {
        self.slices
            .len()
            .saturating_mul(self.words)
            .saturating_mul(8)
    }

    /// Slices dropped early (the replay window shortened) since the last call.
    pub fn take_cut(&mut self) -> u64 {
        std::mem::take(&mut self.cut)
    }

    fn positions(&self, fingerprint: &[u8; FINGERPRINT_LEN]) -> impl Iterator<Item = usize> {
        let hash = |key: &std::hash::RandomState| {
            let mut h = key.build_hasher();
            h.write(fingerprint);
            h.finish()
        };
        let (h1, h2) = (hash(&self.keys.0), hash(&self.keys.1) | 1);
        let bits = (self.words as u64).saturating_mul(64);
        (0..u64::from(self.k)).map(move |i| {
            // Double hashing (Kirsch–Mitzenmacher); `bits` > 0.
            let pos = h1.wrapping_add(i.wrapping_mul(h2)) % bits;
            usize::try_from(pos).unwrap_or(0)
        })
    }

    /// Drops the slices whose every tag is older than the TTL at `now_ms`.
    pub fn expire(&mut self, now_ms: u64) {
        while self
            .slices
            .front()
            .is_some_and(|s| s.last_ms.saturating_add(self.config.ttl_ms) <= now_ms)
        {
            self.slices.pop_front();
        }
    }

    /// Whether `fingerprint` may have been inserted (false positives at the stated rate).
    pub fn contains(&self, fingerprint: &[u8; FINGERPRINT_LEN]) -> bool {
        if self.slices.is_empty() {
            return false;
        }
        let positions: Vec<usize> = self.positions(fingerprint).collect();
        self.slices.iter().any(|slice| {
            positions.iter().all(|&p| {
                slice
                    .bits
                    .get(p / 64)
                    .is_some_and(|w| w & (1u64 << (p % 64)) != 0)
            })
        })
    }

    /// Records `fingerprint` at `now_ms` (the caller checked [`Self::contains`]).
    pub fn insert(&mut self, fingerprint: &[u8; FINGERPRINT_LEN], now_ms: u64) {
        self.expire(now_ms);
        let open_new = self.slices.back().is_none_or(|s| {
            s.len >= self.config.per_slice
                || now_ms.saturating_sub(s.opened_ms) >= self.config.slice_ms
        });
        if open_new {
            while self.slices.len() >= self.config.max_slices.max(1) {
                self.slices.pop_front();
                self.cut = self.cut.saturating_add(1);
            }
            self.slices.push_back(Slice {
                opened_ms: now_ms,
                last_ms: now_ms,
                len: 0,
                bits: vec![0; self.words],
            });
        }
        let positions: Vec<usize> = self.positions(fingerprint).collect();
        if let Some(slice) = self.slices.back_mut() {
            for p in positions {
                if let Some(w) = slice.bits.get_mut(p / 64) {
                    *w |= 1u64 << (p % 64);
                }
            }
            slice.len = slice.len.saturating_add(1);
            slice.last_ms = slice.last_ms.max(now_ms);
        }
    }
}

impl std::fmt::Debug for SlicedBloom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlicedBloom")
            .field("config", &self.config)
            .field("slices", &self.slices.len())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(i: u64, salt: u8) -> [u8; FINGERPRINT_LEN] {
        let mut out = [salt; FINGERPRINT_LEN];
        out[..8].copy_from_slice(&i.to_le_bytes());
        out
    }

    /// The measured false-positive rate of a full slice is within the stated one: sized for
    /// 1e-3 so that 200,000 lookups measure it (expect about 200).
    #[test]
    fn the_false_positive_rate_of_a_full_slice_is_as_stated() {
        let config = BloomConfig {
            ttl_ms: 1000,
            slice_ms: 1000,
            per_slice: 20_000,
            fp_per_slice: 1e-3,
            max_slices: 1,
        };
        let mut bloom = SlicedBloom::new(config);
        for i in 0..20_000 {
            bloom.insert(&fp(i, 0), 0);
        }
        assert!(
            (0..20_000).all(|i| bloom.contains(&fp(i, 0))),
            "no false negatives"
        );
        let trials = 200_000u64;
        let hits = (0..trials).filter(|i| bloom.contains(&fp(*i, 1))).count();
        let rate = hits as f64 / trials as f64;
        assert!(rate < 1.5e-3, "measured {rate}, stated 1e-3");
        // The default sizing: 43 bits a tag, 30 hash functions.
        let (words, k) = BloomConfig::for_ttl(3_600_000, 12).shape();
        assert_eq!(k, 30);
        assert!((words * 64) / (1 << 20) == 43, "{words}");
    }

    #[test]
    fn slices_expire_after_the_ttl_and_a_flood_shortens_the_window_not_refuses() {
        let config = BloomConfig {
            ttl_ms: 1000,
            slice_ms: 250,
            per_slice: 10,
            fp_per_slice: 1e-6,
            max_slices: 3,
        };
        let mut bloom = SlicedBloom::new(config);
        bloom.insert(&fp(1, 0), 0);
        assert!(bloom.contains(&fp(1, 0)));
        bloom.expire(999);
        assert!(bloom.contains(&fp(1, 0)));
        bloom.expire(1000);
        assert!(!bloom.contains(&fp(1, 0)));
        // 40 tags at once: slices of 10, at most 3 held, the oldest dropped early.
        for i in 0..40 {
            bloom.insert(&fp(i, 2), 2000);
        }
        assert_eq!(bloom.len(), 30);
        assert_eq!(bloom.take_cut(), 1);
        assert!(bloom.contains(&fp(39, 2)));
        assert!(!bloom.contains(&fp(0, 2)));
    }
}
