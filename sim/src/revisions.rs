//! The checks on the revisions a run returned, across keys.
//!
//! Every write is one log entry, and its reply carries its log index (its revision); every
//! key a read returns carries the revision of the write it saw. The log is one total order of
//! writes, so what the history says about revisions must fit one:
//!
//! 1. **One value, one revision.** A value (unique in the run) is stored under a key by one
//!    write: every read of it, and the write's own reply, give the same revision; and one
//!    revision of a key holds one value.
//! 2. **One entry, one write.** No two acknowledged writes share a revision.
//! 3. **Revisions follow real time.** A write that returned before another was invoked has a
//!    smaller revision; so has a write whose value a read returned before the other was
//!    invoked: a write invoked after any read (Leader or Local) returned lands after every
//!    revision that read saw.
//! 4. **Reads are snapshots.** A read of several keys observes one prefix of the log, at least
//!    up to the highest revision it returned: no acknowledged write changed a key it returned
//!    between that key's revision and that highest revision, and a key it found absent was not
//!    last set, before that highest revision, by an acknowledged write that no delete could have
//!    followed.
//! 5. **A compare-and-set tells the truth.** One that failed returns a current entry that
//!    really makes its condition false, with an earlier revision that no acknowledged write to
//!    the key followed before the compare-and-set; one that succeeded returns its own new
//!    value at its own revision.
//!
//! These hold for Local reads too: a node's applied state is always a prefix of the log.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::history::{Expected, Record, Reply, Request};
use crate::scope;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What the history says each revision of each key held.
#[derive(Debug, Default)]
pub(crate) struct Revisions {
    values: HashMap<(Vec<u8>, u64), Vec<u8>>,
}

impl Revisions {
    /// Learns from every entry a read or a compare-and-set returned, and from every value an
    /// acknowledged write stored.
    pub(crate) fn learn(records: &[Record]) -> Revisions {
        let mut revisions = Revisions::default();
        for observation in observations(records) {
            revisions
                .values
                .entry((observation.key, observation.revision))
                .or_insert(observation.value);
        }
        revisions
    }

    /// The value `key` held at `revision`, if the history shows it.
    pub(crate) fn value_at(&self, key: &[u8], revision: u64) -> Option<&[u8]> {
        self.values
            .get(&(key.to_vec(), revision))
            .map(Vec::as_slice)
    }
}

/// One (key, value, revision) the history shows, and the record that shows it.
struct Observation {
    key: Vec<u8>,
    value: Vec<u8>,
    revision: u64,
    record: usize,
}

fn observations(records: &[Record]) -> Vec<Observation> {
    let mut found = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let mut see = |key: &[u8], value: &[u8], revision: u64| {
            found.push(Observation {
                key: key.to_vec(),
                value: value.to_vec(),
                revision,
                record: index,
            });
        };
        match &record.reply {
            Reply::Read(entries) => {
                for (key, entry) in entries {
                    if let Some((value, revision)) = entry {
                        see(key, value, *revision);
                    }
                }
            }
            Reply::Written { revision } => {
                for (key, value) in scope::stored_values(&record.request) {
                    see(&key, &value, *revision);
                }
            }
            Reply::Swapped { current, .. } => {
                if let (Request::CompareAndSet { key, .. }, Some((value, revision))) =
                    (&record.request, current)
                {
                    see(key, value, *revision);
                }
            }
            Reply::Failed(_) | Reply::Unknown(_) => {}
        }
    }
    found
}

/// The revision of an acknowledged write.
fn acknowledged(record: &Record) -> Option<u64> {
    match record.reply {
        Reply::Written { revision } | Reply::Swapped { revision, .. } => Some(revision),
        _ => None,
    }
}

/// The keys an acknowledged write changed (set or deleted), with the new value.
fn changed(record: &Record) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    match (&record.request, &record.reply) {
        (Request::CompareAndSet { key, new, .. }, Reply::Swapped { succeeded, .. }) => {
            if *succeeded {
                vec![(key.clone(), new.clone())]
            } else {
                Vec::new()
            }
        }
        (request, Reply::Written { .. }) => scope::writes(request),
        _ => Vec::new(),
    }
}

/// Runs every check; one message per violation.
pub(crate) fn check(records: &[Record]) -> Vec<String> {
    let mut violations = Vec::new();
    let learned = one_value_one_revision(records, &mut violations);
    one_entry_one_write(records, &mut violations);
    real_time(records, &learned, &mut violations);
    let by_key = changes_by_key(records);
    snapshots(records, &by_key, &mut violations);
    compare_and_set_answers(records, &by_key, &mut violations);
    violations
}

