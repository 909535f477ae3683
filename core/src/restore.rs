//! Restore through the log: replacing the whole key space with a snapshot file, on every node
//! at the same log index.
//!
//! openraft cannot install a snapshot on a leader, and a snapshot install on followers would
//! not reach the leader's own state; so a restore travels as ordinary log entries
//! ([`RestoreStep`]): `Begin` announces the file (its length, piece count and CRC-32),
//! `Piece`s carry it in order into a staging area of the state machine that is not part of
//! the key space, and `Commit` checks what was staged and, in one transaction, replaces every
//! pair with the file's (each at the commit's revision, so that revisions keep growing). Readers
//! see the old state or the new, never a mix; every node applies the same entries, so every
//! node ends byte-identical.
//!
//! A piece sent twice (a retry after a leader change whose outcome was unknown) is ignored; a
//! piece out of order marks the restore broken, and its commit fails on every node alike. A new
//! `Begin` discards an unfinished restore; `Abort` discards it explicitly.
//!
//! While a restore is staged the state machine builds no snapshot (`snapshot_allowed`), since a
//! snapshot holds only the key space: a follower installing one would lose the staged pieces
//! and fail the commit that the others pass.

use std::cell::RefCell;
use std::io::{self, Read};

use crate::error::DecodeError;
use crate::response::Response;
use crate::snapshot_format::SnapshotReader;
use crate::storage::{StateRead, StateWrite, StorageResult};

/// One step of a restore; each is one log entry (a [`crate::Command::Restore`]).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum RestoreStep {
    /// Starts a restore of a snapshot file of `bytes` bytes in `pieces` pieces whose CRC-32
    /// (IEEE) is `crc`; discards any unfinished one. The entry's index names the restore.
    Begin {
        /// The file's length.
        bytes: u64,
        /// How many pieces follow.
        pieces: u64,
        /// The CRC-32 of the whole file.
        crc: u32,
    },
    /// Piece `seq` (1-based) of the restore that began at index `begin`.
    Piece {
        /// The index of the restore's `Begin`.
        begin: u64,
        /// The piece's number, from 1.
        seq: u64,
        /// The piece's bytes.
        data: Vec<u8>,
    },
    /// Checks what was staged and replaces the key space with it.
    Commit {
        /// The index of the restore's `Begin`.
        begin: u64,
    },
    /// Discards the restore that began at index `begin`.
    Abort {
        /// The index of the restore's `Begin`.
        begin: u64,
    },
}

impl RestoreStep {
    /// The number of file bytes the step carries.
    pub fn payload_bytes(&self) -> usize {
        match self {
            RestoreStep::Piece { data, .. } => data.len(),
            _ => 0,
        }
    }
}

/// What the staging area records about the restore in progress (staged at sequence 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Progress {
    begin: u64,
    bytes: u64,
    pieces: u64,
    crc: u32,
    next: u64,
    received: u64,
    running_crc: u32,
    broken: bool,
}

const PROGRESS_BYTES: usize = 8 * 5 + 4 * 2 + 1;

impl Progress {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PROGRESS_BYTES);
        for value in [
            self.begin,
            self.bytes,
            self.pieces,
            self.next,
            self.received,
        ] {
            out.extend_from_slice(&value.to_be_bytes());
        }
        out.extend_from_slice(&self.crc.to_be_bytes());
        out.extend_from_slice(&self.running_crc.to_be_bytes());
        out.push(u8::from(self.broken));
        out
    }

    fn decode(bytes: &[u8]) -> Option<Progress> {
        if bytes.len() != PROGRESS_BYTES {
            return None;
        }
        let u64_at = |at: usize| {
            bytes
                .get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
        };
        let u32_at = |at: usize| {
            bytes
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
        };
        Some(Progress {
            begin: u64_at(0)?,
            bytes: u64_at(8)?,
            pieces: u64_at(16)?,
            next: u64_at(24)?,
            received: u64_at(32)?,
            crc: u32_at(40)?,
            running_crc: u32_at(44)?,
            broken: *bytes.get(48)? != 0,
        })
    }
}

fn progress(txn: &(impl StateRead + ?Sized)) -> StorageResult<Option<Progress>> {
    Ok(txn.staged(0)?.as_deref().and_then(Progress::decode))
}

/// The restore staged now, if any: the index of its `Begin` and the number of the next piece
/// it waits for.
pub fn staged_restore(view: &(impl StateRead + ?Sized)) -> StorageResult<Option<(u64, u64)>> {
    Ok(progress(view)?.map(|staged| (staged.begin, staged.next)))
}

/// Whether the state machine may build a snapshot now: not while a restore is staged (see the
/// module documentation).
pub fn snapshot_allowed(view: &(impl StateRead + ?Sized)) -> StorageResult<bool> {
    Ok(view.staged(0)?.is_none())
}

fn failed(reason: impl Into<String>) -> Response {
    Response::RestoreFailed {
        reason: reason.into(),
    }
}

