//! The response limit's size figures (`dbadger_core::answer_size`) bound what prost really
//! encodes, by at most the fields prost omits when empty (2 bytes each): the limit counts the
//! wire bytes.

use dbadger_core::answer_size::{key_bytes, key_value_bytes, lookup_bytes};
use dbadger_proto::v1;
use prost::Message;

/// The bytes one element of a repeated message field takes: tag, length, body.
fn as_element(body: usize) -> usize {
    1 + prost::encoding::encoded_len_varint(body as u64) + body
}

const LENGTHS: [usize; 7] = [0, 1, 2, 127, 128, 300, 70_000];
const REVISIONS: [u64; 5] = [0, 1, 127, 128, u64::MAX];

/// Entries of ranges and lookups of GetMany: the figure is at least prost's and at most 6
/// bytes above it (fields prost omits when empty or zero).
#[test]
fn entry_figures_bound_prost() {
    for key in LENGTHS {
        for value in LENGTHS {
            for revision in REVISIONS {
                let entry = v1::KeyValue {
                    key: vec![1; key],
                    value: vec![2; value],
                    revision,
                };
                let real = as_element(entry.encoded_len());
                let figure = key_value_bytes(key, value, revision);
                assert!(
                    (real..=real + 6).contains(&figure),
                    "KeyValue {key}/{value}/{revision}: {figure} vs {real}"
                );
                let lookup = v1::Lookup {
                    key: vec![1; key],
                    found: true,
                    value: vec![2; value],
                    revision,
                };
                let real = as_element(lookup.encoded_len());
                let figure = lookup_bytes(key, value, revision);
                assert!(
                    (real..=real + 6).contains(&figure),
                    "Lookup {key}/{value}/{revision}: {figure} vs {real}"
                );
            }
        }
    }
}

/// The keys a DeleteRange lists: exactly prost's repeated-bytes element.
#[test]
fn key_figures_match_prost() {
    for key in LENGTHS {
        let answer = v1::DeleteRangeResponse {
            keys: vec![vec![3; key]],
            ..v1::DeleteRangeResponse::default()
        };
        assert_eq!(key_bytes(key), answer.encoded_len(), "key of {key} bytes");
    }
}