/// Check 1. Returns the revision of every observed (key, value).
fn one_value_one_revision(
    records: &[Record],
    violations: &mut Vec<String>,
) -> HashMap<(Vec<u8>, Vec<u8>), u64> {
    let mut revision_of: HashMap<(Vec<u8>, Vec<u8>), (u64, usize)> = HashMap::new();
    let mut value_of: HashMap<(Vec<u8>, u64), (Vec<u8>, usize)> = HashMap::new();
    for seen in observations(records) {
        let (revision, first) = *revision_of
            .entry((seen.key.clone(), seen.value.clone()))
            .or_insert((seen.revision, seen.record));
        if revision != seen.revision {
            violations.push(format!(
                "revisions: value {} of key {} has revision {revision} in operation #{first} \
                 and {} in operation #{}",
                text(&seen.value),
                text(&seen.key),
                seen.revision,
                seen.record
            ));
        }
        let (value, first) = value_of
            .entry((seen.key.clone(), seen.revision))
            .or_insert((seen.value.clone(), seen.record));
        if *value != seen.value {
            violations.push(format!(
                "revisions: revision {} of key {} holds {} in operation #{first} and {} in \
                 operation #{}",
                seen.revision,
                text(&seen.key),
                text(value),
                text(&seen.value),
                seen.record
            ));
        }
    }
    revision_of
        .into_iter()
        .map(|(pair, (revision, _))| (pair, revision))
        .collect()
}

/// Check 2.
fn one_entry_one_write(records: &[Record], violations: &mut Vec<String>) {
    let mut owner: HashMap<u64, usize> = HashMap::new();
    for (index, record) in records.iter().enumerate() {
        if let Some(revision) = acknowledged(record)
            && let Some(first) = owner.insert(revision, index)
        {
            violations.push(format!(
                "revisions: operations #{first} and #{index} were both acknowledged at revision \
                 {revision}"
            ));
        }
    }
}

/// A write placed in the log: its revision and its real-time interval (`complete` is
/// `u64::MAX` for a write of unknown outcome whose revision a read revealed).
#[derive(Clone, Copy)]
struct Placed {
    revision: u64,
    invoke: u64,
    complete: u64,
    record: usize,
}

/// Check 3.
fn real_time(
    records: &[Record],
    learned: &HashMap<(Vec<u8>, Vec<u8>), u64>,
    violations: &mut Vec<String>,
) {
    let mut placed = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let revision = match &record.reply {
            Reply::Unknown(_) => scope::stored_values(&record.request)
                .into_iter()
                .find_map(|pair| learned.get(&pair).copied()),
            _ => acknowledged(record),
        };
        if let Some(revision) = revision {
            let complete = if matches!(record.reply, Reply::Unknown(_)) {
                u64::MAX
            } else {
                record.complete
            };
            placed.push(Placed {
                revision,
                invoke: record.invoke,
                complete,
                record: index,
            });
        }
    }
    // Writes against writes: in revision order, no write may have returned before an
    // earlier-placed one was invoked.
    placed.sort_by_key(|write| write.revision);
    let mut latest_invoked: Option<Placed> = None;
    for write in &placed {
        if let Some(earlier) = latest_invoked
            && earlier.invoke > write.complete
            && earlier.revision < write.revision
        {
            violations.push(format!(
                "revisions: operation #{} (revision {}) returned before operation #{} was \
                 invoked, yet the latter has the smaller revision {}",
                write.record, write.revision, earlier.record, earlier.revision
            ));
        }
        if latest_invoked.is_none_or(|latest| write.invoke > latest.invoke) {
            latest_invoked = Some(*write);
        }
    }
    // Reads against writes: a write invoked after a read returned lands after what it saw.
    placed.sort_by_key(|write| write.invoke);
    let mut smallest_after: Vec<Placed> = placed.clone();
    for index in (0..smallest_after.len().saturating_sub(1)).rev() {
        if smallest_after[index + 1].revision < smallest_after[index].revision {
            smallest_after[index] = smallest_after[index + 1];
        }
    }
    for (index, record) in records.iter().enumerate() {
        let Some(highest) = highest_read_revision(record) else {
            continue;
        };
        let first_later = placed.partition_point(|write| write.invoke <= record.complete);
        if let Some(write) = smallest_after.get(first_later)
            && write.revision <= highest
        {
            violations.push(format!(
                "revisions: operation #{} was invoked after read #{index} returned revision \
                 {highest}, yet it landed at revision {}",
                write.record, write.revision
            ));
        }
    }
}

