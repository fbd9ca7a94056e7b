//! The one error type JS sees: a `code` from a closed set, a message, and for payloads that do
//! not fit, the largest that does (STYLE Part 6.3). Every Rust error reaches JS through the
//! exhaustive `From` impls here, each arm unit-tested.

use mix_core::BuildError;
use mix_libp2p::ClientError;
use wasm_bindgen::prelude::*;

/// Defines [`Code`], [`Code::ALL`], [`Code::as_str`] and the TypeScript union `MixErrorCode`
/// (in the `.d.ts`) from one list, so they cannot disagree. `js/src/generated.ts` is rendered
/// from the same list (the `js_constants` tests).
macro_rules! codes {
    ($($(#[doc = $doc:literal])+ $variant:ident => $name:literal,)+) => {
        /// The error codes, as `MixErrorCode` strings.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Code {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl Code {
            /// Every code, in a stable order (the order of `MIX_ERROR_CODES` in JS).
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The string JS sees.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }

            /// What the code means (its Rust doc), for the generated JS docs.
            #[cfg(test)]
            pub(crate) const fn meaning(self) -> &'static str {
                match self {
                    $(Self::$variant => concat!($($doc),+),)+
                }
            }
        }

        #[allow(
            dead_code,
            reason = "read through the typescript_custom_section below, which the lint does not see"
        )]
        const TS_ERROR_CODE: &str = concat!(
            "\n/** The stable error codes of `WasmMixError.code`. */\nexport type MixErrorCode =",
            $("\n  | \"", $name, "\"",)+
            ";\n"
        );

        #[wasm_bindgen(typescript_custom_section)]
        const TS_ERROR_CODE_SECTION: &str = TS_ERROR_CODE;
    };
}

codes! {
    /// An option or argument is missing, of the wrong type, out of range or malformed.
    InvalidOptions => "INVALID_OPTIONS",
    /// The message does not fit in one packet with this codec and SURB count; `maxLen` says
    /// what fits.
    PayloadTooLarge => "PAYLOAD_TOO_LARGE",
    /// Too few mix nodes for a path.
    NoRoute => "NO_ROUTE",
    /// The destination is not a mix node of the pool.
    UnknownDestination => "UNKNOWN_DESTINATION",
    /// No reply within the timeout.
    Timeout => "TIMEOUT",
    /// No gateway relay could be reached, or it refused a circuit reservation.
    NotConnected => "NOT_CONNECTED",
    /// Every copy of the request failed at its first hop.
    SendFailed => "SEND_FAILED",
    /// Every reply came back unopenable (tampered on the way).
    InvalidReply => "INVALID_REPLY",
    /// The reply opened but is not the expected response (e.g. not a lightpush response).
    BadReply => "BAD_REPLY",
    /// The client was closed.
    Closed => "CLOSED",
    /// A bug or an unexpected environment (no randomness source, ...).
    Internal => "INTERNAL",
}

/// An error from the mix client: `code` is one of `MixErrorCode`, stable across versions;
/// `message` is for people; `maxLen` is set with `PAYLOAD_TOO_LARGE`.
#[wasm_bindgen(js_name = WasmMixError)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MixError {
    code: Code,
    message: String,
    max_len: Option<usize>,
}

#[wasm_bindgen(js_class = WasmMixError)]
impl MixError {
    /// One of `MixErrorCode`.
    #[wasm_bindgen(getter, unchecked_return_type = "MixErrorCode")]
    pub fn code(&self) -> String {
        self.code.as_str().to_owned()
    }

    /// What went wrong, for people.
    #[wasm_bindgen(getter)]
    pub fn message(&self) -> String {
        self.message.clone()
    }

    /// With `PAYLOAD_TOO_LARGE`: the largest size that fits.
    #[wasm_bindgen(getter, js_name = maxLen)]
    pub fn max_len(&self) -> Option<usize> {
        self.max_len
    }
}

impl MixError {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            max_len: None,
        }
    }

    /// `PAYLOAD_TOO_LARGE`, saying what fits.
    pub fn too_large(what: &str, max_len: usize) -> Self {
        Self {
            code: Code::PayloadTooLarge,
            message: format!("the {what} is too large: at most {max_len} bytes fit"),
            max_len: Some(max_len),
        }
    }

    /// `INVALID_OPTIONS` with `message`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidOptions, message)
    }

    /// The code.
    pub const fn kind(&self) -> Code {
        self.code
    }

    /// The message.
    pub fn text(&self) -> &str {
        &self.message
    }

    /// The largest size that fits, for `PAYLOAD_TOO_LARGE`.
    pub const fn limit(&self) -> Option<usize> {
        self.max_len
    }
}

