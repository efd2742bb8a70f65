//! Encryption of secrets at rest (ChaCha20-Poly1305 with a per-value random nonce).

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::error::{Error, Result};

const NONCE_LEN: usize = 12;

/// The key that encrypts secrets in the store: 32 bytes, given as base64.
#[derive(Clone)]
pub struct EncryptionKey {
    cipher: ChaCha20Poly1305,
    /// Key of the secrets derived from this one (HMAC-SHA256), itself derived from it.
    derive: [u8; 32],
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionKey(..)")
    }
}

impl EncryptionKey {
    /// Parses a base64 (standard or URL-safe) encoding of 32 bytes.
    pub fn from_base64(text: &str) -> Result<EncryptionKey> {
        let text = text.trim();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
            .map_err(|_| Error::BadEncryptionKey("expected base64 text".into()))?;
        if bytes.len() != 32 {
            return Err(Error::BadEncryptionKey(format!(
                "expected 32 bytes, found {}",
                bytes.len()
            )));
        }
        let derive = {
            use hmac::Mac as _;
            let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&bytes)
                .map_err(|_| Error::BadEncryptionKey("unusable key".into()))?;
            mac.update(b"stratus derived secrets");
            mac.finalize().into_bytes().into()
        };
        Ok(EncryptionKey {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
            derive,
        })
    }

    /// A new random key, as the base64 text `from_base64` accepts.
    pub fn generate() -> Result<String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| Error::Random(e.to_string()))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// A secret derived from this key for `context` (HMAC-SHA256): the same for the same
    /// context, unguessable without the key.
    pub fn derive(&self, context: &[u8]) -> [u8; 32] {
        use hmac::Mac as _;
        let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&self.derive)
            .expect("HMAC takes keys of any length");
        mac.update(context);
        mac.finalize().into_bytes().into()
    }

    /// Encrypts `plain`, binding it to `context` (so a value cannot be moved to another row).
    pub fn seal(&self, plain: &[u8], context: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| Error::Random(e.to_string()))?;
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: context,
                },
            )
            .map_err(|_| Error::Crypto("encryption failed".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts what `seal` produced with the same `context`.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return Err(Error::Crypto("stored value is too short".into()));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        self.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad: context }).map_err(|_| {
            Error::Crypto("cannot decrypt a stored secret: the encryption key differs from the one it was written with".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_context_binding() {
        let k = EncryptionKey::from_base64(&EncryptionKey::generate().unwrap()).unwrap();
        let sealed = k.seal(b"secret", b"a").unwrap();
        assert_ne!(&sealed[12..], b"secret");
        assert_eq!(k.open(&sealed, b"a").unwrap(), b"secret");
        assert!(k.open(&sealed, b"b").is_err());
        let other = EncryptionKey::from_base64(&EncryptionKey::generate().unwrap()).unwrap();
        assert!(other.open(&sealed, b"a").is_err());
    }

    #[test]
    fn bad_keys() {
        assert!(EncryptionKey::from_base64("not base64!").is_err());
        assert!(EncryptionKey::from_base64("AAAA").is_err());
    }
}