/// The highest revision a read returned (`None` if it returned no entry).
fn highest_read_revision(record: &Record) -> Option<u64> {
    let Reply::Read(entries) = &record.reply else {
        return None;
    };
    entries
        .iter()
        .filter_map(|(_, entry)| entry.as_ref().map(|(_, revision)| *revision))
        .max()
}

/// For each key, the acknowledged writes that changed it, by revision, with the new value.
type ChangesByKey = HashMap<Vec<u8>, BTreeMap<u64, (usize, Option<Vec<u8>>)>>;

fn changes_by_key(records: &[Record]) -> ChangesByKey {
    let mut by_key: ChangesByKey = HashMap::new();
    for (index, record) in records.iter().enumerate() {
        let Some(revision) = acknowledged(record) else {
            continue;
        };
        for (key, value) in changed(record) {
            by_key
                .entry(key)
                .or_default()
                .insert(revision, (index, value));
        }
    }
    by_key
}

/// The first acknowledged write that changed `key` at a revision in `(after, through]`.
fn change_between(
    by_key: &ChangesByKey,
    key: &[u8],
    after: u64,
    through: u64,
) -> Option<(u64, usize)> {
    if through <= after {
        return None;
    }
    by_key
        .get(key)?
        .range(after + 1..=through)
        .next()
        .map(|(revision, (record, _))| (*revision, *record))
}

/// Check 4.
fn snapshots(records: &[Record], by_key: &ChangesByKey, violations: &mut Vec<String>) {
    // For each key, the earliest invocation of a write of unknown outcome that may delete it.
    let mut may_delete: HashMap<Vec<u8>, u64> = HashMap::new();
    for record in records {
        if !matches!(record.reply, Reply::Unknown(_)) {
            continue;
        }
        let mut deleted: Vec<Vec<u8>> = scope::writes(&record.request)
            .into_iter()
            .filter(|(_, value)| value.is_none())
            .map(|(key, _)| key)
            .collect();
        if let Request::CompareAndSet { key, new: None, .. } = &record.request {
            deleted.push(key.clone());
        }
        for key in deleted {
            let earliest = may_delete.entry(key).or_insert(record.invoke);
            *earliest = (*earliest).min(record.invoke);
        }
    }
    for (index, record) in records.iter().enumerate() {
        let (Reply::Read(entries), Some(highest)) = (&record.reply, highest_read_revision(record))
        else {
            continue;
        };
        let keys = scope::read_keys(&record.request);
        let entry_of = |key: &[u8]| {
            entries
                .iter()
                .find(|(read, _)| *read == key)
                .and_then(|(_, entry)| entry.as_ref())
        };
        // The read observed the log up to some point in [highest, latest]: before the next
        // change of every key it returned.
        let mut latest = u64::MAX;
        for key in &keys {
            let Some((_, revision)) = entry_of(key) else {
                continue;
            };
            let next_change = by_key
                .get(key)
                .and_then(|changes| changes.range(revision + 1..).next());
            if let Some((changed_at, (writer, _))) = next_change {
                latest = latest.min(changed_at - 1);
                if *changed_at <= highest {
                    violations.push(format!(
                        "revisions: read #{index} returned key {} at revision {revision} and \
                         another key at revision {highest}, but operation #{writer} changed {} \
                         at revision {changed_at} in between",
                        text(key),
                        text(key)
                    ));
                }
            }
        }
        for key in &keys {
            if entry_of(key).is_some() {
                continue;
            }
            // Absent somewhere in [highest, latest]: its last change by then is a delete, or a
            // write of unknown outcome could have deleted it.
            let changes = by_key.get(key);
            let last_by_highest = changes.and_then(|changes| changes.range(..=highest).next_back());
            let deleted_later = changes.is_some_and(|changes| {
                highest < latest
                    && changes
                        .range(highest + 1..=latest)
                        .any(|(_, (_, value))| value.is_none())
            });
            let deletable = may_delete
                .get(key)
                .is_some_and(|earliest| *earliest < record.complete);
            if let Some((set_at, (writer, Some(_)))) = last_by_highest
                && !deleted_later
                && !deletable
            {
                violations.push(format!(
                    "revisions: read #{index} found key {} absent at a revision of at least \
                     {highest}, but operation #{writer} set it at revision {set_at} and nothing \
                     could have deleted it by the read's point",
                    text(key)
                ));
            }
        }
    }
}

