//! The relay's two keys and nwaku's textual key formats (MIX.md §9, WAKU.md §5.1).
//!
//! * The libp2p **identity**, always secp256k1: the 94-byte mix address field only carries
//!   39-byte secp256k1 peer ids (MIX.md §4.2), so any other identity could not be a hop.
//! * The X25519 **mix key**, independent of the identity.
//!
//! Both live in a key directory: `identity.key` holds the libp2p protobuf encoding of the
//! keypair, `mix.key` 64 lowercase hex characters and a newline. Files are created with mode
//! 0600 (through a temporary file and a rename, so a crash never leaves half a key), the
//! directory with 0700, and a key file that group or others can read is refused. Secrets are
//! zeroized after use and never printed: the `Debug` of [`NodeKeys`] shows only public parts.

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use libp2p::PeerId;
use libp2p::identity::{KeyType, Keypair};
use mix_core::{NodePublicKey, NodeSecretKey};
use zeroize::Zeroizing;

mod mixnode;

pub use mixnode::{MixNodeEntry, format_mixnode, parse_enr_mixnode, parse_mixnode};

/// File name of the libp2p identity inside the key directory.
pub const IDENTITY_FILE: &str = "identity.key";

/// File name of the X25519 mix secret inside the key directory.
pub const MIX_KEY_FILE: &str = "mix.key";

