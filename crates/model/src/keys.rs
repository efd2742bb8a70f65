//! Authorization levels and function keys.

use std::str::FromStr;

/// The level a trigger requires, or a caller holds (the host's `AuthorizationLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuthLevel {
    Anonymous,
    User,
    Function,
    System,
    Admin,
}

impl AuthLevel {
    /// Whether a caller holding `self` may call something requiring `required`:
    /// admin satisfies everything, anonymous requirements are always met, and
    /// otherwise the levels must be equal (a system key does not open a function-level trigger).
    pub fn satisfies(self, required: AuthLevel) -> bool {
        required == AuthLevel::Anonymous || self == AuthLevel::Admin || self == required
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuthLevel::Anonymous => "anonymous",
            AuthLevel::User => "user",
            AuthLevel::Function => "function",
            AuthLevel::System => "system",
            AuthLevel::Admin => "admin",
        }
    }
}

impl FromStr for AuthLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "anonymous" => AuthLevel::Anonymous,
            "user" => AuthLevel::User,
            "function" => AuthLevel::Function,
            "system" => AuthLevel::System,
            "admin" => AuthLevel::Admin,
            _ => {
                return Err(format!(
                    "expected one of \"anonymous\", \"function\", \"admin\", \"system\", \"user\", found \"{s}\""
                ));
            }
        })
    }
}

/// Which kind of key a generated value is for (each has its own checksum seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Master,
    System,
    Function,
}

impl KeyKind {
    /// The Marvin seed: the ASCII text "Master00" / "System00" / "Functi00" as a big-endian u64.
    fn seed(self) -> u64 {
        u64::from_be_bytes(*match self {
            KeyKind::Master => b"Master00",
            KeyKind::System => b"System00",
            KeyKind::Function => b"Functi00",
        })
    }
}

/// Number of random bytes a caller supplies for a new key.
pub const KEY_RANDOM_BYTES: usize = 40;

/// Azure's "identifiable" key format: 40 bytes whose bytes 33..36 spell the signature
/// `AzFu` in base64 and whose last 4 bytes are a Marvin32 checksum of the first 36 with a
/// per-kind seed; URL-safe base64 with padding, 56 characters.
pub fn identifiable_key(kind: KeyKind, random: [u8; KEY_RANDOM_BYTES]) -> String {
    use base64::Engine as _;
    let mut buf = random;
    buf[33..36].copy_from_slice(&[0x03, 0x31, 0x6E]);
    let checksum = marvin32(kind.seed(), &buf[..36]);
    buf[36..40].copy_from_slice(&checksum.to_le_bytes());
    base64::engine::general_purpose::URL_SAFE.encode(buf)
}

/// Whether `key` is an identifiable key of `kind` (right signature and checksum).
pub fn is_identifiable(kind: KeyKind, key: &str) -> bool {
    use base64::Engine as _;
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE.decode(key) else {
        return false;
    };
    bytes.len() == KEY_RANDOM_BYTES
        && key.get(44..48) == Some("AzFu")
        && bytes[36..40] == marvin32(kind.seed(), &bytes[..36]).to_le_bytes()
}

/// Marvin32, the checksum used by identifiable secrets.
pub fn marvin32(seed: u64, data: &[u8]) -> u32 {
    let (mut p0, mut p1) = (seed as u32, (seed >> 32) as u32);
    fn block(p0: &mut u32, p1: &mut u32) {
        *p1 ^= *p0;
        *p0 = p0.rotate_left(20);
        *p0 = p0.wrapping_add(*p1);
        *p1 = p1.rotate_left(9);
        *p1 ^= *p0;
        *p0 = p0.rotate_left(27);
        *p0 = p0.wrapping_add(*p1);
        *p1 = p1.rotate_left(19);
    }
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        p0 = p0.wrapping_add(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        block(&mut p0, &mut p1);
    }
    let tail = chunks.remainder();
    let last = match tail.len() {
        0 => 0x80u32,
        1 => 0x8000 | u32::from(tail[0]),
        2 => 0x80_0000 | (u32::from(tail[1]) << 8) | u32::from(tail[0]),
        _ => {
            0x8000_0000
                | (u32::from(tail[2]) << 16)
                | (u32::from(tail[1]) << 8)
                | u32::from(tail[0])
        }
    };
    p0 = p0.wrapping_add(last);
    block(&mut p0, &mut p1);
    block(&mut p0, &mut p1);
    p1 ^ p0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marvin_vectors() {
        let fold = |h64: u64| (h64 as u32) ^ ((h64 >> 32) as u32);
        assert_eq!(
            marvin32(0xd53cd9cecd0893b7, b"abc"),
            fold(0x22c74339492769bf)
        );
        assert_eq!(marvin32(0xd53cd9cecd0893b7, b"abc"), 0x6BE02A86);
        assert_eq!(
            marvin32(0x0ddddeeeeffff000, b"abcdefghijklmnopqrstuvwxyz"),
            fold(0xa128eb7e7260aca2)
        );
        assert_eq!(marvin32(0x004fb61a001bdbcc, &[]), fold(0x30ed35c100cd3c7d));
        assert_eq!(
            marvin32(0x004fb61a001bdbcc, &[175]),
            fold(0x48e73fc77d75ddc1)
        );
        assert_eq!(
            marvin32(0x004fb61a001bdbcc, &[231, 15]),
            fold(0xb5f6e1fc485dbff8)
        );
        assert_eq!(
            marvin32(0x004fb61a001bdbcc, &[55, 244, 149]),
            fold(0xf0b07c789b8cf7e8)
        );
        assert_eq!(
            marvin32(0x004fb61a001bdbcc, &[134, 66, 220, 89]),
            fold(0x7008f2e87e9cf556)
        );
        assert_eq!(marvin32(0x804fb61a801bdbcc, &[0]), fold(0xa37fb0da2ecae06c));
        assert_eq!(
            marvin32(0x804fb61a801bdbcc, &[0, 255, 0, 255]),
            fold(0x24eaa279d9a529ca)
        );
    }

    #[test]
    fn key_format() {
        let mut random = [0u8; KEY_RANDOM_BYTES];
        for (i, b) in random.iter_mut().enumerate() {
            *b = (i * 37 + 11) as u8;
        }
        let key = identifiable_key(KeyKind::Master, random);
        assert_eq!(key.len(), 56);
        assert_eq!(&key[44..48], "AzFu");
        assert!(key.ends_with("=="));
        assert!(!key.contains(['+', '/']));
        assert!(matches!(key.as_bytes()[53], b'A' | b'Q' | b'g' | b'w'));
        assert!(is_identifiable(KeyKind::Master, &key));
        assert!(!is_identifiable(KeyKind::Function, &key));
        assert!(!is_identifiable(KeyKind::Master, "testMasterKey"));
    }

    #[test]
    fn level_matrix() {
        use AuthLevel::*;
        assert!(Admin.satisfies(Function));
        assert!(Admin.satisfies(Admin));
        assert!(Function.satisfies(Function));
        assert!(!Function.satisfies(Admin));
        assert!(!System.satisfies(Function));
        assert!(System.satisfies(System));
        assert!(Anonymous.satisfies(Anonymous));
        assert!(!Anonymous.satisfies(Function));
    }
}
