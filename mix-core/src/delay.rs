//! Per-hop delays (MIX.md §4.3, §10; Nim `delay.nim`, `delay_strategy.nim`).
//!
//! The wire carries a `u16` big-endian number of milliseconds per hop. What it means is a
//! local policy shared by sender and relays: the literal delay (Nim's default
//! `NoSamplingDelayStrategy`), or the mean of an exponential distribution that each
//! intermediate samples (`ExponentialDelayStrategy`, recommended). The core never waits: it
//! returns the delay and the caller arms a timer.

use core::time::Duration;

use rand_core::Rng;

use crate::params::DELAY_LEN;

/// A delay field: whole milliseconds, big-endian on the wire (MIX.md §4.3).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Delay(u16);

impl Delay {
    /// No delay; the exit block always carries it.
    pub const ZERO: Self = Self(0);

    /// A delay of `ms` milliseconds.
    pub const fn from_millis(ms: u16) -> Self {
        Self(ms)
    }

    /// The delay in milliseconds.
    pub const fn as_millis(self) -> u16 {
        self.0
    }

    /// The delay as a [`Duration`].
    pub const fn to_duration(self) -> Duration {
        Duration::from_millis(self.0 as u64)
    }

    /// The two wire bytes (big-endian; Nim before #2094 read them little-endian by mistake).
    pub const fn to_be_bytes(self) -> [u8; DELAY_LEN] {
        self.0.to_be_bytes()
    }

    /// A delay from its two wire bytes.
    pub const fn from_be_bytes(bytes: [u8; DELAY_LEN]) -> Self {
        Self(u16::from_be_bytes(bytes))
    }
}

/// Nim's `DefaultMeanDelay`: 100 ms.
pub const DEFAULT_MEAN_DELAY: Delay = Delay(100);
/// Nim's `DefaultNegligibleProb`: the exponential's tail beyond `mean·ln(1/p)` is cut off.
pub const DEFAULT_NEGLIGIBLE_PROB: f64 = 1e-6;
/// Nim's `DefaultSpamProtectionDelayFloor`: 100 ms.
pub const SPAM_PROTECTION_DELAY_FLOOR: Delay = Delay(100);

/// How senders choose the delay they encode and how intermediates turn it into a wait
/// (MIX.md §10). Every node of a network must agree on it.
#[derive(Clone, Copy, PartialEq, Debug)]
#[non_exhaustive]
pub enum DelayStrategy {
    /// Nim's default: the sender encodes a uniform 0, 1 or 2 ms and hops wait exactly that.
    NoSampling,
    /// The sender encodes `mean`; each intermediate samples an exponential with that mean,
    /// truncated to `[minimum, min(mean·ln(1/negligible_prob), 65535)]` ms.
    Exponential {
        /// The mean a sender encodes.
        mean: Delay,
        /// Tail probability cut off the distribution; in `(0, 1)`.
        negligible_prob: f64,
        /// The smallest delay an intermediate waits for a non-zero encoded mean.
        minimum: Delay,
    },
}

impl Default for DelayStrategy {
    /// [`DelayStrategy::NoSampling`], Nim's default when none is configured.
    fn default() -> Self {
        Self::NoSampling
    }
}

impl DelayStrategy {
    /// Nim's `ExponentialDelayStrategy` with the given mean, no floor and `p = 10⁻⁶`.
    pub const fn exponential(mean: Delay) -> Self {
        Self::Exponential {
            mean,
            negligible_prob: DEFAULT_NEGLIGIBLE_PROB,
            minimum: Delay::ZERO,
        }
    }

    /// Nim's `SpamProtectionDelayStrategy`: exponential with a 100 ms floor, for networks
    /// with per-hop proofs whose generation overlaps the delay.
    pub const fn spam_protection(mean: Delay) -> Self {
        Self::Exponential {
            mean,
            negligible_prob: DEFAULT_NEGLIGIBLE_PROB,
            minimum: SPAM_PROTECTION_DELAY_FLOOR,
        }
    }

    /// The delay a sender encodes for one intermediate hop (Nim `generateForEntry`).
    pub fn for_entry<R: Rng + ?Sized>(&self, rng: &mut R) -> Delay {
        match self {
            // `generate(uint16) mod 3`: the same small bias as Nim, kept for equal behaviour.
            Self::NoSampling => {
                let [lo, hi, ..] = rng.next_u32().to_le_bytes();
                Delay(u16::from_le_bytes([lo, hi]) % 3)
            }
            Self::Exponential { mean, .. } => *mean,
        }
    }

    /// The delay an intermediate waits for an encoded value (Nim `generateForIntermediate`).
    pub fn for_hop<R: Rng + ?Sized>(&self, encoded: Delay, rng: &mut R) -> Delay {
        match *self {
            Self::NoSampling => encoded,
            Self::Exponential {
                negligible_prob,
                minimum,
                ..
            } => sample_truncated_exponential(encoded, minimum, negligible_prob, rng),
        }
    }
}

/// Nim's `sampleOpenUnitInterval`: 53 random bits mapped to the open interval (0, 1).
fn open_unit_interval<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    const MANTISSA_BITS: u32 = 53;
    let bits = rng.next_u64() >> (64 - MANTISSA_BITS);
    (bits as f64 + 0.5) / (1u64 << MANTISSA_BITS) as f64
}

