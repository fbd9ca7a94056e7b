//! The listener's self-signed certificates: the one it presents, the next one (both hashes are
//! in its address), and the previous one (its hash stays in the Noise extension while it is
//! valid, so an address handed out before the last rotation still passes the client's check).
//!
//! Browsers accept a certificate pinned by hash only if it is ECDSA P-256 and valid for at
//! most 14 days (W3C WebTransport `serverCertificateHashes`); `wtransport`'s self-signed
//! builder makes such certificates.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use libp2p::multihash::Multihash;
use wtransport::Identity;
use wtransport::tls::self_signed::time::OffsetDateTime;

use crate::Error;
use crate::addr::sha256_multihash;

/// The longest validity a browser accepts for a hash-pinned certificate.
pub const MAX_VALIDITY: Duration = Duration::from_secs(14 * 24 * 3600);
/// Certificates start this long before they are made, for peers whose clocks are behind.
pub const CLOCK_SKEW: Duration = Duration::from_secs(3600);

/// One certificate and its key.
pub(crate) struct Cert {
    pub(crate) identity: Identity,
    pub(crate) hash: Multihash<64>,
    pub(crate) not_after: SystemTime,
}

impl core::fmt::Debug for Cert {
    // The identity holds the private key: never printed.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Cert")
            .field("hash", &self.hash)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Cert {
    /// A fresh self-signed certificate valid from `now - CLOCK_SKEW` for `validity` in all.
    pub(crate) fn generate(now: SystemTime, validity: Duration) -> Result<Self, Error> {
        let not_before = now.checked_sub(CLOCK_SKEW).unwrap_or(now);
        let not_after = not_before + validity;
        let identity = Identity::self_signed_builder()
            .subject_alt_names(["localhost"])
            .validity_period(
                OffsetDateTime::from(not_before),
                OffsetDateTime::from(not_after),
            )
            .build()
            .map_err(|e| Error::Certificate(e.to_string()))?;
        let digest = identity
            .certificate_chain()
            .as_slice()
            .first()
            .ok_or_else(|| Error::Certificate("no certificate was made".into()))?
            .hash();
        Ok(Self {
            identity,
            hash: sha256_multihash(digest.as_ref()),
            not_after,
        })
    }
}

/// The certificates of one listener.
#[derive(Debug)]
pub(crate) struct CertSet {
    previous: Option<Cert>,
    current: Cert,
    next: Cert,
    validity: Duration,
}

impl CertSet {
    pub(crate) fn new(now: SystemTime, validity: Duration) -> Result<Self, Error> {
        Ok(Self {
            previous: None,
            current: Cert::generate(now, validity)?,
            next: Cert::generate(now, validity)?,
            validity,
        })
    }

    /// The certificate to present.
    pub(crate) fn current(&self) -> &Cert {
        &self.current
    }

    /// The hashes an address carries: the current certificate's, then the next one's.
    pub(crate) fn advertised(&self) -> [Multihash<64>; 2] {
        [self.current.hash, self.next.hash]
    }

    /// The hashes the Noise handshake vouches for: the advertised ones and, while it is still
    /// valid, the previous certificate's.
    pub(crate) fn noise_hashes(&self, now: SystemTime) -> HashSet<Multihash<64>> {
        let previous = self
            .previous
            .as_ref()
            .filter(|p| p.not_after > now)
            .map(|p| p.hash);
        self.advertised().into_iter().chain(previous).collect()
    }

    /// The next certificate becomes the current one; a new one becomes the next.
    pub(crate) fn rotate(&mut self, now: SystemTime) -> Result<(), Error> {
        let fresh = Cert::generate(now, self.validity)?;
        let next = core::mem::replace(&mut self.next, fresh);
        self.previous = Some(core::mem::replace(&mut self.current, next));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    #[test]
    fn rotation_moves_next_to_current_and_keeps_the_previous_in_noise() {
        let t0 = SystemTime::now();
        let mut set = CertSet::new(t0, 12 * DAY).expect("certs");
        let [a, b] = set.advertised();
        assert_ne!(a, b);
        assert_eq!(set.noise_hashes(t0), HashSet::from([a, b]));
        assert_eq!(set.current().hash, a);

        set.rotate(t0 + DAY).expect("rotate");
        let [b2, c] = set.advertised();
        assert_eq!(b2, b, "the next certificate is presented after a rotation");
        assert_ne!(c, a);
        assert_ne!(c, b);
        assert_eq!(set.current().hash, b);
        assert_eq!(set.noise_hashes(t0 + DAY), HashSet::from([a, b, c]));
        // Once the previous certificate has expired it is no longer vouched for.
        assert_eq!(set.noise_hashes(t0 + 13 * DAY), HashSet::from([b, c]));

        set.rotate(t0 + 2 * DAY).expect("rotate");
        assert!(!set.noise_hashes(t0 + 2 * DAY).contains(&a));
    }

    #[test]
    fn certificates_are_hash_pinnable() {
        let now = SystemTime::now();
        let cert = Cert::generate(now, MAX_VALIDITY).expect("cert");
        let der = cert.identity.certificate_chain().as_slice()[0]
            .der()
            .to_vec();
        // The digest in the multihash is SHA-256 of the DER (what browsers compare).
        let digest = wtransport::tls::Certificate::from_der(der)
            .expect("parses")
            .hash();
        assert_eq!(cert.hash.code(), crate::addr::SHA2_256);
        assert_eq!(cert.hash.digest(), digest.as_ref());
        let lifetime = cert
            .not_after
            .duration_since(now - CLOCK_SKEW)
            .expect("after");
        assert!(lifetime <= MAX_VALIDITY);
    }
}