/// Whether `current` makes the condition `expected` false.
fn condition_fails(expected: &Expected, current: Option<&(Vec<u8>, u64)>) -> bool {
    match (expected, current) {
        (Expected::Absent, current) => current.is_some(),
        (_, None) => true,
        (Expected::Value(value), Some((current, _))) => current != value,
        (Expected::Revision(revision), Some((_, current))) => current != revision,
    }
}

/// Check 5.
fn compare_and_set_answers(
    records: &[Record],
    by_key: &ChangesByKey,
    violations: &mut Vec<String>,
) {
    for (index, record) in records.iter().enumerate() {
        let (
            Request::CompareAndSet { key, expected, new },
            Reply::Swapped {
                succeeded,
                revision,
                current,
            },
        ) = (&record.request, &record.reply)
        else {
            continue;
        };
        let mut problem = String::new();
        if *succeeded {
            let after = new.clone().map(|value| (value, *revision));
            if *current != after {
                let _ = write!(
                    problem,
                    "succeeded but returned {current:?} as the entry after it"
                );
            }
        } else if !condition_fails(expected, current.as_ref()) {
            let _ = write!(problem, "failed although {current:?} meets its condition");
        } else if let Some((_, current_revision)) = current {
            if *current_revision >= *revision {
                let _ = write!(
                    problem,
                    "failed at revision {revision} on an entry of revision {current_revision}"
                );
            } else if let Some((changed_at, writer)) =
                change_between(by_key, key, *current_revision, revision - 1)
            {
                let _ = write!(
                    problem,
                    "failed at revision {revision} on the entry of revision {current_revision}, \
                     but operation #{writer} changed the key at revision {changed_at}"
                );
            }
        }
        if !problem.is_empty() {
            violations.push(format!(
                "revisions: compare-and-set #{index} on key {} {problem}",
                text(key)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Preference;

    fn record(invoke: u64, complete: u64, request: Request, reply: Reply) -> Record {
        Record {
            client: 0,
            node: 0,
            process: Some(1),
            invoke,
            complete,
            request,
            reply,
        }
    }

    fn set(key: &str, value: &str) -> Request {
        Request::Set {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
        }
    }

    fn read_many(keys: &[&str]) -> Request {
        Request::GetMany {
            keys: keys.iter().map(|key| key.as_bytes().to_vec()).collect(),
            preference: Preference::Local,
        }
    }

    fn found(entries: &[(&str, Option<(&str, u64)>)]) -> Reply {
        Reply::Read(
            entries
                .iter()
                .map(|(key, entry)| {
                    (
                        key.as_bytes().to_vec(),
                        entry.map(|(value, revision)| (value.as_bytes().to_vec(), revision)),
                    )
                })
                .collect(),
        )
    }

    fn written(revision: u64) -> Reply {
        Reply::Written { revision }
    }

    #[test]
    fn a_consistent_history_passes() {
        let history = [
            record(0, 10, set("a0", "x"), written(3)),
            record(20, 30, set("a1", "y"), written(4)),
            record(
                40,
                50,
                read_many(&["a0", "a1"]),
                found(&[("a0", Some(("x", 3))), ("a1", Some(("y", 4)))]),
            ),
        ];
        assert_eq!(check(&history), Vec::<String>::new());
    }

    #[test]
    fn a_value_read_at_another_revision_than_written_is_caught() {
        let history = [
            record(0, 10, set("a0", "x"), written(3)),
            record(20, 30, read_many(&["a0"]), found(&[("a0", Some(("x", 5)))])),
        ];
        let violations = check(&history);
        assert!(
            violations.iter().any(|v| v.contains("has revision 3")),
            "{violations:?}"
        );
    }

    #[test]
    fn two_writes_at_one_revision_are_caught() {
        let history = [
            record(0, 10, set("a0", "x"), written(3)),
            record(0, 10, set("a1", "y"), written(3)),
        ];
        assert_eq!(check(&history).len(), 1);
    }

    #[test]
    fn a_revision_order_against_real_time_is_caught() {
        // The second write started after the first returned, yet precedes it in the log.
        let history = [
            record(0, 10, set("a0", "x"), written(5)),
            record(20, 30, set("a1", "y"), written(4)),
        ];
        let violations = check(&history);
        assert!(
            violations.iter().any(|v| v.contains("smaller revision 4")),
            "{violations:?}"
        );
    }

    #[test]
    fn a_write_after_a_read_landing_below_what_it_saw_is_caught() {
        let history = [
            record(0, 100, set("a0", "x"), written(7)),
            record(10, 20, read_many(&["a0"]), found(&[("a0", Some(("x", 7)))])),
            record(30, 40, set("a1", "y"), written(6)),
        ];
        let violations = check(&history);
        assert!(
            violations
                .iter()
                .any(|v| v.contains("landed at revision 6")),
            "{violations:?}"
        );
    }

    #[test]
    fn a_torn_multi_key_read_is_caught() {
        // a0 changed at 4, but a read returned a0 at 3 next to a1 at 5.
        let history = [
            record(0, 10, set("a0", "x"), written(3)),
            record(0, 10, set("a0", "z"), written(4)),
            record(0, 10, set("a1", "y"), written(5)),
            record(
                20,
                30,
                read_many(&["a0", "a1"]),
                found(&[("a0", Some(("x", 3))), ("a1", Some(("y", 5)))]),
            ),
        ];
        let violations = check(&history);
        assert!(
            violations.iter().any(|v| v.contains("in between")),
            "{violations:?}"
        );
    }

    #[test]
    fn an_absent_key_that_nothing_deleted_is_caught_unless_an_unknown_delete_could_have() {
        let mut history = vec![
            record(0, 10, set("a0", "x"), written(3)),
            record(0, 10, set("a1", "y"), written(4)),
            record(
                20,
                30,
                read_many(&["a0", "a1"]),
                found(&[("a0", None), ("a1", Some(("y", 4)))]),
            ),
        ];
        assert_eq!(check(&history).len(), 1);
        history.push(record(
            15,
            40,
            Request::Delete {
                key: b"a0".to_vec(),
            },
            Reply::Unknown("timed out".to_owned()),
        ));
        assert_eq!(check(&history), Vec::<String>::new());
    }

    #[test]
    fn a_key_deleted_after_the_highest_revision_read_may_be_absent() {
        // The read's point may lie past the highest revision it returned: a0 deleted at 5,
        // after a1's write at 4 that the read returned, is absent at point 5.
        let history = [
            record(0, 10, set("a0", "x"), written(3)),
            record(0, 10, set("a1", "y"), written(4)),
            record(
                0,
                30,
                Request::Delete {
                    key: b"a0".to_vec(),
                },
                written(5),
            ),
            record(
                20,
                30,
                read_many(&["a0", "a1"]),
                found(&[("a0", None), ("a1", Some(("y", 4)))]),
            ),
        ];
        assert_eq!(check(&history), Vec::<String>::new());
        // Not if a1 changed at 5 first: then the point is 4, where a0 holds x.
        let mut changed_first = history.to_vec();
        changed_first[2] = record(0, 30, set("a1", "z"), written(5));
        changed_first.push(record(
            0,
            30,
            Request::Delete {
                key: b"a0".to_vec(),
            },
            written(6),
        ));
        assert_eq!(check(&changed_first).len(), 1);
    }

    #[test]
    fn a_failed_compare_and_set_must_show_an_entry_that_defeats_it() {
        let cas = |expected: Expected, current: Option<(&str, u64)>| {
            record(
                20,
                30,
                Request::CompareAndSet {
                    key: b"a0".to_vec(),
                    expected,
                    new: None,
                },
                Reply::Swapped {
                    succeeded: false,
                    revision: 9,
                    current: current.map(|(value, revision)| (value.as_bytes().to_vec(), revision)),
                },
            )
        };
        let base = record(0, 10, set("a0", "x"), written(3));
        assert_eq!(
            check(&[base.clone(), cas(Expected::Revision(2), Some(("x", 3)))]),
            Vec::<String>::new()
        );
        assert_eq!(
            check(&[base.clone(), cas(Expected::Revision(3), Some(("x", 3)))]).len(),
            1
        );
        assert_eq!(
            check(&[
                base.clone(),
                cas(Expected::Value(b"x".to_vec()), Some(("x", 3)))
            ])
            .len(),
            1
        );
        assert_eq!(check(&[base, cas(Expected::Absent, None)]).len(), 1);
    }
}
