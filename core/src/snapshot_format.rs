//! The snapshot file format: versioned, checksummed, streamed record by record so that neither
//! writing nor reading ever holds the whole key space in memory.
//!
//! ```text
//! magic "DBADGSNP" | version u16 | meta length u32 | meta (codec::encode_snapshot_meta)
//! record*          where record = 0x01 | key length u32 | key | value length u32 | value | revision u64
//! 0x00 | record count u64 | crc32 u32
//! ```
//!
//! All integers are big-endian. The CRC-32 (IEEE) covers every byte before it. Records are in
//! ascending key order and keys are 1..=511 bytes. A reader reports a truncated file, a bad
//! checksum, an unsorted or oversize key, a wrong record count or trailing bytes as a
//! [`DecodeError`]; it never panics and allocates only as much as the file really contains.

use std::io::{self, Read, Write};

use crate::codec::{decode_snapshot_meta, encode_snapshot_meta};
use crate::error::DecodeError;
use crate::limits::MAX_KEY_BYTES;
use crate::raft_types::SnapshotMeta;

/// The first eight bytes of every snapshot file.
pub const MAGIC: &[u8; 8] = b"DBADGSNP";
/// The format version this build writes and reads.
pub const VERSION: u16 = 1;

const RECORD: u8 = 1;
const END: u8 = 0;
/// A snapshot's metadata is a log id and a membership: kilobytes at most.
const MAX_META_BYTES: u32 = 1 << 20;

/// A snapshot's id: `snapshot-<term>-<node>-<index>` of the last log entry it covers
/// (`snapshot-empty` for a snapshot of nothing). The same state at the same log id has the same
/// id on every node, and the id names its file in a data directory.
pub fn snapshot_id(meta: &SnapshotMeta) -> String {
    match &meta.last_log_id {
        Some(id) => format!(
            "snapshot-{}-{}-{}",
            id.leader_id.term, id.leader_id.node_id, id.index
        ),
        None => "snapshot-empty".to_owned(),
    }
}

/// Reads a whole snapshot stream, checking every record and the trailer's checksum; returns
/// its metadata and how many pairs it holds.
pub fn verify(input: impl Read) -> Result<(SnapshotMeta, u64), DecodeError> {
    let (mut reader, meta) = SnapshotReader::open(input)?;
    let mut pairs = 0;
    while reader.next_record()?.is_some() {
        pairs += 1;
    }
    Ok((meta, pairs))
}

/// Writes a snapshot file record by record.
#[derive(Debug)]
pub struct SnapshotWriter<W: Write> {
    out: W,
    crc: crc32fast::Hasher,
    records: u64,
    last_key: Option<Vec<u8>>,
}

impl<W: Write> SnapshotWriter<W> {
    /// Writes the header for `meta`.
    pub fn new(out: W, meta: &SnapshotMeta) -> io::Result<SnapshotWriter<W>> {
        let mut writer = SnapshotWriter {
            out,
            crc: crc32fast::Hasher::new(),
            records: 0,
            last_key: None,
        };
        let meta = encode_snapshot_meta(meta);
        writer.put(MAGIC)?;
        writer.put(&VERSION.to_be_bytes())?;
        writer.put(&length(meta.len())?.to_be_bytes())?;
        writer.put(&meta)?;
        Ok(writer)
    }

    /// Appends one pair. Keys must come in strictly ascending order.
    pub fn record(&mut self, key: &[u8], value: &[u8], revision: u64) -> io::Result<()> {
        if self.last_key.as_deref().is_some_and(|last| last >= key) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "snapshot records must be in ascending key order",
            ));
        }
        self.put(&[RECORD])?;
        self.put(&length(key.len())?.to_be_bytes())?;
        self.put(key)?;
        self.put(&length(value.len())?.to_be_bytes())?;
        self.put(value)?;
        self.put(&revision.to_be_bytes())?;
        self.records += 1;
        self.last_key = Some(key.to_vec());
        Ok(())
    }

    /// Writes the trailer (record count and checksum) and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.put(&[END])?;
        self.put(&self.records.to_be_bytes())?;
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_be_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.out.write_all(bytes)
    }
}

fn length(len: usize) -> io::Result<u32> {
    u32::try_from(len).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "field over 4 GiB"))
}

/// One pair read from a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// The revision of the value.
    pub revision: u64,
}

/// Reads and verifies a snapshot file record by record.
///
/// The checksum can only be verified at the end: a caller must not make any record visible
/// before [`SnapshotReader::next_record`] has returned `Ok(None)` (the install path writes
/// records into a transaction that it commits only then).
#[derive(Debug)]
pub struct SnapshotReader<R: Read> {
    input: R,
    crc: crc32fast::Hasher,
    records: u64,
    last_key: Option<Vec<u8>>,
    finished: bool,
}

