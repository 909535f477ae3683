//! The encoded size of answers as the gRPC API sends them (protobuf), so that the response
//! limit bounds what goes on the wire, framing included, and not only the key and value bytes.
//!
//! Every figure is an upper bound: fields that protobuf would omit (an empty value, revision 0)
//! are counted anyway. `dbadger-grpc` checks these figures against prost's `encoded_len`.

/// Room for an answer's fixed fields (a revision, a count, `more`), beside its repeated part.
pub const ANSWER_OVERHEAD_BYTES: usize = 32;

/// The bytes of `value` as a protobuf varint.
pub fn varint_bytes(value: u64) -> usize {
    let significant_bits = 64 - value.leading_zeros() as usize;
    significant_bits.div_ceil(7).max(1)
}

/// A length-delimited field (tag, length, body) with a body of `len` bytes.
fn delimited_field(len: usize) -> usize {
    1 + varint_bytes(len as u64) + len
}

/// A `uint64` field.
fn u64_field(value: u64) -> usize {
    1 + varint_bytes(value)
}

/// One `KeyValue` entry of a repeated field (a range answer).
pub fn key_value_bytes(key_len: usize, value_len: usize, revision: u64) -> usize {
    delimited_field(delimited_field(key_len) + delimited_field(value_len) + u64_field(revision))
}

/// One `Lookup` entry of a `GetMany` answer: key, found flag, value and revision.
pub fn lookup_bytes(key_len: usize, value_len: usize, revision: u64) -> usize {
    let found_flag = 2;
    delimited_field(
        delimited_field(key_len) + found_flag + delimited_field(value_len) + u64_field(revision),
    )
}

/// One key of a repeated `bytes` field (the keys a `DeleteRange` removed).
pub fn key_bytes(key_len: usize) -> usize {
    delimited_field(key_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Varints take one byte per seven significant bits, at least one.
    #[test]
    fn varint_lengths() {
        assert_eq!(varint_bytes(0), 1);
        assert_eq!(varint_bytes(127), 1);
        assert_eq!(varint_bytes(128), 2);
        assert_eq!(varint_bytes(16_383), 2);
        assert_eq!(varint_bytes(16_384), 3);
        assert_eq!(varint_bytes(u64::MAX), 10);
    }

    /// A tiny entry costs several times its key and value bytes: the framing the limit must
    /// count.
    #[test]
    fn tiny_entries_are_mostly_framing() {
        assert_eq!(
            key_value_bytes(2, 0, 5),
            2 + (1 + 1 + 2) + (1 + 1) + (1 + 1)
        );
        assert_eq!(key_bytes(3), 5);
    }
}
