//! Authentication: password hashes and scrambles for mysql_native_password and
//! caching_sha2_password, RSA for caching_sha2 full authentication without TLS, and the
//! auth-switch / auth-more-data packets.
//!
//! Stored credentials are what a server keeps: SHA1(SHA1(pw)) for native, SHA256(SHA256(pw))
//! for caching_sha2. An empty stored slice means "no password".

mod packets;
mod rsa;

pub use packets::*;
pub use rsa::{encrypt_password, RsaKeyPair};

use sha1::{Digest, Sha1};
use sha2::Sha256;

pub const MYSQL_NATIVE_PASSWORD: &str = "mysql_native_password";
pub const CACHING_SHA2_PASSWORD: &str = "caching_sha2_password";
pub const MYSQL_CLEAR_PASSWORD: &str = "mysql_clear_password";
pub const CLIENT_ED25519: &str = "client_ed25519";

/// caching_sha2: client asks for the server's RSA public key.
pub const CACHING_SHA2_REQUEST_PUBLIC_KEY: u8 = 0x02;
/// caching_sha2: the scramble matched the cached entry; an OK follows.
pub const CACHING_SHA2_FAST_AUTH_SUCCESS: u8 = 0x03;
/// caching_sha2: the server needs the cleartext password (TLS or RSA).
pub const CACHING_SHA2_PERFORM_FULL_AUTH: u8 = 0x04;

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

fn xor_into(out: &mut [u8], key: &[u8]) {
    for (o, k) in out.iter_mut().zip(key) {
        *o ^= k;
    }
}

// --- mysql_native_password ---

/// SHA1(SHA1(password)): what MySQL stores and `PASSWORD()` shows.
pub fn native_password_hash(password: &[u8]) -> [u8; 20] {
    Sha1::digest(Sha1::digest(password)).into()
}

/// Formats a native hash like MySQL's `PASSWORD()`: `*` and 40 uppercase hex digits.
pub fn native_password_hex(hash: &[u8; 20]) -> String {
    format!("*{}", hex::encode_upper(hash))
}

/// Parses `*` + 40 hex digits (either case) back into a hash.
pub fn parse_native_password_hex(s: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    hex::decode_to_slice(s.strip_prefix('*')?, &mut out).ok()?;
    Some(out)
}

/// Client side: SHA1(pw) XOR SHA1(scramble || SHA1(SHA1(pw))). Empty password, empty response.
pub fn native_scramble(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password);
    let stage2 = Sha1::digest(stage1);
    let mut out: Vec<u8> = Sha1::new()
        .chain_update(scramble)
        .chain_update(stage2)
        .finalize()
        .to_vec();
    xor_into(&mut out, &stage1);
    out
}

/// Server side check of a native response against the stored SHA1(SHA1(pw)) (or an empty slice
/// for an account without password).
pub fn verify_native(stored: &[u8], scramble: &[u8], response: &[u8]) -> bool {
    if stored.is_empty() {
        return response.is_empty();
    }
    if stored.len() != 20 || response.len() != 20 {
        return false;
    }
    // response XOR SHA1(scramble || stored) = SHA1(pw); its SHA1 must be the stored hash.
    let mut stage1: [u8; 20] = Sha1::new()
        .chain_update(scramble)
        .chain_update(stored)
        .finalize()
        .into();
    xor_into(&mut stage1, response);
    ct_eq(&Sha1::digest(stage1), stored)
}

// --- caching_sha2_password ---

/// SHA256(SHA256(password)): the proxy's stored credential (hex in config).
pub fn caching_sha2_stored(password: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(password)).into()
}

/// Client side: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) || scramble). Empty password, empty
/// response.
pub fn caching_sha2_scramble(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha256::digest(password);
    let stage2 = Sha256::digest(stage1);
    let mut out = Sha256::new()
        .chain_update(stage2)
        .chain_update(scramble)
        .finalize()
        .to_vec();
    xor_into(&mut out, &stage1);
    out
}