impl<R: Read> SnapshotReader<R> {
    /// Reads and checks the header; returns the reader and the snapshot's metadata.
    pub fn open(input: R) -> Result<(SnapshotReader<R>, SnapshotMeta), DecodeError> {
        let mut reader = SnapshotReader {
            input,
            crc: crc32fast::Hasher::new(),
            records: 0,
            last_key: None,
            finished: false,
        };
        let magic: [u8; 8] = reader.array("snapshot magic")?;
        if &magic != MAGIC {
            return Err(DecodeError::BadMagic {
                what: "dbadger snapshot",
            });
        }
        let version = u16::from_be_bytes(reader.array("snapshot version")?);
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "snapshot",
                version,
            });
        }
        let meta_len = u32::from_be_bytes(reader.array("snapshot meta length")?);
        if meta_len > MAX_META_BYTES {
            return Err(DecodeError::LengthOutOfBounds {
                what: "snapshot meta",
                len: u64::from(meta_len),
                remaining: MAX_META_BYTES as usize,
            });
        }
        let meta = decode_snapshot_meta(&reader.vector(meta_len, "snapshot meta")?)?;
        Ok((reader, meta))
    }

    /// The next pair, or `None` once the trailer has been read and verified.
    pub fn next_record(&mut self) -> Result<Option<SnapshotRecord>, DecodeError> {
        if self.finished {
            return Ok(None);
        }
        match self.array::<1>("snapshot record tag")?[0] {
            RECORD => self.read_record().map(Some),
            END => {
                self.read_trailer()?;
                self.finished = true;
                Ok(None)
            }
            tag => Err(DecodeError::UnknownTag {
                what: "snapshot record",
                tag,
            }),
        }
    }

    fn read_record(&mut self) -> Result<SnapshotRecord, DecodeError> {
        let key_len = u32::from_be_bytes(self.array("snapshot key length")?);
        if key_len == 0 || key_len as usize > MAX_KEY_BYTES {
            return Err(DecodeError::LengthOutOfBounds {
                what: "snapshot key",
                len: u64::from(key_len),
                remaining: MAX_KEY_BYTES,
            });
        }
        let key = self.vector(key_len, "snapshot key")?;
        if self.last_key.as_ref().is_some_and(|last| *last >= key) {
            return Err(DecodeError::NonCanonical {
                what: "snapshot key order",
            });
        }
        let value_len = u32::from_be_bytes(self.array("snapshot value length")?);
        let value = self.vector(value_len, "snapshot value")?;
        let revision = u64::from_be_bytes(self.array("snapshot revision")?);
        self.records += 1;
        self.last_key = Some(key.clone());
        Ok(SnapshotRecord {
            key,
            value,
            revision,
        })
    }

    fn read_trailer(&mut self) -> Result<(), DecodeError> {
        let count = u64::from_be_bytes(self.array("snapshot record count")?);
        if count != self.records {
            return Err(DecodeError::NonCanonical {
                what: "snapshot record count",
            });
        }
        let computed = self.crc.clone().finalize();
        let mut stored = [0u8; 4];
        read_exactly(&mut self.input, &mut stored, "snapshot checksum")?;
        let stored = u32::from_be_bytes(stored);
        if stored != computed {
            return Err(DecodeError::ChecksumMismatch { stored, computed });
        }
        let mut extra = [0u8; 1];
        match self.input.read(&mut extra) {
            Ok(0) => Ok(()),
            Ok(_) => Err(DecodeError::TrailingBytes { count: 1 }),
            Err(error) => Err(DecodeError::Read(error.to_string())),
        }
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut bytes = [0u8; N];
        read_exactly(&mut self.input, &mut bytes, what)?;
        self.crc.update(&bytes);
        Ok(bytes)
    }

    /// Reads `len` bytes, growing the buffer only as bytes actually arrive, so a corrupt length
    /// cannot make the reader allocate more than the file holds.
    fn vector(&mut self, len: u32, what: &'static str) -> Result<Vec<u8>, DecodeError> {
        let mut bytes = Vec::new();
        let read = (&mut self.input)
            .take(u64::from(len))
            .read_to_end(&mut bytes)
            .map_err(|error| DecodeError::Read(error.to_string()))?;
        if read < len as usize {
            return Err(DecodeError::UnexpectedEnd {
                what,
                needed: len as usize - read,
            });
        }
        self.crc.update(&bytes);
        Ok(bytes)
    }
}

fn read_exactly(
    input: &mut impl Read,
    buffer: &mut [u8],
    what: &'static str,
) -> Result<(), DecodeError> {
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]) {
            Ok(0) => {
                return Err(DecodeError::UnexpectedEnd {
                    what,
                    needed: buffer.len() - filled,
                });
            }
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(DecodeError::Read(error.to_string())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
