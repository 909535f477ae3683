//! The primitives every dbadger encoding is built from: big-endian fixed-width integers, `u32`
//! length-prefixed byte strings, strict booleans and option tags.
//!
//! Fixed-width lengths give each value exactly one encoding, so decode-then-encode reproduces
//! the input byte for byte. The reader checks every length against the bytes actually left
//! before allocating, so the memory a decode allocates is bounded by a small multiple of the
//! input length, whatever the input claims.

use crate::error::DecodeError;

/// Appends encoded primitives to a byte vector.
#[derive(Default, Debug)]
pub(crate) struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(capacity: usize) -> Writer {
        Writer {
            bytes: Vec::with_capacity(capacity),
        }
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn bool(&mut self, value: bool) {
        self.u8(u8::from(value));
    }

    /// A count of items that follow. Counts and lengths are `u32`: no request, entry or record
    /// comes near 4 GiB (limits cap them far lower).
    pub(crate) fn count(&mut self, count: usize) {
        // Limits keep every collection far below u32::MAX items; saturating keeps the encoder
        // total, and the decoder would then reject the truncated value rather than misread it.
        self.u32(u32::try_from(count).unwrap_or(u32::MAX));
    }

    pub(crate) fn bytes(&mut self, value: &[u8]) {
        self.count(value.len());
        self.bytes.extend_from_slice(value);
    }

    pub(crate) fn optional<T>(&mut self, value: Option<&T>, encode: impl FnOnce(&mut Writer, &T)) {
        match value {
            None => self.u8(0),
            Some(inner) => {
                self.u8(1);
                encode(self, inner);
            }
        }
    }
}

/// Reads encoded primitives from a byte slice, never past its end.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Reader<'a> {
        Reader { input }
    }

    /// Succeeds only if the whole input was consumed.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                count: self.input.len(),
            })
        }
    }

    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if len > self.input.len() {
            return Err(DecodeError::UnexpectedEnd {
                what,
                needed: len - self.input.len(),
            });
        }
        let (head, tail) = self.input.split_at(len);
        self.input = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let slice = self.take(N, what)?;
        let mut array = [0u8; N];
        array.copy_from_slice(slice);
        Ok(array)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::NonCanonical { what }),
        }
    }

    /// A count of items, each of which takes at least `min_item_bytes` of input: a count the
    /// rest of the input cannot hold is rejected before anything is allocated for it.
    pub(crate) fn count(
        &mut self,
        min_item_bytes: usize,
        what: &'static str,
    ) -> Result<usize, DecodeError> {
        let count = self.u32(what)?;
        let needed = u64::from(count).saturating_mul(min_item_bytes.max(1) as u64);
        if needed > self.input.len() as u64 {
            return Err(DecodeError::LengthOutOfBounds {
                what,
                len: u64::from(count),
                remaining: self.input.len(),
            });
        }
        // `count` fits in the remaining input length, which is a usize.
        Ok(count as usize)
    }

    pub(crate) fn bytes(&mut self, what: &'static str) -> Result<Vec<u8>, DecodeError> {
        let len = self.count(1, what)?;
        Ok(self.take(len, what)?.to_vec())
    }

    pub(crate) fn optional<T>(
        &mut self,
        what: &'static str,
        decode: impl FnOnce(&mut Reader<'a>) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.u8(what)? {
            0 => Ok(None),
            1 => decode(self).map(Some),
            tag => Err(DecodeError::UnknownTag { what, tag }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A length larger than the remaining input is refused before allocation.
    #[test]
    fn oversized_lengths_are_rejected_without_allocating() {
        let mut input = Vec::new();
        input.extend_from_slice(&u32::MAX.to_be_bytes());
        input.extend_from_slice(b"abc");
        let mut reader = Reader::new(&input);
        assert_eq!(
            reader.bytes("value"),
            Err(DecodeError::LengthOutOfBounds {
                what: "value",
                len: u64::from(u32::MAX),
                remaining: 3
            })
        );
    }

    /// Booleans other than 0 and 1 are not canonical, and trailing bytes are refused.
    #[test]
    fn strict_booleans_and_no_trailing_bytes() {
        assert!(Reader::new(&[2]).bool("flag").is_err());
        let mut reader = Reader::new(&[1, 9]);
        assert_eq!(reader.bool("flag"), Ok(true));
        assert_eq!(
            reader.finish(),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
    }
}
