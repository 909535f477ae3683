//! Round trips and hostile-input properties of the codec.

use proptest::prelude::*;

use super::*;
use crate::test_strategies;

/// Checks `decode(encode(x)) == x`, that every strict prefix and every extension of the
/// encoding is refused, and that nothing panics along the way.
fn assert_round_trip<T: PartialEq + std::fmt::Debug>(
    value: &T,
    encode: impl Fn(&T) -> Vec<u8>,
    decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
) {
    let bytes = encode(value);
    assert_eq!(&decode(&bytes).expect("own encoding decodes"), value);
    for cut in 0..bytes.len() {
        assert!(
            decode(&bytes[..cut]).is_err(),
            "prefix of {cut} bytes decoded"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        decode(&longer),
        Err(DecodeError::TrailingBytes { count: 1 })
    ));
}

proptest! {
    /// Every command survives encode/decode, and its truncations and extensions are refused.
    #[test]
    fn commands_round_trip(command in test_strategies::command()) {
        assert_round_trip(&command, encode_command, decode_command);
    }

    /// Every query survives encode/decode.
    #[test]
    fn queries_round_trip(query in test_strategies::query()) {
        assert_round_trip(&query, encode_query, decode_query);
    }

    /// Every response survives encode/decode.
    #[test]
    fn responses_round_trip(response in test_strategies::response()) {
        assert_round_trip(&response, encode_response, decode_response);
    }

    /// Every log entry (blank, command, membership) survives encode/decode.
    #[test]
    fn entries_round_trip(entry in test_strategies::entry()) {
        assert_round_trip(&entry, encode_entry, decode_entry);
    }

    /// Votes, optional log ids and stored memberships survive encode/decode.
    #[test]
    fn raft_metadata_round_trips(
        vote in test_strategies::vote(),
        log_id in proptest::option::of(test_strategies::log_id()),
        stored in test_strategies::stored_membership(),
    ) {
        assert_round_trip(&vote, encode_vote, decode_vote);
        assert_round_trip(&log_id, |id| encode_log_id(id.as_ref()), decode_log_id);
        assert_round_trip(&stored, encode_stored_membership, decode_stored_membership);
    }

    /// Arbitrary bytes never panic the decoder, and whatever decodes re-encodes to the same
    /// bytes (the encoding is canonical).
    #[test]
    fn arbitrary_bytes_decode_canonically_or_not_at_all(
        tail in proptest::collection::vec(any::<u8>(), 0..96),
    ) {
        let mut bytes = vec![FORMAT_VERSION];
        bytes.extend_from_slice(&tail);
        if let Ok(entry) = decode_entry(&bytes) {
            prop_assert_eq!(encode_entry(&entry), bytes.clone());
        }
        if let Ok(command) = decode_command(&bytes) {
            prop_assert_eq!(encode_command(&command), bytes.clone());
        }
        if let Ok(response) = decode_response(&bytes) {
            prop_assert_eq!(encode_response(&response), bytes.clone());
        }
        if let Ok(membership) = decode_membership(&bytes) {
            prop_assert_eq!(encode_membership(&membership), bytes);
        }
    }
}

/// An unknown format version is reported as such, not misread.
#[test]
fn unknown_version_is_refused() {
    let mut bytes = encode_command(&Command::DeleteAll);
    bytes[0] = 2;
    assert_eq!(
        decode_command(&bytes),
        Err(DecodeError::UnsupportedVersion {
            what: "command",
            version: 2
        })
    );
}

/// A membership whose voter has no node is refused with openraft's reason.
#[test]
fn invalid_membership_is_refused() {
    // version, 1 config of 1 voter (id 7), 0 nodes.
    let mut bytes = vec![FORMAT_VERSION];
    bytes.extend_from_slice(&1u32.to_be_bytes());
    bytes.extend_from_slice(&1u32.to_be_bytes());
    bytes.extend_from_slice(&7u64.to_be_bytes());
    bytes.extend_from_slice(&0u32.to_be_bytes());
    assert!(matches!(
        decode_membership(&bytes),
        Err(DecodeError::InvalidMembership { .. })
    ));
}

/// Voter ids out of order are non-canonical and refused.
#[test]
fn unordered_voters_are_refused() {
    let mut bytes = vec![FORMAT_VERSION];
    bytes.extend_from_slice(&1u32.to_be_bytes());
    bytes.extend_from_slice(&2u32.to_be_bytes());
    bytes.extend_from_slice(&5u64.to_be_bytes());
    bytes.extend_from_slice(&3u64.to_be_bytes());
    bytes.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(
        decode_membership(&bytes),
        Err(DecodeError::NonCanonical {
            what: "voter set order"
        })
    );
}