/// Applies restore step `step`, the log entry at `index`, in `txn`.
pub fn apply(
    step: &RestoreStep,
    index: u64,
    txn: &mut (impl StateWrite + ?Sized),
) -> StorageResult<Response> {
    match step {
        RestoreStep::Begin { bytes, pieces, crc } => {
            txn.clear_staged()?;
            let started = Progress {
                begin: index,
                bytes: *bytes,
                pieces: *pieces,
                crc: *crc,
                next: 1,
                received: 0,
                running_crc: 0,
                broken: false,
            };
            txn.stage(0, &started.encode())?;
            Ok(Response::Written { revision: index })
        }
        RestoreStep::Piece { begin, seq, data } => {
            let Some(mut staged) = progress(txn)?.filter(|staged| staged.begin == *begin) else {
                return Ok(failed(format!(
                    "no restore begun at {begin} is in progress"
                )));
            };
            if *seq < staged.next {
                // Sent again after an answer that was lost: staged already.
                return Ok(Response::Written { revision: index });
            }
            if staged.broken || *seq != staged.next || *seq > staged.pieces {
                staged.broken = true;
                txn.stage(0, &staged.encode())?;
                return Ok(failed(format!(
                    "piece {seq} arrived where piece {} was expected",
                    staged.next
                )));
            }
            txn.stage(*seq, data)?;
            let mut hasher = crc32fast::Hasher::new_with_initial(staged.running_crc);
            hasher.update(data);
            staged.running_crc = hasher.finalize();
            staged.received += data.len() as u64;
            staged.next += 1;
            txn.stage(0, &staged.encode())?;
            Ok(Response::Written { revision: index })
        }
        RestoreStep::Commit { begin } => commit(*begin, index, txn),
        RestoreStep::Abort { begin } => {
            if progress(txn)?.is_some_and(|staged| staged.begin == *begin) {
                txn.clear_staged()?;
            }
            Ok(Response::Written { revision: index })
        }
    }
}

fn commit(begin: u64, index: u64, txn: &mut (impl StateWrite + ?Sized)) -> StorageResult<Response> {
    let Some(staged) = progress(txn)?.filter(|staged| staged.begin == begin) else {
        return Ok(failed(format!(
            "no restore begun at {begin} is in progress"
        )));
    };
    let complete = !staged.broken
        && staged.next == staged.pieces + 1
        && staged.received == staged.bytes
        && staged.running_crc == staged.crc;
    if !complete {
        txn.clear_staged()?;
        return Ok(failed(
            "the staged snapshot is incomplete or its checksum does not match",
        ));
    }
    let pieces = staged.pieces;
    let cell = RefCell::new(&mut *txn);
    // First pass: the whole file must read back as a valid snapshot before anything changes.
    let verified = (|| -> Result<(), DecodeError> {
        let (mut reader, _) = SnapshotReader::open(StagedFile::new(&cell, pieces))?;
        while reader.next_record()?.is_some() {}
        Ok(())
    })();
    if let Err(error) = verified {
        cell.into_inner().clear_staged()?;
        return Ok(failed(format!("the staged snapshot is not valid: {error}")));
    }
    // Second pass: replace every pair, each at this entry's revision.
    let replaced = (|| -> Result<u64, CommitError> {
        cell.borrow_mut().clear()?;
        let (mut reader, _) = SnapshotReader::open(StagedFile::new(&cell, pieces))?;
        let mut keys = 0;
        while let Some(record) = reader.next_record()? {
            cell.borrow_mut().put(&record.key, &record.value, index)?;
            keys += 1;
        }
        Ok(keys)
    })();
    let txn = cell.into_inner();
    match replaced {
        Ok(keys) => {
            txn.clear_staged()?;
            Ok(Response::Restored {
                revision: index,
                keys,
            })
        }
        Err(CommitError::Storage(error)) => Err(error),
        // Verified a moment ago: the staged bytes changed under the transaction.
        Err(CommitError::Decode(error)) => {
            Err(crate::StorageError::corrupt("staged restore", error))
        }
    }
}

enum CommitError {
    Storage(crate::StorageError),
    Decode(DecodeError),
}

impl From<crate::StorageError> for CommitError {
    fn from(error: crate::StorageError) -> CommitError {
        CommitError::Storage(error)
    }
}

impl From<DecodeError> for CommitError {
    fn from(error: DecodeError) -> CommitError {
        CommitError::Decode(error)
    }
}

/// The staged pieces 1..=`pieces`, read in order as one file.
struct StagedFile<'c, 't, T: ?Sized> {
    txn: &'c RefCell<&'t mut T>,
    next: u64,
    pieces: u64,
    piece: Vec<u8>,
    at: usize,
}

impl<'c, 't, T: StateRead + ?Sized> StagedFile<'c, 't, T> {
    fn new(txn: &'c RefCell<&'t mut T>, pieces: u64) -> Self {
        StagedFile {
            txn,
            next: 1,
            pieces,
            piece: Vec::new(),
            at: 0,
        }
    }
}

impl<T: StateRead + ?Sized> Read for StagedFile<'_, '_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.piece.len() {
            if self.next > self.pieces {
                return Ok(0);
            }
            let piece = self
                .txn
                .borrow()
                .staged(self.next)
                .map_err(io::Error::other)?
                .ok_or_else(|| {
                    io::Error::other(format!("staged piece {} is missing", self.next))
                })?;
            self.piece = piece;
            self.at = 0;
            self.next += 1;
        }
        let count = buf.len().min(self.piece.len() - self.at);
        buf[..count].copy_from_slice(&self.piece[self.at..self.at + count]);
        self.at += count;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_round_trips() {
        let progress = Progress {
            begin: 7,
            bytes: 1 << 40,
            pieces: 3,
            crc: 0xdead_beef,
            next: 2,
            received: 99,
            running_crc: 5,
            broken: true,
        };
        assert_eq!(Progress::decode(&progress.encode()), Some(progress));
        assert_eq!(Progress::decode(&[0; 3]), None);
    }

    /// The CRC carried piece by piece equals the CRC of the whole file.
    #[test]
    fn running_crc_matches_the_whole() {
        let file: Vec<u8> = (0..10_000u32).flat_map(u32::to_be_bytes).collect();
        let mut running = 0;
        for piece in file.chunks(777) {
            let mut hasher = crc32fast::Hasher::new_with_initial(running);
            hasher.update(piece);
            running = hasher.finalize();
        }
        assert_eq!(running, crc32fast::hash(&file));
    }
}
