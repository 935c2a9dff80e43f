//! The API key format: `ipk_<8 characters>_<43 characters>`. The first part (`ipk_` and eight
//! characters) is the key's visible prefix, by which it is found; the rest is 256 random bits.
//! Keys are stored as their SHA-256: a key this random cannot be guessed from its hash, so a
//! slow password hash would only slow every request down.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const SCHEME: &str = "ipk_";
const PREFIX_CHARS: usize = 8;
const SECRET_BYTES: usize = 32;
/// Lowercase letters and digits without look-alikes, for the part people read aloud.
const PREFIX_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A freshly made key: show `key` once, store `prefix` and `hash`.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub key: String,
    pub prefix: String,
    pub hash: String,
}

/// Makes a key from the operating system's random source.
pub fn generate() -> Result<NewKey, getrandom::Error> {
    let mut prefix_bytes = [0u8; PREFIX_CHARS];
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::getrandom(&mut prefix_bytes)?;
    getrandom::getrandom(&mut secret)?;
    let visible: String = prefix_bytes
        .iter()
        .map(|b| PREFIX_ALPHABET[usize::from(*b) % PREFIX_ALPHABET.len()] as char)
        .collect();
    let prefix = format!("{SCHEME}{visible}");
    let key = format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(secret));
    let hash = hash(&key);
    Ok(NewKey { key, prefix, hash })
}

/// The visible prefix of a well-formed key, or None for anything else.
pub fn prefix_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(SCHEME)?;
    let (visible, secret) = rest.split_once('_')?;
    let well_formed = visible.len() == PREFIX_CHARS
        && visible.bytes().all(|b| PREFIX_ALPHABET.contains(&b))
        && secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| &key[..SCHEME.len() + PREFIX_CHARS])
}

/// SHA-256 of the key, lowercase hex.
pub fn hash(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `key` hashes to `stored`, compared in constant time.
pub fn matches(key: &str, stored: &str) -> bool {
    hash(key).as_bytes().ct_eq(stored.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_parses_and_matches_its_hash_only() {
        let made = generate().expect("random");
        assert_eq!(prefix_of(&made.key), Some(made.prefix.as_str()));
        assert!(made.key.starts_with("ipk_") && made.key.len() == 4 + 8 + 1 + 43);
        assert!(matches(&made.key, &made.hash));
        let other = generate().expect("random");
        assert_ne!(made.key, other.key);
        assert!(!matches(&other.key, &made.hash));
        assert!(
            !made.hash.contains(&made.key[13..]),
            "the hash is not the secret"
        );
    }

    #[test]
    fn malformed_keys_have_no_prefix() {
        let made = generate().expect("random");
        for bad in [
            "",
            "Bearer x",
            "ipk_",
            "ipk_abcdefgh",
            &made.key[..made.key.len() - 1],
            &made.key.replace("ipk_", "ipx_"),
            &format!("{}!", &made.key[..made.key.len() - 1]),
        ] {
            assert_eq!(prefix_of(bad), None, "{bad:?}");
        }
    }
}