/// Server side fast auth: recovers SHA256(pw) = response XOR SHA256(stored || scramble) and checks
/// that its SHA256 is `stored`. An empty `stored` accepts only an empty response.
pub fn verify_caching_sha2_fast(stored: &[u8], scramble: &[u8], response: &[u8]) -> bool {
    if stored.is_empty() {
        return response.is_empty();
    }
    if stored.len() != 32 || response.len() != 32 {
        return false;
    }
    let mut stage1: [u8; 32] = Sha256::new()
        .chain_update(stored)
        .chain_update(scramble)
        .finalize()
        .into();
    xor_into(&mut stage1, response);
    ct_eq(&Sha256::digest(stage1), stored)
}

/// Server side full auth: checks a cleartext password (from TLS or RSA) against `stored`.
pub fn verify_cleartext_caching_sha2(stored: &[u8], password: &[u8]) -> bool {
    if stored.is_empty() {
        return password.is_empty();
    }
    ct_eq(&caching_sha2_stored(password), stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::generate_scramble;

    #[test]
    fn native_vector_matches_mariadb() {
        // MariaDB 10.11: SELECT PASSWORD('lagless')
        let h = native_password_hash(b"lagless");
        assert_eq!(
            native_password_hex(&h),
            "*630B64309B172CA77DD40A18D3113FAF9BB85068"
        );
        assert_eq!(
            parse_native_password_hex("*630b64309b172ca77dd40a18d3113faf9bb85068"),
            Some(h)
        );
        assert_eq!(parse_native_password_hex("630B"), None);
        assert_eq!(parse_native_password_hex("*zz"), None);
    }

    #[test]
    fn native_scramble_verifies() {
        let scramble = generate_scramble();
        let stored = native_password_hash(b"secret");
        let resp = native_scramble(b"secret", &scramble);
        assert_eq!(resp.len(), 20);
        assert!(verify_native(&stored, &scramble, &resp));
        assert!(!verify_native(
            &stored,
            &scramble,
            &native_scramble(b"wrong", &scramble)
        ));
        assert!(!verify_native(&stored, &generate_scramble(), &resp));
        assert!(!verify_native(&stored, &scramble, &[]));
        assert!(!verify_native(&stored, &scramble, &resp[..19]));
        // Account without password.
        assert!(native_scramble(b"", &scramble).is_empty());
        assert!(verify_native(&[], &scramble, &[]));
        assert!(!verify_native(&[], &scramble, &resp));
    }

    #[test]
    fn caching_sha2_fast_verifies() {
        let scramble = generate_scramble();
        let stored = caching_sha2_stored(b"secret");
        let resp = caching_sha2_scramble(b"secret", &scramble);
        assert_eq!(resp.len(), 32);
        assert!(verify_caching_sha2_fast(&stored, &scramble, &resp));
        assert!(!verify_caching_sha2_fast(
            &stored,
            &scramble,
            &caching_sha2_scramble(b"x", &scramble)
        ));
        assert!(!verify_caching_sha2_fast(
            &stored,
            &generate_scramble(),
            &resp
        ));
        assert!(!verify_caching_sha2_fast(&stored, &scramble, &resp[1..]));
        assert!(verify_cleartext_caching_sha2(&stored, b"secret"));
        assert!(!verify_cleartext_caching_sha2(&stored, b"secreT"));
        assert!(verify_caching_sha2_fast(&[], &scramble, &[]));
        assert!(verify_cleartext_caching_sha2(&[], b""));
    }

    #[test]
    fn caching_sha2_stored_known_value() {
        // `printf lagless | sha256sum | xxd -r -p | sha256sum`
        assert_eq!(
            hex::encode(caching_sha2_stored(b"lagless")),
            "bb20122313b9eb2023fae147802cb74b41dd136928618f6cf21c29b447304d5f"
        );
    }
}
