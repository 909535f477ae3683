//! Which keys of the workload an operation reads or writes, and what it writes to each: the
//! one place that knows the key scope of every `Command` and `Query` form, for the checkers
//! and the clients.

use crate::client::KEYS;
use crate::history::Request;

/// Whether `key` lies in the inclusive range `[min, max]` (a `None` bound is unbounded).
pub(crate) fn in_range(key: &[u8], min: Option<&[u8]>, max: Option<&[u8]>) -> bool {
    min.is_none_or(|min| key >= min) && max.is_none_or(|max| key <= max)
}

fn workload_keys(filter: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
    KEYS.iter()
        .filter(|key| filter(key))
        .map(|key| key.to_vec())
        .collect()
}

/// The keys whose state a read's answer reports, present or absent: the asked keys of `get`
/// and `get_many`, and every workload key in a prefix or a range (an answer lists only the
/// present ones). Empty for a write.
pub(crate) fn read_keys(request: &Request) -> Vec<Vec<u8>> {
    match request {
        Request::Get { key, .. } => vec![key.clone()],
        Request::GetMany { keys, .. } => keys.clone(),
        Request::GetPrefix { prefix, .. } => workload_keys(|key| key.starts_with(prefix)),
        Request::GetRange { min, max, .. } => {
            workload_keys(|key| in_range(key, min.as_deref(), max.as_deref()))
        }
        _ => Vec::new(),
    }
}

/// What an unconditional write does to each workload key it touches: the new value, or `None`
/// for a delete. A restore writes every workload key (its value in the snapshot, or a delete).
/// Empty for reads and for compare-and-set, whose effect depends on the state.
pub(crate) fn writes(request: &Request) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let deletes = |keys: Vec<Vec<u8>>| keys.into_iter().map(|key| (key, None)).collect();
    match request {
        Request::Set { key, value } => vec![(key.clone(), Some(value.clone()))],
        Request::SetMany { pairs } => pairs
            .iter()
            .map(|(key, value)| (key.clone(), Some(value.clone())))
            .collect(),
        Request::Delete { key } => vec![(key.clone(), None)],
        Request::DeleteMany { keys } => deletes(keys.clone()),
        Request::DeletePrefix { prefix } => deletes(workload_keys(|key| key.starts_with(prefix))),
        Request::DeleteRange { min, max } => deletes(workload_keys(|key| {
            in_range(key, min.as_deref(), max.as_deref())
        })),
        Request::DeleteAll => deletes(workload_keys(|_| true)),
        Request::Restore { pairs } => KEYS
            .iter()
            .map(|key| {
                let restored = pairs
                    .iter()
                    .find(|(restored, _)| restored == key)
                    .map(|(_, value)| value.clone());
                (key.to_vec(), restored)
            })
            .collect(),
        Request::Get { .. }
        | Request::GetMany { .. }
        | Request::GetPrefix { .. }
        | Request::GetRange { .. }
        | Request::CompareAndSet { .. } => Vec::new(),
    }
}

/// Every value `request` may store, with its key: the values of its unconditional writes and
/// the new value of a compare-and-set.
pub(crate) fn stored_values(request: &Request) -> Vec<(Vec<u8>, Vec<u8>)> {
    match request {
        Request::CompareAndSet {
            key,
            new: Some(new),
            ..
        } => vec![(key.clone(), new.clone())],
        _ => writes(request)
            .into_iter()
            .filter_map(|(key, value)| Some((key, value?)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_delete_touches_exactly_the_keys_with_that_prefix() {
        let touched: Vec<Vec<u8>> = writes(&Request::DeletePrefix {
            prefix: b"b".to_vec(),
        })
        .into_iter()
        .map(|(key, value)| {
            assert_eq!(value, None);
            key
        })
        .collect();
        let expected: Vec<Vec<u8>> = KEYS
            .iter()
            .filter(|key| key.starts_with(b"b"))
            .map(|key| key.to_vec())
            .collect();
        assert!(!expected.is_empty() && expected.len() < KEYS.len());
        assert_eq!(touched, expected);
    }

    #[test]
    fn open_range_bounds_are_unbounded_and_closed_ones_inclusive() {
        assert!(in_range(b"a0", None, None));
        assert!(in_range(b"a0", Some(b"a0"), Some(b"a0")));
        assert!(!in_range(b"a1", None, Some(b"a0")));
        assert!(!in_range(b"a0", Some(b"a1"), None));
    }

    #[test]
    fn a_restore_deletes_every_key_missing_from_its_snapshot() {
        let restored = writes(&Request::Restore {
            pairs: vec![(KEYS[1].to_vec(), b"v".to_vec())],
        });
        assert_eq!(restored.len(), KEYS.len());
        for (key, value) in restored {
            assert_eq!(value.is_some(), key == KEYS[1]);
        }
    }
}