/// An exponential with mean `mean`, conditioned on `[minimum, min(mean·ln(1/p), 65535)]` and
/// truncated to whole milliseconds, as Nim's `generateForIntermediate` computes it: inverse-CDF
/// sampling of the conditioned distribution, so there are no spikes at either bound.
///
/// An encoded 0 means no delay. If the floor is at or above the cut-off, the floor is returned.
/// A `negligible_prob` outside `(0, 1)` is treated as the default `10⁻⁶`.
pub fn sample_truncated_exponential<R: Rng + ?Sized>(
    mean: Delay,
    minimum: Delay,
    negligible_prob: f64,
    rng: &mut R,
) -> Delay {
    if mean == Delay::ZERO {
        return Delay::ZERO;
    }
    let p = if negligible_prob > 0.0 && negligible_prob < 1.0 {
        negligible_prob
    } else {
        DEFAULT_NEGLIGIBLE_PROB
    };
    let mean_ms = f64::from(mean.0);
    let min_ms = f64::from(minimum.0);
    let max_ms = (-mean_ms * libm::log(p)).min(f64::from(u16::MAX));
    if min_ms >= max_ms {
        return minimum;
    }
    let min_bound = libm::exp(-min_ms / mean_ms);
    let max_bound = libm::exp(-max_ms / mean_ms);
    let u = open_unit_interval(rng);
    let sample = -mean_ms * libm::log(min_bound - u * (min_bound - max_bound));
    let bounded = sample.clamp(min_ms, max_ms);
    // In range [0, 65535] after the clamp; `as` truncates toward zero like Nim's `uint16()`.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "clamped to [0, 65535] above"
    )]
    let ms = bounded as u16;
    Delay(ms)
}

#[cfg(test)]
mod tests {
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    #[test]
    fn the_wire_form_is_big_endian() {
        assert_eq!(Delay::from_millis(0x0102).to_be_bytes(), [1, 2]);
        assert_eq!(Delay::from_be_bytes([0, 100]), Delay::from_millis(100));
        assert_eq!(
            Delay::from_millis(250).to_duration(),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn no_sampling_encodes_zero_to_two_and_waits_exactly_that() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let mut seen = [0usize; 3];
        for _ in 0..3000 {
            let d = DelayStrategy::NoSampling.for_entry(&mut rng);
            seen[usize::from(d.as_millis())] += 1;
            assert_eq!(DelayStrategy::NoSampling.for_hop(d, &mut rng), d);
        }
        assert!(seen.iter().all(|n| *n > 800), "{seen:?}");
    }

    #[test]
    fn exponential_samples_stay_in_the_window_and_have_about_the_mean() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let strategy = DelayStrategy::exponential(Delay::from_millis(100));
        assert_eq!(strategy.for_entry(&mut rng), Delay::from_millis(100));
        let n = 20_000u32;
        let mut sum = 0f64;
        for _ in 0..n {
            let d = strategy
                .for_hop(Delay::from_millis(100), &mut rng)
                .as_millis();
            assert!(d <= 1381, "{d} beyond mean·ln(10⁶)");
            sum += f64::from(d);
        }
        // Truncation to whole ms lowers the mean by about 0.5 ms.
        let mean = sum / f64::from(n);
        assert!((95.0..104.0).contains(&mean), "mean {mean}");
        assert_eq!(strategy.for_hop(Delay::ZERO, &mut rng), Delay::ZERO);
    }

    #[test]
    fn the_floor_applies_and_wins_when_it_exceeds_the_cut_off() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let strategy = DelayStrategy::spam_protection(Delay::from_millis(50));
        for _ in 0..1000 {
            let d = strategy
                .for_hop(Delay::from_millis(50), &mut rng)
                .as_millis();
            assert!((100..=690).contains(&d), "{d}");
        }
        // mean 5 ⇒ cut-off ≈ 69 ms < floor 100 ms ⇒ the floor itself.
        assert_eq!(
            strategy.for_hop(Delay::from_millis(5), &mut rng),
            SPAM_PROTECTION_DELAY_FLOOR
        );
    }

    #[test]
    fn a_huge_mean_is_cut_off_at_the_largest_encodable_delay() {
        // mean 65535 ⇒ mean·ln(10⁶) ≫ 65535: the window ends at 65535 and about 5% of the
        // conditioned mass lies above 60 000.
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let high = (0..1000)
            .map(|_| {
                sample_truncated_exponential(
                    Delay::from_millis(u16::MAX),
                    Delay::ZERO,
                    1e-6,
                    &mut rng,
                )
            })
            .filter(|d| d.as_millis() > 60_000)
            .count();
        assert!((15..120).contains(&high), "{high}");
    }

    /// The inverse CDF at fixed uniforms, against values computed independently
    /// (Python: `-m*ln(a - u*(a-b))` with `a = exp(-lo/m)`, `b = exp(-hi/m)`).
    #[test]
    fn the_inverse_cdf_matches_an_independent_computation() {
        struct Fixed(u64);
        impl rand_core::TryRng for Fixed {
            type Error = core::convert::Infallible;
            fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
                Ok(0)
            }
            fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
                Ok(self.0)
            }
            fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Self::Error> {
                Ok(())
            }
        }
        // u = (bits>>11 + 0.5)/2^53 for bits = 2^63 (u ≈ 0.5) and 2^62 (u ≈ 0.25).
        let cases = [
            (1u64 << 63, 100u16, 0u16, 69u16),
            (1 << 62, 100, 0, 28),
            (1 << 63, 50, 100, 134),
        ];
        for (bits, mean, floor, expected) in cases {
            let d = sample_truncated_exponential(
                Delay::from_millis(mean),
                Delay::from_millis(floor),
                1e-6,
                &mut Fixed(bits),
            );
            assert_eq!(
                d.as_millis(),
                expected,
                "bits {bits:#x} mean {mean} floor {floor}"
            );
        }
    }
}
