//! Parameters and sizes of the deployed format (MIX.md §2; Nim `serialization.nim`,
//! `fragmentation.nim`, `sphinx.nim`).
//!
//! Only `K`, `R`, `T`, `PATH_LEN` and `PACKET_LEN` are chosen; every other size is derived from
//! them here, and the compile-time assertions at the bottom pin the derived values to the
//! numbers the spec tabulates, so a change to one constant cannot silently change the wire.

/// `k`: the security parameter in bytes (MIX.md §2).
pub const K: usize = 16;
/// `r`: the largest number of hops the header has room for (MIX.md §2).
pub const R: usize = 5;
/// `t`: the address-plus-delay block is `t·k` bytes (MIX.md §2).
pub const T: usize = 6;
/// `L`: the path length. Nim hard-codes 3 and recognises the exit by the zero run this length
/// implies (MIX.md §2, §5.5 step 8), so every route and every SURB has exactly this many hops.
pub const PATH_LEN: usize = 3;

/// α: an X25519 public value (MIX.md §4.1).
pub const ALPHA_LEN: usize = 32;
/// β: `(r(t+1)+1)k` bytes of layered routing information (MIX.md §2).
pub const BETA_LEN: usize = (R * (T + 1) + 1) * K;
/// γ: HMAC-SHA-256 truncated to `k` bytes (MIX.md §3).
pub const GAMMA_LEN: usize = K;
/// Header = α ‖ β ‖ γ (MIX.md §4.1).
pub const HEADER_LEN: usize = ALPHA_LEN + BETA_LEN + GAMMA_LEN;

/// The delay field: a big-endian `u16` of milliseconds (MIX.md §4.3).
pub const DELAY_LEN: usize = 2;
/// The address field: `t·k − 2` bytes (MIX.md §4.2).
pub const ADDR_LEN: usize = T * K - DELAY_LEN;
/// One hop's routing block: address ‖ delay ‖ γ of the next hop, `(t+1)k` bytes (MIX.md §4.4).
pub const ROUTING_BLOCK_LEN: usize = (T + 1) * K;
/// The part of the next hop's β that an intermediate block carries: `(r(t+1)−t)k` bytes.
pub const BETA_TAIL_LEN: usize = (R * (T + 1) - T) * K;
/// The decrypted block `B` of MIX.md §5.5 step 6: β followed by one routing block of zeros.
pub const DECRYPTED_BETA_LEN: usize = BETA_LEN + ROUTING_BLOCK_LEN;

/// A whole packet on the wire; fixed by the network (MIX.md §2).
pub const PACKET_LEN: usize = 4608;
/// δ, the layered payload: what follows the header (MIX.md §4.1).
pub const PAYLOAD_LEN: usize = PACKET_LEN - HEADER_LEN;
/// The zero prefix of δ that the exit checks (MIX.md §4.6).
pub const PAYLOAD_ZERO_PREFIX_LEN: usize = K;
/// The "message chunk" inside δ (`MessageSize`, MIX.md §2).
pub const MESSAGE_LEN: usize = PAYLOAD_LEN - PAYLOAD_ZERO_PREFIX_LEN;
/// The padding-length field at the front of a chunk (MIX.md §4.6).
pub const PADDING_LEN_LEN: usize = 2;
/// The sequence-number trailer of a chunk in the v0.39 format (MIX.md §4.6); LIP-183 has none.
pub const SEQ_NO_LEN: usize = 4;
/// Bytes of a chunk left for the serialized mix message (`DataSize`, MIX.md §2) in the **v0.39**
/// format. See [`crate::Format::data_len`] for either format.
pub const DATA_LEN: usize = MESSAGE_LEN - PADDING_LEN_LEN - SEQ_NO_LEN;
/// `DataSize` in the LIP-183 format: no seqNo trailer (MIX-LIONESS.md §4).
pub const LIP183_DATA_LEN: usize = MESSAGE_LEN - PADDING_LEN_LEN;

/// A SURB identifier (MIX.md §6.1).
pub const SURB_ID_LEN: usize = K;
/// The reply key `k̃` carried in a SURB (MIX.md §4.8).
pub const REPLY_KEY_LEN: usize = K;
/// A SURB as carried in a forward payload: first-hop address ‖ header ‖ reply key (MIX.md §4.8).
pub const SURB_LEN: usize = ADDR_LEN + HEADER_LEN + REPLY_KEY_LEN;
/// The SURB count byte of a forward mix message (MIX.md §4.7).
pub const SURB_COUNT_LEN: usize = 1;
/// The most SURBs one packet can carry: `(MessageSize − 1 − 1) div SurbSize` (Nim
/// `serializeMessageWithSURBs`).
pub const MAX_SURBS: usize = (MESSAGE_LEN - SURB_COUNT_LEN - 1) / SURB_LEN;

/// The zero run after the SURB id in the exit block, `((t+1)(r−L)+1)k` (Nim `PaddingLength`).
/// The exit is recognised by these bytes decrypting to zero (MIX.md §5.5 step 8).
pub const EXIT_ZERO_RUN_LEN: usize = ((T + 1) * (R - PATH_LEN) + 1) * K;
/// The filler Φ, `(t+1)(L−1)k` bytes (MIX.md §5.2).
pub const FILLER_LEN: usize = (T + 1) * (PATH_LEN - 1) * K;
/// The exit block's plaintext before the filler is appended (MIX.md §4.5).
pub const EXIT_BLOCK_LEN: usize = BETA_LEN - FILLER_LEN;

/// The longest origin codec v0.39 Nim's `MixMessage` decoder can read: it parses only one-byte
/// uvarint lengths (MIX.md §4.7, §17 item 17). LIP-183 decoders read two-byte lengths too
/// ([`crate::Format::max_codec_len`]).
pub const MAX_CODEC_LEN: usize = 127;

/// The codec reserved for cover traffic; it only ever appears inside a packet (MIX.md §1).
pub const COVER_CODEC: &str = "/mix/cover/1.0.0";

// The derived sizes, pinned to the values MIX.md §2 tabulates.
const _: () = {
    assert!(BETA_LEN == 576);
    assert!(HEADER_LEN == 624);
    assert!(ADDR_LEN == 94);
    assert!(ROUTING_BLOCK_LEN == 112);
    assert!(BETA_TAIL_LEN == 464);
    assert!(DECRYPTED_BETA_LEN == 688);
    assert!(PAYLOAD_LEN == 3984);
    assert!(MESSAGE_LEN == 3968);
    assert!(DATA_LEN == 3962);
    assert!(LIP183_DATA_LEN == 3966);
    assert!(SURB_LEN == 734);
    assert!(MAX_SURBS == 5);
    assert!(EXIT_ZERO_RUN_LEN == 240);
    assert!(FILLER_LEN == 224);
    assert!(EXIT_BLOCK_LEN == 352);
    // The exit block is address ‖ delay ‖ SURB id ‖ zero run.
    assert!(EXIT_BLOCK_LEN == ADDR_LEN + DELAY_LEN + SURB_ID_LEN + EXIT_ZERO_RUN_LEN);
    // An intermediate block is routing block ‖ β tail, and fills β exactly.
    assert!(ROUTING_BLOCK_LEN + BETA_TAIL_LEN == BETA_LEN);
    // The zero run starts right after one routing block, where Nim's exit test looks.
    assert!(ADDR_LEN + DELAY_LEN + SURB_ID_LEN == ROUTING_BLOCK_LEN);
    assert!(PATH_LEN >= 1 && PATH_LEN <= R);
};
