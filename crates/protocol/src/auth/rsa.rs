//! RSA for caching_sha2_password full authentication on connections without TLS: the client
//! encrypts `(password || NUL) XOR scramble` with RSA-OAEP (SHA-1, MGF1-SHA1) under the server's
//! public key, which it gets as a PEM `SubjectPublicKeyInfo` after sending 0x02.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeySize, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey,
    PublicEncryptingKey, OAEP_SHA1_MGF1SHA1,
};

use crate::ProtocolError;

const PEM_BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
const PEM_END: &str = "-----END PUBLIC KEY-----";

/// The proxy's RSA key, generated at start.
pub struct RsaKeyPair {
    key: OaepPrivateDecryptingKey,
    pem: String,
}

impl std::fmt::Debug for RsaKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaKeyPair").finish_non_exhaustive()
    }
}

impl RsaKeyPair {
    /// Generates a 2048-bit key (tens of milliseconds: do it once).
    pub fn generate() -> Result<Self, ProtocolError> {
        let private = PrivateDecryptingKey::generate(KeySize::Rsa2048)
            .map_err(|_| ProtocolError::Crypto("RSA key generation failed"))?;
        let der = private
            .public_key()
            .as_der()
            .map_err(|_| ProtocolError::Crypto("RSA public key encoding failed"))?;
        let pem = pem_encode(der.as_ref());
        let key = OaepPrivateDecryptingKey::new(private)
            .map_err(|_| ProtocolError::Crypto("RSA key unusable for OAEP"))?;
        Ok(Self { key, pem })
    }

    /// The public key as PEM ("-----BEGIN PUBLIC KEY-----"), sent to clients after they send
    /// 0x02 (request public key).
    pub fn public_key_pem(&self) -> String {
        self.pem.clone()
    }

    /// Decrypts a client's RSA-encrypted password and removes the scramble XOR and the trailing
    /// NUL: returns the cleartext password.
    pub fn decrypt_password(
        &self,
        ciphertext: &[u8],
        scramble: &[u8],
    ) -> Result<Vec<u8>, ProtocolError> {
        if scramble.is_empty() {
            return Err(ProtocolError::Crypto("empty scramble"));
        }
        let mut buf = vec![0u8; self.key.min_output_size()];
        let plain = self
            .key
            .decrypt(&OAEP_SHA1_MGF1SHA1, ciphertext, &mut buf, None)
            .map_err(|_| ProtocolError::Crypto("RSA decryption failed"))?;
        let mut out = plain.to_vec();
        xor_repeated(&mut out, scramble);
        if out.last() == Some(&0) {
            out.pop();
        }
        Ok(out)
    }
}

/// Client side: encrypts `password` for a server whose PEM public key we received.
pub fn encrypt_password(
    public_key_pem: &str,
    password: &[u8],
    scramble: &[u8],
) -> Result<Vec<u8>, ProtocolError> {
    if scramble.is_empty() {
        return Err(ProtocolError::Crypto("empty scramble"));
    }
    let der = pem_decode(public_key_pem).ok_or(ProtocolError::Crypto("bad PEM public key"))?;
    let public = PublicEncryptingKey::from_der(&der)
        .map_err(|_| ProtocolError::Crypto("unsupported RSA public key"))?;
    let key = OaepPublicEncryptingKey::new(public)
        .map_err(|_| ProtocolError::Crypto("RSA key unusable for OAEP"))?;
    let mut plain = Vec::with_capacity(password.len() + 1);
    plain.extend_from_slice(password);
    plain.push(0);
    xor_repeated(&mut plain, scramble);
    if plain.len() > key.max_plaintext_size(&OAEP_SHA1_MGF1SHA1) {
        return Err(ProtocolError::Crypto("password too long for the RSA key"));
    }
    let mut out = vec![0u8; key.ciphertext_size()];
    let n = key
        .encrypt(&OAEP_SHA1_MGF1SHA1, &plain, &mut out, None)
        .map_err(|_| ProtocolError::Crypto("RSA encryption failed"))?
        .len();
    out.truncate(n);
    Ok(out)
}

fn xor_repeated(data: &mut [u8], key: &[u8]) {
    for (d, k) in data.iter_mut().zip(key.iter().cycle()) {
        *d ^= k;
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn pem_encode(der: &[u8]) -> String {
    let mut b64 = String::with_capacity(der.len() * 4 / 3 + 4);
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(B64[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut pem = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    pem.push_str(PEM_BEGIN);
    pem.push('\n');
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(PEM_END);
    pem.push('\n');
    pem
}

fn pem_decode(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find(PEM_BEGIN)? + PEM_BEGIN.len();
    let end = start + pem.get(start..)?.find(PEM_END)?;
    let mut out = Vec::with_capacity((end - start) * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in pem.get(start..end)?.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            c if c.is_ascii_whitespace() => continue,
            _ => return None,
        };
        acc = (acc << 6 | u32::from(v)) & 0xFFFF;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_roundtrip() {
        for len in 0..70usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(pem_decode(&pem_encode(&data)).unwrap(), data, "len {len}");
        }
        assert!(pem_encode(b"Man").contains("\nTWFu\n"));
        assert!(pem_encode(b"Ma").contains("\nTWE=\n"));
        assert_eq!(pem_decode("junk"), None);
        assert_eq!(pem_decode(&format!("{PEM_BEGIN}\n!!\n{PEM_END}")), None);
    }

    #[test]
    fn encrypt_decrypt_roundtrip() {
        let kp = RsaKeyPair::generate().unwrap();
        let pem = kp.public_key_pem();
        assert!(pem.starts_with(
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"
        ));
        assert!(pem.lines().all(|l| l.len() <= 64));
        let scramble = crate::handshake::generate_scramble();
        for pw in [
            &b""[..],
            b"secret",
            b"a password longer than the twenty-byte scramble",
        ] {
            let ct = encrypt_password(&pem, pw, &scramble).unwrap();
            assert_eq!(ct.len(), 256);
            assert_eq!(kp.decrypt_password(&ct, &scramble).unwrap(), pw);
        }
        assert!(kp.decrypt_password(b"garbage", &scramble).is_err());
        assert!(encrypt_password("not a key", b"pw", &scramble).is_err());
    }
}
