//! Single-use reply blocks (MIX.md §6; the unmerged RFC §8.7 and Nim `createSURB`,
//! `useSURB`, `processReply`).
//!
//! A SURB is split by owner, as in later versions of sphinx:
//!
//! * [`Surb`] (734 bytes on the wire) is what the sender puts in a forward packet and the exit
//!   uses once: the first hop of the return path, a ready header, and the reply key `k̃`.
//! * [`SurbKeys`] stays with the creator: the SURB id, `k̃` and the return path's shared
//!   secrets `s₀…s₂`. It is exactly the material a SURB user must never have.
//!
//! The return path is three mix nodes whose last one is the creator itself; its header is built
//! like a forward header with a zero destination and the SURB id in the exit block, so the
//! creator's own processing returns [`crate::Action::Reply`].
//!
//! The 734 SURB bytes are the same in both [`Format`]s; the reply layer and the padding are not
//! (MIX-LIONESS.md §3). So a [`Surb`] and its [`SurbKeys`] carry the format they were made for
//! (not on the wire): SURBs decoded from a peeled packet take the packet's format, and
//! [`Surb::from_bytes`] gives the default one ([`Surb::with_format`] changes it).

use core::fmt;

use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::address::Address;
use crate::error::{BuildError, DecodeError};
use crate::format::Format;
use crate::header::{PathSecrets, Route, write_header};
use crate::keys::SharedSecret;
use crate::params::{ADDR_LEN, HEADER_LEN, PATH_LEN, REPLY_KEY_LEN, SURB_ID_LEN, SURB_LEN};
use crate::util::{Hex, Reader};

/// The 16-byte identifier under which a SURB's creator files its [`SurbKeys`]; never zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SurbId([u8; SURB_ID_LEN]);

impl SurbId {
    /// Wraps 16 bytes.
    pub const fn from_bytes(bytes: [u8; SURB_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; SURB_ID_LEN] {
        &self.0
    }
}

impl fmt::Debug for SurbId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SurbId({})", Hex(&self.0))
    }
}

/// A SURB as carried in a forward payload and used once by an exit (MIX.md §4.8):
/// `first hop address (94) ‖ header (624) ‖ reply key (16)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Surb {
    first_hop: Address,
    pub(crate) header: [u8; HEADER_LEN],
    pub(crate) reply_key: [u8; REPLY_KEY_LEN],
    /// The format replies are built in; not part of the wire bytes.
    pub(crate) format: Format,
}

impl Surb {
    /// Creates a SURB of the default format ([`Format::Lip183`]) for the return path `route`;
    /// see [`Surb::create_with_format`].
    ///
    /// # Errors
    /// [`BuildError::WeakPublicKey`] if a hop's key is of small order.
    pub fn create<R: CryptoRng + ?Sized>(
        rng: &mut R,
        route: &Route,
    ) -> Result<(Self, SurbKeys), BuildError> {
        Self::create_with_format(Format::default(), rng, route)
    }

    /// Creates a SURB of `format` for the return path `route`, whose last hop must be the
    /// creator itself (reachable at that hop's address, holding that hop's mix secret key).
    /// Draws the ephemeral secret, the SURB id and the reply key from `rng`.
    ///
    /// # Errors
    /// [`BuildError::WeakPublicKey`] if a hop's key is of small order.
    pub fn create_with_format<R: CryptoRng + ?Sized>(
        format: Format,
        rng: &mut R,
        route: &Route,
    ) -> Result<(Self, SurbKeys), BuildError> {
        let mut x = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(x.as_mut());
        let mut id = [0u8; SURB_ID_LEN];
        // Nim refuses the zero id (it marks forward headers); redraw in the 2⁻¹²⁸ case.
        while id == [0u8; SURB_ID_LEN] {
            rng.fill_bytes(&mut id);
        }
        let mut reply_key = Zeroizing::new([0u8; REPLY_KEY_LEN]);
        rng.fill_bytes(reply_key.as_mut());
        Self::create_with_fixed_randomness_for_testing_only(
            format,
            &x,
            SurbId(id),
            &reply_key,
            route,
        )
    }