impl core::fmt::Display for MixError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl From<ClientError> for MixError {
    fn from(e: ClientError) -> Self {
        let message = e.to_string();
        let code = match e {
            ClientError::NoRoute { .. } => Code::NoRoute,
            ClientError::UnknownDestination(_) => Code::UnknownDestination,
            ClientError::ExcludedDestination(_) => Code::InvalidOptions,
            ClientError::MessageTooLong { max_len } => {
                return Self::too_large("message", max_len);
            }
            ClientError::InvalidOptions(_) => Code::InvalidOptions,
            ClientError::Build(
                BuildError::CodecTooLong | BuildError::TooManySurbs | BuildError::WeakPublicKey,
            ) => Code::InvalidOptions,
            ClientError::Build(_) => Code::Internal,
            ClientError::Timeout => Code::Timeout,
            ClientError::InvalidReply => Code::InvalidReply,
            ClientError::Busy | ClientError::FirstHopUnreachable { .. } => Code::SendFailed,
            // ClientError is non_exhaustive: a future variant is a bug until mapped here.
            _ => Code::Internal,
        };
        Self::new(code, message)
    }
}

impl From<serde_wasm_bindgen::Error> for MixError {
    fn from(e: serde_wasm_bindgen::Error) -> Self {
        Self::invalid(format!("invalid options: {e}"))
    }
}

impl From<mix_waku::DecodeError> for MixError {
    fn from(e: mix_waku::DecodeError) -> Self {
        Self::invalid(format!("not a valid WakuMessage: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some_peer() -> mix_libp2p::PeerId {
        "16Uiu2HAmLtKaFaSWDohToWhWUZFLtqzYZGPFuXwKrojFVF6az5UF"
            .parse()
            .unwrap()
    }

    fn code_of(e: ClientError) -> &'static str {
        MixError::from(e).code.as_str()
    }

    #[test]
    fn every_client_error_maps_to_its_code() {
        assert_eq!(
            code_of(ClientError::NoRoute {
                needed: 4,
                available: 1
            }),
            "NO_ROUTE"
        );
        assert_eq!(
            code_of(ClientError::UnknownDestination(some_peer())),
            "UNKNOWN_DESTINATION"
        );
        assert_eq!(
            code_of(ClientError::InvalidOptions("redundancy")),
            "INVALID_OPTIONS"
        );
        assert_eq!(
            code_of(ClientError::Build(BuildError::BufferTooSmall {
                required: 4608
            })),
            "INTERNAL"
        );
        for e in [
            BuildError::CodecTooLong,
            BuildError::TooManySurbs,
            BuildError::WeakPublicKey,
        ] {
            assert_eq!(code_of(ClientError::Build(e)), "INVALID_OPTIONS");
        }
        assert_eq!(code_of(ClientError::Timeout), "TIMEOUT");
        assert_eq!(code_of(ClientError::InvalidReply), "INVALID_REPLY");
    }

    #[test]
    fn too_long_carries_the_limit() {
        let e = MixError::from(ClientError::MessageTooLong { max_len: 3201 });
        assert_eq!(e.code.as_str(), "PAYLOAD_TOO_LARGE");
        assert_eq!(e.max_len(), Some(3201));
        assert!(e.message().contains("3201"), "{}", e.message());
    }

    #[test]
    fn decode_errors_are_invalid_options() {
        let e = MixError::from(mix_waku::DecodeError::MissingField("payload"));
        assert_eq!(e.code(), "INVALID_OPTIONS");
        assert!(e.message().contains("payload"));
    }

    #[test]
    fn codes_are_distinct_and_in_the_typescript_union() {
        let mut names: Vec<_> = Code::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Code::ALL.len());
        for name in names {
            assert!(TS_ERROR_CODE.contains(&format!("\"{name}\"")), "{name}");
        }
        assert_eq!(
            TS_ERROR_CODE.matches("\n  | \"").count(),
            Code::ALL.len(),
            "{TS_ERROR_CODE}"
        );
    }
}