/// Why keys could not be loaded, created or parsed. No variant carries secret material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading or writing a key file or the key directory failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "creating directory", …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A key file can be read by group or others.
    #[error(
        "key file {path} is accessible by group or others (mode {mode:04o}); run `chmod 600 {path}`"
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The data directory is writable by group or others.
    #[error(
        "data directory {path} is writable by group or others (mode {mode:04o}); run `chmod 700 {path}`"
    )]
    InsecureDirectory {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// `identity.key` is not a valid libp2p protobuf keypair.
    #[error("{path} is not a libp2p protobuf-encoded keypair: {source}")]
    IdentityDecode {
        /// The key file.
        path: PathBuf,
        /// What libp2p reported.
        #[source]
        source: libp2p::identity::DecodingError,
    },
    /// `identity.key` holds a key that is not secp256k1.
    #[error(
        "{path} holds a {key_type} identity, but a mix node needs a secp256k1 one (mix addresses \
         carry only secp256k1 peer ids); move it away to have a new one generated"
    )]
    NotSecp256k1 {
        /// The key file.
        path: PathBuf,
        /// The type found.
        key_type: String,
    },
    /// The identity could not be encoded for writing.
    #[error("could not encode the libp2p identity: {0}")]
    IdentityEncode(#[source] libp2p::identity::DecodingError),
    /// A hex key (`--mixkey`, `mix.key`, a `--mixnode` public key) is malformed. The message
    /// never repeats the input.
    #[error("invalid {what}: {reason}")]
    InvalidHexKey {
        /// Which key ("mix secret key", "mix public key").
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `mix.key` does not hold a valid key.
    #[error("{path}: invalid mix key file ({reason}); expected 64 lowercase hex characters")]
    MixKeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--mixnode` entry is malformed.
    #[error("invalid mix node entry {entry:?}: {reason}")]
    InvalidMixNode {
        /// The entry as given (it holds public data only).
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A relay's keys.
pub struct NodeKeys {
    /// The libp2p identity; always secp256k1.
    pub identity: Keypair,
    /// The X25519 mix secret key.
    pub mix: NodeSecretKey,
}

impl NodeKeys {
    /// Fresh keys from the operating system's randomness.
    pub fn generate() -> Self {
        Self {
            identity: Keypair::generate_secp256k1(),
            mix: NodeSecretKey::generate(&mut rand::rng()),
        }
    }

    /// The libp2p peer id of the identity.
    pub fn peer_id(&self) -> PeerId {
        self.identity.public().to_peer_id()
    }

    /// The X25519 mix public key senders use to reach this node.
    pub fn mix_public(&self) -> NodePublicKey {
        self.mix.public_key()
    }
}

impl fmt::Debug for NodeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKeys")
            .field("peer_id", &self.peer_id())
            .field("mix_public", &self.mix_public())
            .finish_non_exhaustive()
    }
}

/// Where each key of [`load_or_create`] came from, for a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyStatus {
    /// The identity was generated and written now.
    pub identity_created: bool,
    /// The mix key was generated and written now.
    pub mix_created: bool,
    /// The mix key came from `--mixkey` (and the stored one, if any, was not used).
    pub mix_from_override: bool,
}

/// Loads `<dir>/identity.key` and `<dir>/mix.key`, creating the missing ones.
///
/// `identity.key` is the libp2p protobuf encoding of a secp256k1 keypair; `mix.key` holds the
/// 64 lowercase hex characters of the X25519 secret (a trailing newline is allowed). A missing
/// directory is created with mode 0700; new files get mode 0600 and are written atomically.
/// `mixkey` (nwaku's `--mixkey`: 64 hex characters, an optional `0x`) replaces the stored mix
/// key for this run; it is not written to disk, and no `mix.key` is created when it is given.
///
/// # Errors
/// [`KeyError::Io`] if the directory or a file cannot be read or written;
/// [`KeyError::InsecurePermissions`] if a key file is readable by group or others;
/// [`KeyError::IdentityDecode`] / [`KeyError::NotSecp256k1`] for a bad or non-secp256k1
/// identity; [`KeyError::MixKeyFile`] for a bad `mix.key`; [`KeyError::InvalidHexKey`] for a
/// bad `mixkey`.
pub fn load_or_create(dir: &Path, mixkey: Option<&str>) -> Result<(NodeKeys, KeyStatus), KeyError> {
    // Parse the override first: a typo should fail before anything is written.
    let override_key = mixkey.map(parse_mix_secret).transpose()?;
    ensure_dir(dir)?;

    let identity_path = dir.join(IDENTITY_FILE);
    let (identity, identity_created) = match read_key_file(&identity_path)? {
        Some(bytes) => (decode_identity(&identity_path, &bytes)?, false),
        None => {
            let keypair = Keypair::generate_secp256k1();
            let encoded = Zeroizing::new(
                keypair
                    .to_protobuf_encoding()
                    .map_err(KeyError::IdentityEncode)?,
            );
            write_key_file(&identity_path, &encoded)?;
            (keypair, true)
        }
    };

    let mix_path = dir.join(MIX_KEY_FILE);
    let (mix, mix_created, mix_from_override) = match override_key {
        Some(key) => (key, false, true),
        None => match read_key_file(&mix_path)? {
            Some(bytes) => (decode_mix_file(&mix_path, &bytes)?, false, false),
            None => {
                let key = NodeSecretKey::generate(&mut rand::rng());
                let secret = Zeroizing::new(key.to_bytes());
                let mut text = Zeroizing::new(hex::encode(secret.as_slice()));
                text.push('\n');
                write_key_file(&mix_path, text.as_bytes())?;
                (key, true, false)
            }
        },
    };

    Ok((
        NodeKeys { identity, mix },
        KeyStatus {
            identity_created,
            mix_created,
            mix_from_override,
        },
    ))
}

/// Parses a mix secret key: 64 hex characters (nwaku's `--mixkey`), an optional `0x` prefix,
/// surrounding whitespace ignored.
///
/// # Errors
/// [`KeyError::InvalidHexKey`] if it is not 32 bytes of hex. The message does not repeat the
/// input.
pub fn parse_mix_secret(hex: &str) -> Result<NodeSecretKey, KeyError> {
    let bytes = decode_hex32(hex, "mix secret key")?;
    Ok(NodeSecretKey::from_bytes(*bytes))
}

/// Parses a mix public key: 64 hex characters, an optional `0x` prefix (nwaku writes one in
/// rendezvous records and `/debug/v1/info`), surrounding whitespace ignored.
///
/// # Errors
/// [`KeyError::InvalidHexKey`] if it is not 32 bytes of hex, or is all zero (not a usable
/// X25519 public key).
pub fn parse_mix_public(hex: &str) -> Result<NodePublicKey, KeyError> {
    let bytes = decode_hex32(hex, "mix public key")?;
    if bytes.iter().all(|b| *b == 0) {
        return Err(KeyError::InvalidHexKey {
            what: "mix public key",
            reason: "the all-zero key is not a usable X25519 public key".into(),
        });
    }
    Ok(NodePublicKey::from_bytes(*bytes))
}

/// Decodes 64 hex characters (optional `0x`, whitespace around ignored) without echoing them.
fn decode_hex32(input: &str, what: &'static str) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let trimmed = input.trim();
    let digits = trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
        .unwrap_or(trimmed);
    let invalid = |reason: String| KeyError::InvalidHexKey { what, reason };
    if digits.len() != 64 {
        return Err(invalid(format!(
            "expected 64 hex characters, got {}",
            digits.chars().count()
        )));
    }
    let mut out = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(digits, out.as_mut_slice()).map_err(|e| match e {
        hex::FromHexError::InvalidHexCharacter { index, .. } => {
            invalid(format!("non-hex character at position {}", index + 1))
        }
        _ => invalid("expected 64 hex characters".into()),
    })?;
    Ok(out)
}

/// Decodes `identity.key`, insisting on secp256k1.
fn decode_identity(path: &Path, bytes: &[u8]) -> Result<Keypair, KeyError> {
    let not_secp = |key_type: String| KeyError::NotSecp256k1 {
        path: path.to_owned(),
        key_type,
    };
    match Keypair::from_protobuf_encoding(bytes) {
        Ok(keypair) if keypair.key_type() == KeyType::Secp256k1 => Ok(keypair),
        Ok(keypair) => Err(not_secp(keypair.key_type().to_string())),
        Err(source) => {
            // A key type this build cannot decode (e.g. RSA) still deserves the clear message:
            // the protobuf starts with field 1 (`Type`, varint).
            match bytes {
                [0x08, t, ..] if *t != 2 => Err(not_secp(protobuf_key_type_name(*t))),
                _ => Err(KeyError::IdentityDecode {
                    path: path.to_owned(),
                    source,
                }),
            }
        }
    }
}

/// The name of a libp2p protobuf `KeyType` value.
fn protobuf_key_type_name(t: u8) -> String {
    match t {
        0 => "Ed25519".into(),
        1 => "RSA".into(),
        2 => "Secp256k1".into(),
        3 => "ECDSA".into(),
        other => format!("unknown (type {other})"),
    }
}

/// Decodes `mix.key`: 64 lowercase hex characters and optional trailing line ending.
fn decode_mix_file(path: &Path, bytes: &[u8]) -> Result<NodeSecretKey, KeyError> {
    let bad = |reason: String| KeyError::MixKeyFile {
        path: path.to_owned(),
        reason,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))?;
    let digits = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    if digits.len() != 64 {
        return Err(bad(format!("{} characters", digits.chars().count())));
    }
    if let Some(pos) = digits
        .bytes()
        .position(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(bad(format!(
            "character {} is not a lowercase hex digit",
            pos + 1
        )));
    }
    let mut out = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(digits, out.as_mut_slice()).map_err(|_| bad("not hex".into()))?;
    Ok(NodeSecretKey::from_bytes(*out))
}

/// Creates `dir` (mode 0700) if it does not exist.
fn ensure_dir(dir: &Path) -> Result<(), KeyError> {
    if dir.is_dir() {
        // Others who can write here could swap the key files or plant a symlink where the
        // replay store writes its temporary file: refuse such a directory.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let metadata = fs::metadata(dir).map_err(|source| KeyError::Io {
                action: "reading the key directory's mode",
                path: dir.to_owned(),
                source,
            })?;
            let mode = metadata.permissions().mode() & 0o7777;
            if mode & 0o022 != 0 {
                return Err(KeyError::InsecureDirectory {
                    path: dir.to_owned(),
                    mode,
                });
            }
        }
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| KeyError::Io {
        action: "creating key directory",
        path: dir.to_owned(),
        source,
    })
}

/// Reads a key file, `None` if it does not exist. Refuses one readable by group or others.
fn read_key_file(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, KeyError> {
    let io_err = |source| KeyError::Io {
        action: "reading",
        path: path.to_owned(),
        source,
    };
    let metadata = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::InsecurePermissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    fs::read(path)
        .map(|b| Some(Zeroizing::new(b)))
        .map_err(io_err)
}

/// Writes a key file atomically with mode 0600: a temporary file in the same directory,
/// fsync, rename, fsync of the directory.
fn write_key_file(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let io_err = |action: &'static str, p: &Path| {
        let p = p.to_owned();
        move |source| KeyError::Io {
            action,
            path: p,
            source,
        }
    };
    // A temporary file left by a crash holds nothing we need.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("removing stale temporary file", &tmp)(e)),
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_err("writing", &tmp)(e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err("renaming into place", path)(e));
    }
    sync_dir(dir);
    Ok(())
}

/// Makes a rename durable; best effort (not every platform can open a directory).
pub(crate) fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::mixnode::is_secp256k1_peer_id;
    use super::*;

    /// MIX.md §9: the real pair from nwaku's simulation config.
    const NWAKU_PRIV: &str = "c86029e02c05a7e25182974b519d0d52fcbafeca6fe191fbb64857fb05be1a53";
    const NWAKU_PUB: &str = "9231e86da6432502900a84f867004ce78632ab52cd8e30b1ec322cd795710c2a";

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn the_nwaku_mix_key_gives_its_public_key() {
        let sk = parse_mix_secret(NWAKU_PRIV).unwrap();
        assert_eq!(sk.public_key().to_string(), NWAKU_PUB);
        let with_prefix = parse_mix_secret(&format!("0x{NWAKU_PRIV}\n")).unwrap();
        assert_eq!(with_prefix.public_key(), sk.public_key());
        let upper = parse_mix_secret(&NWAKU_PRIV.to_uppercase()).unwrap();
        assert_eq!(upper.public_key(), sk.public_key());
        assert_eq!(
            parse_mix_public(NWAKU_PUB).unwrap(),
            sk.public_key(),
            "public parse"
        );
        assert_eq!(
            parse_mix_public(&format!("0x{NWAKU_PUB}")).unwrap(),
            sk.public_key()
        );
    }

    #[test]
    fn bad_hex_keys_are_refused_without_echoing_them() {
        let short = &NWAKU_PRIV[..62];
        let err = parse_mix_secret(short).unwrap_err();
        assert!(matches!(err, KeyError::InvalidHexKey { .. }));
        assert!(err.to_string().contains("got 62"), "{err}");
        assert!(!err.to_string().contains(short));

        let mut bad = NWAKU_PRIV.to_owned();
        bad.replace_range(10..11, "z");
        let err = parse_mix_secret(&bad).unwrap_err();
        assert!(err.to_string().contains("position 11"), "{err}");
        assert!(!err.to_string().contains(&bad[..20]));

        assert!(parse_mix_secret("").is_err());
        assert!(parse_mix_secret("0x").is_err());
        assert!(parse_mix_secret(&"é".repeat(32)).is_err());
        assert!(parse_mix_public(&"0".repeat(64)).is_err());
        assert!(parse_mix_public(&format!("{NWAKU_PUB}00")).is_err());
    }

    #[test]
    fn keys_are_created_with_private_modes_and_reloaded() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys").join("nested");
        let (keys, status) = load_or_create(&dir, None).unwrap();
        assert_eq!(
            status,
            KeyStatus {
                identity_created: true,
                mix_created: true,
                mix_from_override: false
            }
        );
        assert_eq!(keys.identity.key_type(), KeyType::Secp256k1);
        assert!(is_secp256k1_peer_id(&keys.peer_id()));
        #[cfg(unix)]
        {
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join(IDENTITY_FILE)), 0o600);
            assert_eq!(mode(&dir.join(MIX_KEY_FILE)), 0o600);
        }
        let text = fs::read_to_string(dir.join(MIX_KEY_FILE)).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        assert!(
            text.trim_end()
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        // No temporary files left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);

        let (again, status) = load_or_create(&dir, None).unwrap();
        assert_eq!(
            status,
            KeyStatus {
                identity_created: false,
                mix_created: false,
                mix_from_override: false
            }
        );
        assert_eq!(again.peer_id(), keys.peer_id());
        assert_eq!(again.mix_public(), keys.mix_public());
    }

    #[test]
    fn a_mix_key_file_without_newline_or_with_crlf_loads() {
        let tmp = tempfile::tempdir().unwrap();
        for contents in [NWAKU_PRIV.to_owned(), format!("{NWAKU_PRIV}\r\n")] {
            write_key_file(&tmp.path().join(MIX_KEY_FILE), contents.as_bytes()).unwrap();
            let (keys, status) = load_or_create(tmp.path(), None).unwrap();
            assert!(!status.mix_created);
            assert_eq!(keys.mix_public().to_string(), NWAKU_PUB);
        }
    }

    #[test]
    fn the_mixkey_override_wins_and_is_not_written() {
        let tmp = tempfile::tempdir().unwrap();
        let (keys, status) = load_or_create(tmp.path(), Some(NWAKU_PRIV)).unwrap();
        assert!(status.mix_from_override && !status.mix_created);
        assert_eq!(keys.mix_public().to_string(), NWAKU_PUB);
        assert!(!tmp.path().join(MIX_KEY_FILE).exists());

        // With a stored key present, the override still wins and the file is untouched.
        let (_, _) = load_or_create(tmp.path(), None).unwrap();
        let stored = fs::read(tmp.path().join(MIX_KEY_FILE)).unwrap();
        let (keys, _) = load_or_create(tmp.path(), Some(&format!("0x{NWAKU_PRIV}"))).unwrap();
        assert_eq!(keys.mix_public().to_string(), NWAKU_PUB);
        assert_eq!(fs::read(tmp.path().join(MIX_KEY_FILE)).unwrap(), stored);

        // A bad override fails before anything is created.
        let fresh = tmp.path().join("fresh");
        assert!(matches!(
            load_or_create(&fresh, Some("abc")),
            Err(KeyError::InvalidHexKey { .. })
        ));
        assert!(!fresh.exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_data_directory_writable_by_others_is_refused_with_the_chmod_to_run() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let err = load_or_create(tmp.path(), None).unwrap_err();
        assert!(matches!(
            err,
            KeyError::InsecureDirectory { mode: 0o777, .. }
        ));
        assert!(err.to_string().contains("chmod 700"), "{err}");
        assert!(!tmp.path().join(IDENTITY_FILE).exists(), "nothing written");
        // Readable by others is fine (the key files themselves are 0600).
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        load_or_create(tmp.path(), None).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_readable_by_others_is_refused_with_the_chmod_to_run() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        load_or_create(tmp.path(), None).unwrap();
        for file in [IDENTITY_FILE, MIX_KEY_FILE] {
            let path = tmp.path().join(file);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
            let err = load_or_create(tmp.path(), None).unwrap_err();
            assert!(matches!(
                err,
                KeyError::InsecurePermissions { mode: 0o640, .. }
            ));
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("chmod 600 {}", path.display())),
                "{msg}"
            );
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        load_or_create(tmp.path(), None).unwrap();
    }

    #[test]
    fn bad_key_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        load_or_create(dir, None).unwrap();
        let mix = dir.join(MIX_KEY_FILE);
        let identity = dir.join(IDENTITY_FILE);
        let original_mix = fs::read(&mix).unwrap();

        for bad in [
            NWAKU_PRIV.to_uppercase(),
            format!("0x{NWAKU_PRIV}"),
            format!("{NWAKU_PRIV}\n\n"),
            NWAKU_PRIV[..63].to_owned(),
            String::new(),
        ] {
            write_key_file(&mix, bad.as_bytes()).unwrap();
            let err = load_or_create(dir, None).unwrap_err();
            assert!(matches!(err, KeyError::MixKeyFile { .. }), "{bad:?}: {err}");
            assert!(!err.to_string().contains(&NWAKU_PRIV[..16]));
        }
        write_key_file(&mix, &[0xff; 64]).unwrap();
        assert!(matches!(
            load_or_create(dir, None),
            Err(KeyError::MixKeyFile { .. })
        ));
        write_key_file(&mix, &original_mix).unwrap();

        // Garbage identity.
        write_key_file(&identity, b"not a key").unwrap();
        assert!(matches!(
            load_or_create(dir, None),
            Err(KeyError::IdentityDecode { .. })
        ));
        // A protobuf Ed25519 private key (Type = 0, 64 bytes of data).
        let mut ed = vec![0x08, 0x00, 0x12, 0x40];
        ed.extend([7u8; 64]);
        write_key_file(&identity, &ed).unwrap();
        let err = load_or_create(dir, None).unwrap_err();
        assert!(matches!(err, KeyError::NotSecp256k1 { .. }), "{err}");
        assert!(err.to_string().contains("Ed25519"), "{err}");
        // An RSA one, which this build may not even decode.
        write_key_file(&identity, &[0x08, 0x01, 0x12, 0x01, 0x00]).unwrap();
        let err = load_or_create(dir, None).unwrap_err();
        assert!(err.to_string().contains("RSA"), "{err}");
    }

    #[test]
    fn debug_shows_no_secret() {
        let keys = parse_mix_secret(NWAKU_PRIV).map(|mix| NodeKeys {
            identity: Keypair::generate_secp256k1(),
            mix,
        });
        let keys = keys.unwrap();
        let debug = format!("{keys:?}");
        assert!(debug.contains(NWAKU_PUB), "{debug}");
        assert!(!debug.contains(&NWAKU_PRIV[..8]), "{debug}");
        let encoded = keys.identity.to_protobuf_encoding().unwrap();
        let secret_hex = hex::encode(&encoded[4..]);
        assert!(!debug.contains(&secret_hex[..16]), "{debug}");
        let generated = NodeKeys::generate();
        assert_eq!(generated.identity.key_type(), KeyType::Secp256k1);
    }
}
