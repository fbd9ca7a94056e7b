//! Packets the harness builds itself, as an attacker who knows the public pool would: forward
//! packets to a chosen route, and replies through a SURB made for a relay that never asked.

use mix_core::{Delay, Hop, PACKET_LEN, PacketBuilder, Route, Surb};
use mix_libp2p::{Frame, MixNode};
use mix_relay::waku::{self, LIGHTPUSH_PROTOCOL, WakuMessage};

use crate::load::{TOPIC, now_ns};

fn hop(node: &MixNode) -> Hop {
    Hop {
        address: node.address,
        public_key: node.public_key,
    }
}

fn route(nodes: [&MixNode; 3]) -> Route {
    Route {
        hops: nodes.map(hop),
        delays: [Delay::ZERO; 2],
    }
}

/// A valid forward packet through `nodes` (the last is the exit and lightpush service), with a
/// lightpush request and no SURB: the exit publishes `text` and answers nobody.
pub(crate) fn forward(nodes: [&MixNode; 3], text: &str) -> anyhow::Result<Frame> {
    let mut rng: rand::rngs::StdRng = rand::make_rng();
    let message = WakuMessage {
        payload: text.as_bytes().to_vec(),
        content_topic: "/mix-reliability/1/captured/proto".into(),
        timestamp: Some(now_ns()),
        ..WakuMessage::default()
    };
    let body = waku::encode_request(waku::request_id(&mut rng), TOPIC, message);
    let mut packet = Box::new([0u8; PACKET_LEN]);
    PacketBuilder::new(&route(nodes))
        .build(&mut rng, LIGHTPUSH_PROTOCOL, &body, packet.as_mut_slice())
        .map_err(|e| anyhow::anyhow!("building a packet: {e}"))?;
    Ok(Frame::new(packet))
}

/// A reply packet through `nodes` on a SURB whose creator is `nodes[2]`, made here: the
/// creator has no such SURB id and must drop it.
pub(crate) fn unsolicited_reply(nodes: [&MixNode; 3]) -> anyhow::Result<Frame> {
    let mut rng: rand::rngs::StdRng = rand::make_rng();
    let (surb, _keys) = Surb::create(&mut rng, &route(nodes))
        .map_err(|e| anyhow::anyhow!("building a SURB: {e}"))?;
    let mut packet = Box::new([0u8; PACKET_LEN]);
    surb.build_reply(&mut rng, b"nobody asked", packet.as_mut_slice())
        .map_err(|e| anyhow::anyhow!("building a reply: {e}"))?;
    Ok(Frame::new(packet))
}

/// `uvarint(len) ‖ bytes`: one frame as raw bytes.
pub(crate) fn raw_frame(bytes: &[u8]) -> Vec<u8> {
    let mut prefix = unsigned_varint::encode::usize_buffer();
    let prefix = unsigned_varint::encode::usize(bytes.len(), &mut prefix);
    let mut out = Vec::with_capacity(prefix.len() + bytes.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(bytes);
    out
}
