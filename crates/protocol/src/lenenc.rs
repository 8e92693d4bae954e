//! Length-encoded integers and strings, NUL-terminated strings and fixed-size integers.
//!
//! [`Reader`] reads from an untrusted `&[u8]`: every method returns
//! [`ProtocolError::Truncated`] on short input and never panics.

use bytes::BufMut;

use crate::ProtocolError;

/// A cursor over a payload.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next byte without consuming it.
    pub fn peek(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// Consumes and returns everything left (an EOF-terminated string).
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if n > self.buf.len() {
            return Err(ProtocolError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), ProtocolError> {
        self.bytes(n).map(|_| ())
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let b = self.bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u16(&mut self) -> Result<u16, ProtocolError> {
        self.array().map(u16::from_le_bytes)
    }

    pub fn u24(&mut self) -> Result<u32, ProtocolError> {
        let [a, b, c] = self.array()?;
        Ok(u32::from_le_bytes([a, b, c, 0]))
    }

    pub fn u32(&mut self) -> Result<u32, ProtocolError> {
        self.array().map(u32::from_le_bytes)
    }

    pub fn u64(&mut self) -> Result<u64, ProtocolError> {
        self.array().map(u64::from_le_bytes)
    }

    /// A length-encoded integer; `0xFB` (NULL) gives `None`. `0xFF` is not a valid prefix.
    pub fn lenenc_int_or_null(&mut self) -> Result<Option<u64>, ProtocolError> {
        match self.u8()? {
            b @ 0..=0xfa => Ok(Some(u64::from(b))),
            0xfb => Ok(None),
            0xfc => self.u16().map(|v| Some(u64::from(v))),
            0xfd => self.u24().map(|v| Some(u64::from(v))),
            0xfe => self.u64().map(Some),
            0xff => Err(ProtocolError::Malformed("0xFF length-encoded integer")),
        }
    }

    /// A length-encoded integer; NULL is an error here.
    pub fn lenenc_int(&mut self) -> Result<u64, ProtocolError> {
        self.lenenc_int_or_null()?
            .ok_or(ProtocolError::Malformed("unexpected NULL length"))
    }

    /// A length-encoded string.
    pub fn lenenc_bytes(&mut self) -> Result<&'a [u8], ProtocolError> {
        let n = self.lenenc_int()?;
        self.bytes(usize::try_from(n).map_err(|_| ProtocolError::Truncated)?)
    }

    /// A length-encoded string or NULL (text result rows).
    pub fn lenenc_bytes_or_null(&mut self) -> Result<Option<&'a [u8]>, ProtocolError> {
        match self.lenenc_int_or_null()? {
            None => Ok(None),
            Some(n) => self
                .bytes(usize::try_from(n).map_err(|_| ProtocolError::Truncated)?)
                .map(Some),
        }
    }

    /// A NUL-terminated string (the NUL is consumed, not returned).
    pub fn nul_bytes(&mut self) -> Result<&'a [u8], ProtocolError> {
        let pos = memchr_nul(self.buf).ok_or(ProtocolError::Truncated)?;
        let s = self.bytes(pos)?;
        self.skip(1)?;
        Ok(s)
    }

    /// A NUL-terminated string whose NUL may be missing at the very end of the packet (some
    /// servers and clients omit it on the last field).
    pub fn nul_bytes_lenient(&mut self) -> &'a [u8] {
        match memchr_nul(self.buf) {
            Some(pos) => {
                let s = &self.buf[..pos];
                self.buf = &self.buf[pos + 1..];
                s
            }
            None => self.rest(),
        }
    }
}

fn memchr_nul(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == 0)
}

/// Bytes taken by `v` as a length-encoded integer.
pub fn lenenc_int_len(v: u64) -> usize {
    match v {
        0..=0xfa => 1,
        0xfb..=0xffff => 3,
        0x1_0000..=0xff_ffff => 4,
        _ => 9,
    }
}

pub fn put_lenenc_int(out: &mut impl BufMut, v: u64) {
    match v {
        0..=0xfa => out.put_u8(v as u8),
        0xfb..=0xffff => {
            out.put_u8(0xfc);
            out.put_u16_le(v as u16);
        }
        0x1_0000..=0xff_ffff => {
            out.put_u8(0xfd);
            out.put_slice(&(v as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.put_u8(0xfe);
            out.put_u64_le(v);
        }
    }
}

pub fn put_lenenc_bytes(out: &mut impl BufMut, b: &[u8]) {
    put_lenenc_int(out, b.len() as u64);
    out.put_slice(b);
}

/// Writes `b` followed by a NUL (`b` must not contain one).
pub fn put_nul_bytes(out: &mut impl BufMut, b: &[u8]) {
    out.put_slice(b);
    out.put_u8(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_int_boundaries() {
        for v in [
            0u64,
            250,
            251,
            0xffff,
            0x1_0000,
            0xff_ffff,
            0x100_0000,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_lenenc_int(&mut out, v);
            assert_eq!(out.len(), lenenc_int_len(v), "{v}");
            let mut r = Reader::new(&out);
            assert_eq!(r.lenenc_int().unwrap(), v);
            assert!(r.is_empty());
            // Every prefix is truncated, not a panic.
            for cut in 0..out.len() {
                assert_eq!(
                    Reader::new(&out[..cut]).lenenc_int(),
                    Err(ProtocolError::Truncated)
                );
            }
        }
        assert_eq!(Reader::new(&[0xfb]).lenenc_int_or_null(), Ok(None));
        assert!(Reader::new(&[0xff]).lenenc_int().is_err());
    }

    #[test]
    fn strings() {
        let mut out = Vec::new();
        put_lenenc_bytes(&mut out, b"abc");
        put_nul_bytes(&mut out, b"def");
        out.extend_from_slice(b"tail");
        let mut r = Reader::new(&out);
        assert_eq!(r.lenenc_bytes().unwrap(), b"abc");
        assert_eq!(r.nul_bytes().unwrap(), b"def");
        assert_eq!(r.rest(), b"tail");
        assert_eq!(r.nul_bytes(), Err(ProtocolError::Truncated));
        assert_eq!(Reader::new(b"x").nul_bytes_lenient(), b"x");
        // A huge announced length is truncation, not an allocation or a panic.
        let huge = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            Reader::new(&huge).lenenc_bytes(),
            Err(ProtocolError::Truncated)
        );
    }

    #[test]
    fn fixed_ints() {
        let mut r = Reader::new(&[1, 2, 3, 4, 5, 6]);
        assert_eq!(r.u16().unwrap(), 0x0201);
        assert_eq!(r.u24().unwrap(), 0x05_0403);
        assert_eq!(r.u32(), Err(ProtocolError::Truncated));
        assert_eq!(r.u8().unwrap(), 6);
    }
}