    /// [`Surb::create`] with the ephemeral secret, id and reply key given. For test vectors.
    ///
    /// # Errors
    /// As [`Surb::create`], and [`BuildError::WeakPublicKey`] for a zero id (which would make
    /// the reply look like a forward packet's exit).
    #[doc(hidden)]
    pub fn create_with_fixed_randomness_for_testing_only(
        format: Format,
        x: &[u8; 32],
        id: SurbId,
        reply_key: &[u8; REPLY_KEY_LEN],
        route: &Route,
    ) -> Result<(Self, SurbKeys), BuildError> {
        if id.0 == [0u8; SURB_ID_LEN] {
            return Err(BuildError::WeakPublicKey);
        }
        let path = PathSecrets::derive(x, route)?;
        let mut header = [0u8; HEADER_LEN];
        write_header(&path, route, &[0u8; ADDR_LEN], &id.0, &mut header);
        let keys = SurbKeys {
            id,
            reply_key: *reply_key,
            secrets: path.secrets.clone(),
            format,
        };
        let surb = Self {
            first_hop: *route.first_hop(),
            header,
            reply_key: *reply_key,
            format,
        };
        Ok((surb, keys))
    }

    /// Where the exit sends the reply packet.
    pub const fn first_hop(&self) -> &Address {
        &self.first_hop
    }

    /// The format [`Surb::build_reply`] builds in.
    pub const fn format(&self) -> Format {
        self.format
    }

    /// The same SURB, answering in `format`.
    #[must_use]
    pub const fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// The 734 wire bytes.
    pub fn to_bytes(&self) -> [u8; SURB_LEN] {
        let mut out = [0u8; SURB_LEN];
        let parts = self
            .first_hop
            .to_bytes()
            .into_iter()
            .chain(self.header)
            .chain(self.reply_key);
        for (o, b) in out.iter_mut().zip(parts) {
            *o = b;
        }
        out
    }

    /// Decodes a SURB from its 734 wire bytes, for the default format.
    ///
    /// # Errors
    /// [`DecodeError::Length`] unless `bytes` is 734 bytes; an invalid or empty first-hop
    /// address as [`Address::from_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let length = DecodeError::Length { expected: SURB_LEN };
        if bytes.len() != SURB_LEN {
            return Err(length);
        }
        let mut r = Reader::new(bytes);
        let first_hop = Address::from_bytes(r.take(ADDR_LEN).ok_or(length)?)?;
        let header = *r.take_array::<HEADER_LEN>().ok_or(length)?;
        let reply_key = *r.take_array::<REPLY_KEY_LEN>().ok_or(length)?;
        Ok(Self {
            first_hop,
            header,
            reply_key,
            format: Format::default(),
        })
    }
}

impl Drop for Surb {
    fn drop(&mut self) {
        self.reply_key.zeroize();
    }
}

impl fmt::Debug for Surb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Surb")
            .field("first_hop", &self.first_hop)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// Serialized length of [`SurbKeys`]: `id (16) ‖ k̃ (16) ‖ s₀ ‖ s₁ ‖ s₂ (3 × 32) ‖ format (1)`,
/// the format byte being 0 for [`Format::V039`] and 1 for [`Format::Lip183`].
pub const SURB_KEYS_LEN: usize = LEGACY_SURB_KEYS_LEN + 1;

/// Length of [`SurbKeys`] serialized before the format byte existed (the first 112 bytes of
/// the current layout). [`SurbKeys::from_bytes`] still reads it, as [`Format::V039`] keys:
/// the only format there was.
pub const LEGACY_SURB_KEYS_LEN: usize = SURB_ID_LEN + REPLY_KEY_LEN + 32 * PATH_LEN;

/// What a SURB's creator keeps to open the reply (MIX.md §6.1, §6.4): the id, the reply key,
/// the return path's shared secrets and the format. Zeroized on drop; `Debug` shows only the
/// id and the format.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SurbKeys {
    #[zeroize(skip)]
    id: SurbId,
    pub(crate) reply_key: [u8; REPLY_KEY_LEN],
    pub(crate) secrets: [SharedSecret; PATH_LEN],
    #[zeroize(skip)]
    pub(crate) format: Format,
}

impl SurbKeys {
    /// The id the reply will carry ([`crate::Action::Reply::surb_id`]).
    pub const fn id(&self) -> SurbId {
        self.id
    }

    /// The format the SURB was made for, which [`SurbKeys::open_reply`] opens.
    pub const fn format(&self) -> Format {
        self.format
    }

