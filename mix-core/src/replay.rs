//! Replay protection (MIX.md §8, MIX-LIONESS.md §5; Nim `tag_manager.nim`).
//!
//! Each hop remembers the tag of every packet it processed for a while (Nim: one hour,
//! first-seen time never refreshed) and drops a packet whose tag it has seen. The tag is
//! `SHA-256(s)` in LIP-183 and `SHA-256(α ‖ s)` in v0.39.
//!
//! The v0.39 tag is the same value as the hop's blinding factor `b`: whoever learns it can
//! compute `α' = X25519(b, α)` and link the packet this hop received to the one it sent. The
//! LIP-183 tag is not `b`, but it is still a function of the shared secret that only this hop
//! and the sender can compute. So tags are secret in both formats. [`ReplayTag`] is zeroized
//! and never printed, and filters store only its [`ReplayTag::fingerprint`], a one-way function
//! of it; persistent filters must do the same.

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto;
use crate::error::ReplayError;

/// Length of a [`ReplayTag::fingerprint`].
pub const FINGERPRINT_LEN: usize = 16;

/// The replay tag of one packet at one hop: `SHA-256(s)` (LIP-183) or `SHA-256(α ‖ s)` (v0.39).
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct ReplayTag([u8; 32]);

impl ReplayTag {
    pub(crate) const fn new(tag: [u8; 32]) -> Self {
        Self(tag)
    }

    /// The tag itself. In v0.39 it equals the hop's blinding factor: keep it secret.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// What a filter stores: `SHA-256("mix-core replay fingerprint" ‖ tag)[0..16)`. Equal
    /// tags have equal fingerprints, but a fingerprint does not reveal the tag (nor so the
    /// blinding factor).
    /// 128 bits make a false "replay" among 10⁹ stored tags a 2⁻⁶⁸ event.
    pub fn fingerprint(&self) -> [u8; FINGERPRINT_LEN] {
        let digest = crypto::sha256_2(b"mix-core replay fingerprint", &self.0);
        let mut out = [0u8; FINGERPRINT_LEN];
        for (o, d) in out.iter_mut().zip(digest) {
            *o = d;
        }
        out
    }
}

impl fmt::Debug for ReplayTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayTag").finish_non_exhaustive()
    }
}

/// Remembers replay tags. `now_ms` is the caller's clock in milliseconds (any epoch); the
/// filter never reads a clock itself.
pub trait ReplayFilter {
    /// Records `tag` as seen at `now_ms`.
    ///
    /// # Errors
    /// [`ReplayError::Replayed`] if it was recorded before and has not expired (the packet
    /// must be dropped); [`ReplayError::Full`] or [`ReplayError::Unavailable`] if it cannot be
    /// recorded (the packet must be dropped too: forwarding it unrecorded would let it be
    /// replayed).
    fn check_and_insert(&mut self, tag: &ReplayTag, now_ms: u64) -> Result<(), ReplayError>;
}

impl<F: ReplayFilter + ?Sized> ReplayFilter for &mut F {
    fn check_and_insert(&mut self, tag: &ReplayTag, now_ms: u64) -> Result<(), ReplayError> {
        (**self).check_and_insert(tag, now_ms)
    }
}

#[cfg(feature = "alloc")]
pub use memory::{MemoryReplayFilter, ReplayConfig};

#[cfg(feature = "alloc")]
mod memory {
    use alloc::collections::VecDeque;
    use core::hash::{BuildHasher, Hasher};

    use hashbrown::HashSet;

    use super::{FINGERPRINT_LEN, ReplayFilter, ReplayTag};
    use crate::error::ReplayError;

