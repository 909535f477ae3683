//! Storage admission: the leader refuses a write before proposing it when the store is close
//! to its maximum, so that a full disk is a typed, not-applied `StorageFull` answer and never
//! a failed log append (which stops the Raft core). Deletes are taken for longer, so that
//! space can be freed. Like etcd's NOSPACE alarm, with a reserve instead of an alarm: writes
//! resume on their own once deletes bring the store back under the line.

use dbadger_core::restore::RestoreStep;
use dbadger_core::storage::SpaceUsage;
use dbadger_core::{Command, NewValue};

/// The least reserve kept free for writes in flight, the log's growth and LMDB's
/// copy-on-write pages: 256 KiB.
const MIN_RESERVE_BYTES: u64 = 256 << 10;

/// The space kept free below the maximum: a sixteenth of it, at least [`MIN_RESERVE_BYTES`],
/// at most a quarter of it.
pub(crate) fn reserve_bytes(max_bytes: u64) -> u64 {
    (max_bytes / 16).max(MIN_RESERVE_BYTES).min(max_bytes / 4)
}

/// Whether `command` only removes data (it may then use the last part of the reserve).
fn frees_space(command: &Command) -> bool {
    match command {
        Command::Delete { .. }
        | Command::DeleteMany { .. }
        | Command::DeletePrefix { .. }
        | Command::DeleteRange { .. }
        | Command::DeleteAll => true,
        Command::CompareAndSet { new, .. } => matches!(new, NewValue::Delete),
        // Abandoning a restore drops what it staged; its other steps add data.
        Command::Restore(step) => matches!(step, RestoreStep::Abort { .. }),
        Command::Set { .. } | Command::SetMany { .. } => false,
    }
}

/// Whether the leader may propose `command` with the store at `space`: writes while the
/// reserve is untouched, deletes until three quarters of it are used too.
pub(crate) fn admits(command: &Command, space: SpaceUsage) -> bool {
    let reserve = reserve_bytes(space.max_bytes);
    let keep_free = if frees_space(command) {
        reserve / 4
    } else {
        reserve
    };
    space.used_bytes.saturating_add(keep_free) <= space.max_bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = 64 << 20;

    fn set() -> Command {
        Command::Set {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        }
    }

    fn delete() -> Command {
        Command::Delete { key: b"k".to_vec() }
    }

    fn at(used_bytes: u64) -> SpaceUsage {
        SpaceUsage {
            used_bytes,
            max_bytes: MAX,
        }
    }

    #[test]
    fn writes_stop_at_the_reserve() {
        let reserve = reserve_bytes(MAX);
        assert_eq!(reserve, 4 << 20);
        assert!(admits(&set(), at(MAX - reserve)));
        assert!(!admits(&set(), at(MAX - reserve + 1)));
    }

    #[test]
    fn deletes_go_on_into_the_reserve() {
        let reserve = reserve_bytes(MAX);
        assert!(admits(&delete(), at(MAX - reserve + 1)));
        assert!(admits(&delete(), at(MAX - reserve / 4)));
        assert!(!admits(&delete(), at(MAX - reserve / 4 + 1)));
        let cas_delete = Command::CompareAndSet {
            key: b"k".to_vec(),
            expected: dbadger_core::Expected::Absent,
            new: NewValue::Delete,
        };
        assert!(admits(&cas_delete, at(MAX - reserve + 1)));
    }

    #[test]
    fn the_reserve_has_a_floor_and_a_ceiling() {
        assert_eq!(reserve_bytes(1 << 30), 64 << 20);
        assert_eq!(reserve_bytes(2 << 20), MIN_RESERVE_BYTES);
        assert_eq!(
            reserve_bytes(512 << 10),
            128 << 10,
            "a quarter of a tiny store"
        );
    }

    #[test]
    fn a_full_store_takes_nothing() {
        assert!(!admits(&set(), at(MAX)));
        assert!(!admits(&delete(), at(MAX)));
        assert!(!admits(&delete(), at(u64::MAX)));
    }
}