    /// The keys as bytes, to persist them (e.g. a browser's `IndexedDB`) until the reply comes:
    /// `id (16) ‖ k̃ (16) ‖ s₀ ‖ s₁ ‖ s₂ (3 × 32) ‖ format (1: 0 = v0.39, 1 = LIP-183)`.
    pub fn to_bytes(&self) -> Zeroizing<[u8; SURB_KEYS_LEN]> {
        let mut out = Zeroizing::new([0u8; SURB_KEYS_LEN]);
        let format = [self.format.to_byte()];
        let parts = self
            .id
            .0
            .iter()
            .chain(&self.reply_key)
            .chain(self.secrets.iter().flat_map(SharedSecret::as_bytes))
            .chain(&format);
        for (o, b) in out.iter_mut().zip(parts) {
            *o = *b;
        }
        out
    }

    /// Keys from [`SurbKeys::to_bytes`] ([`SURB_KEYS_LEN`] bytes), or from the 112 bytes an
    /// earlier version wrote ([`LEGACY_SURB_KEYS_LEN`], read as [`Format::V039`] keys).
    ///
    /// # Errors
    /// [`DecodeError::Length`] for any other length or an unknown format byte.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let length = DecodeError::Length {
            expected: SURB_KEYS_LEN,
        };
        if bytes.len() != SURB_KEYS_LEN && bytes.len() != LEGACY_SURB_KEYS_LEN {
            return Err(length);
        }
        let mut r = Reader::new(bytes);
        let id = SurbId(*r.take_array().ok_or(length)?);
        let reply_key = *r.take_array().ok_or(length)?;
        let mut secrets = [const { SharedSecret::new([0u8; 32]) }; PATH_LEN];
        for secret in &mut secrets {
            *secret = SharedSecret::new(*r.take_array().ok_or(length)?);
        }
        let format = match r.take_u8() {
            None => Format::V039,
            Some(byte) => Format::from_byte(byte).ok_or(length)?,
        };
        Ok(Self {
            id,
            reply_key,
            secrets,
            format,
        })
    }

    /// The return path's shared secrets `s₀…s₂`.
    pub const fn shared_secrets(&self) -> &[SharedSecret; PATH_LEN] {
        &self.secrets
    }
}

impl fmt::Debug for SurbKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SurbKeys")
            .field("id", &self.id)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// The SURBs of a received forward message: `count × 734` bytes whose first-hop addresses
/// have been checked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Surbs<'a>(&'a [u8], Format);

impl<'a> Surbs<'a> {
    /// Checks every SURB in `bytes` (a multiple of 734 bytes). They answer in the default
    /// format; [`Surbs::with_format`] changes it.
    ///
    /// # Errors
    /// [`DecodeError::SurbCount`] if `bytes` is not a whole number of SURBs; a SURB's invalid
    /// first-hop address as [`Address::from_bytes`].
    pub fn new(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let (chunks, rest) = bytes.as_chunks::<SURB_LEN>();
        if !rest.is_empty() {
            return Err(DecodeError::SurbCount);
        }
        for chunk in chunks {
            Surb::from_bytes(chunk)?;
        }
        Ok(Self(bytes, Format::default()))
    }

    /// The same SURBs, answering in `format`.
    #[must_use]
    pub const fn with_format(self, format: Format) -> Self {
        Self(self.0, format)
    }

    /// The format the SURBs answer in (a received packet's SURBs: the packet's format).
    pub const fn format(&self) -> Format {
        self.1
    }

    /// How many SURBs there are.
    pub const fn len(&self) -> usize {
        self.0.len() / SURB_LEN
    }

    /// Whether there are none (no reply is wanted).
    pub const fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The SURBs, decoded, in [`Surbs::format`].
    pub fn iter(&self) -> impl Iterator<Item = Surb> + 'a {
        // Every chunk was decoded successfully in `new`.
        let format = self.1;
        self.0
            .as_chunks::<SURB_LEN>()
            .0
            .iter()
            .filter_map(move |chunk| Surb::from_bytes(chunk).ok().map(|s| s.with_format(format)))
    }
}

impl fmt::Debug for Surbs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Surbs")
            .field("len", &self.len())
            .field("format", &self.1)
            .finish()
    }
}