    /// Settings of a [`MemoryReplayFilter`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ReplayConfig {
        /// How long a tag is remembered, in ms. Nim: one hour.
        pub ttl_ms: u64,
        /// The most tags held at once; beyond it new packets are refused
        /// ([`ReplayError::Full`]). Size it for peak packets per second × TTL.
        pub capacity: usize,
        /// Tags are grouped by arrival in this many buckets per TTL, so expiry drops whole
        /// buckets; a tag is remembered for between TTL and TTL·(1 + 1/buckets).
        pub buckets: u32,
    }

    impl Default for ReplayConfig {
        /// One hour (Nim), 4 194 304 tags (about 1 165 packets/s sustained for the hour, about
        /// 100 MiB at most), 12 buckets (Nim purges every 5 minutes).
        fn default() -> Self {
            Self {
                ttl_ms: 60 * 60 * 1000,
                capacity: 1 << 22,
                buckets: 12,
            }
        }
    }

    /// Fingerprints are uniformly random already; their first 8 bytes are the hash.
    #[derive(Clone, Copy, Default, Debug)]
    struct FingerprintHash;

    #[derive(Default)]
    struct FingerprintHasher(u64);

    impl Hasher for FingerprintHasher {
        fn finish(&self) -> u64 {
            self.0
        }

        fn write(&mut self, bytes: &[u8]) {
            // Arrays hash as a length prefix then the bytes; fold whatever arrives.
            for chunk in bytes.chunks(8) {
                let mut word = [0u8; 8];
                for (w, b) in word.iter_mut().zip(chunk) {
                    *w = *b;
                }
                self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
            }
        }
    }

    impl BuildHasher for FingerprintHash {
        type Hasher = FingerprintHasher;

        fn build_hasher(&self) -> FingerprintHasher {
            FingerprintHasher::default()
        }
    }

    struct Bucket {
        /// Arrival epoch: `now_ms / width_ms`.
        epoch: u64,
        tags: HashSet<[u8; FINGERPRINT_LEN], FingerprintHash>,
    }

    /// A bounded, time-bucketed in-memory [`ReplayFilter`].
    ///
    /// A tag inserted at `t` is refused until at least `t + ttl`; it is forgotten by
    /// `t + ttl + ttl/buckets`. `now_ms` going backwards is treated as no time passing.
    pub struct MemoryReplayFilter {
        config: ReplayConfig,
        width_ms: u64,
        buckets: VecDeque<Bucket>,
        len: usize,
        now_ms: u64,
    }

    impl MemoryReplayFilter {
        /// An empty filter.
        pub fn new(config: ReplayConfig) -> Self {
            let buckets = u64::from(config.buckets.max(1));
            Self {
                config,
                width_ms: config.ttl_ms.checked_div(buckets).unwrap_or(0).max(1),
                buckets: VecDeque::new(),
                len: 0,
                now_ms: 0,
            }
        }

        /// How many fingerprints are held.
        pub const fn len(&self) -> usize {
            self.len
        }

        /// Whether none are held.
        pub const fn is_empty(&self) -> bool {
            self.len == 0
        }

        /// Drops the buckets whose every tag is older than the TTL.
        fn expire(&mut self, now_ms: u64) {
            while let Some(front) = self.buckets.front() {
                let end = front.epoch.saturating_add(1).saturating_mul(self.width_ms);
                if end.saturating_add(self.config.ttl_ms) > now_ms {
                    break;
                }
                if let Some(old) = self.buckets.pop_front() {
                    self.len = self.len.saturating_sub(old.tags.len());
                }
            }
        }

        /// Records a fingerprint as seen at `at_ms`, e.g. when restoring a filter from disk.
        ///
        /// # Errors
        /// As [`ReplayFilter::check_and_insert`].
        pub fn insert_fingerprint(
            &mut self,
            fingerprint: [u8; FINGERPRINT_LEN],
            at_ms: u64,
        ) -> Result<(), ReplayError> {
            let now_ms = at_ms.max(self.now_ms);
            self.now_ms = now_ms;
            self.expire(now_ms);
            if self.buckets.iter().any(|b| b.tags.contains(&fingerprint)) {
                return Err(ReplayError::Replayed);
            }
            if self.len >= self.config.capacity {
                return Err(ReplayError::Full);
            }
            let epoch = now_ms.checked_div(self.width_ms).unwrap_or(now_ms);
            if self.buckets.back().is_none_or(|b| b.epoch != epoch) {
                self.buckets.push_back(Bucket {
                    epoch,
                    tags: HashSet::with_hasher(FingerprintHash),
                });
            }
            if let Some(bucket) = self.buckets.back_mut() {
                bucket.tags.insert(fingerprint);
                self.len = self.len.saturating_add(1);
            }
            Ok(())
        }

        /// Every held fingerprint with the start (ms) of the bucket it arrived in, to persist
        /// the filter.
        pub fn fingerprints(&self) -> impl Iterator<Item = (u64, &[u8; FINGERPRINT_LEN])> {
            self.buckets.iter().flat_map(move |b| {
                let start = b.epoch.saturating_mul(self.width_ms);
                b.tags.iter().map(move |t| (start, t))
            })
        }
    }

    impl ReplayFilter for MemoryReplayFilter {
        fn check_and_insert(&mut self, tag: &ReplayTag, now_ms: u64) -> Result<(), ReplayError> {
            self.insert_fingerprint(tag.fingerprint(), now_ms)
        }
    }

    impl core::fmt::Debug for MemoryReplayFilter {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("MemoryReplayFilter")
                .field("config", &self.config)
                .field("len", &self.len)
                .finish_non_exhaustive()
        }
    }

    #[cfg(test)]
    mod tests {
        #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
        use wasm_bindgen_test::wasm_bindgen_test as test;

        use super::*;

        fn tag(i: u32) -> ReplayTag {
            ReplayTag::new(crate::crypto::sha256_2(b"tag", &i.to_be_bytes()))
        }

        const HOUR: u64 = 3_600_000;

        #[test]
        fn a_tag_is_refused_until_the_ttl_has_passed() {
            let mut f = MemoryReplayFilter::new(ReplayConfig::default());
            let t0 = 10 * HOUR + 123;
            assert_eq!(f.check_and_insert(&tag(1), t0), Ok(()));
            assert_eq!(f.check_and_insert(&tag(1), t0), Err(ReplayError::Replayed));
            assert_eq!(f.check_and_insert(&tag(2), t0), Ok(()));
            assert_eq!(
                f.check_and_insert(&tag(1), t0 + HOUR - 1),
                Err(ReplayError::Replayed)
            );
            // Forgotten no later than TTL + one bucket width (5 minutes).
            assert_eq!(f.check_and_insert(&tag(1), t0 + HOUR + 5 * 60_000), Ok(()));
            assert_eq!(f.len(), 1);
        }

        #[test]
        fn a_clock_going_backwards_does_not_forget_anything() {
            let mut f = MemoryReplayFilter::new(ReplayConfig::default());
            f.check_and_insert(&tag(1), 5 * HOUR).unwrap();
            assert_eq!(f.check_and_insert(&tag(1), 0), Err(ReplayError::Replayed));
        }

        #[test]
        fn a_full_filter_refuses_new_tags_until_old_ones_expire() {
            let mut f = MemoryReplayFilter::new(ReplayConfig {
                ttl_ms: 1000,
                capacity: 3,
                buckets: 4,
            });
            for i in 0..3 {
                f.check_and_insert(&tag(i), 0).unwrap();
            }
            assert_eq!(f.check_and_insert(&tag(9), 10), Err(ReplayError::Full));
            assert_eq!(f.check_and_insert(&tag(0), 10), Err(ReplayError::Replayed));
            assert_eq!(f.check_and_insert(&tag(9), 1250), Ok(()));
            assert_eq!(f.len(), 1);
        }

        #[test]
        fn fingerprints_survive_a_restore_and_hide_the_tag() {
            let mut f = MemoryReplayFilter::new(ReplayConfig::default());
            for i in 0..100 {
                f.check_and_insert(&tag(i), 1000 + u64::from(i)).unwrap();
            }
            let mut restored = MemoryReplayFilter::new(ReplayConfig::default());
            for (at, fp) in f.fingerprints() {
                assert_ne!(&fp[..], &tag(0).as_bytes()[..16]);
                restored.insert_fingerprint(*fp, at).unwrap();
            }
            assert_eq!(restored.len(), 100);
            for i in 0..100 {
                assert_eq!(
                    restored.check_and_insert(&tag(i), 2000),
                    Err(ReplayError::Replayed)
                );
            }
        }
    }
}
