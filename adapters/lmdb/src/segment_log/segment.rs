//! Segment files: their names, and their preparation. A segment is created zero-filled and
//! flushed to its full size before the log writes into it, under a temporary name, so that
//! the log's flushes overwrite allocated blocks (no file-size or extent changes to journal:
//! about half the cost of a flush after an append on the disks measured) and an all-zero
//! header marks where writing stopped. One segment is prepared ahead, on its own thread.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

const SEGMENT_SUFFIX: &str = ".seg";
const PREPARING_SUFFIX: &str = ".preparing";
/// The segment prepared ahead, complete and flushed (kept across restarts).
const READY_FILE: &str = "next.ready";
/// Zeros are written in pieces of this size.
const ZERO_CHUNK: usize = 1 << 20;

/// The file of segment `number` in `dir`.
pub(crate) fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}{SEGMENT_SUFFIX}"))
}

/// The segment numbers in `dir`, in order; removes files left by an interrupted preparation.
pub(crate) fn list_segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut numbers = Vec::new();
    for item in fs::read_dir(dir)? {
        let item = item?;
        let name = item.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(PREPARING_SUFFIX) {
            fs::remove_file(item.path())?;
        } else if let Some(number) = segment_number(&name) {
            numbers.push(number);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// The number of a file named as [`segment_path`] names segments (exactly 20 digits and the
/// suffix); any other name is not a segment.
fn segment_number(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(SEGMENT_SUFFIX)?;
    if stem.len() != 20 || !stem.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Flushes `dir` itself, so that a created, renamed or removed file stays so after a crash.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A zero-filled, flushed file under a temporary name, ready to become a segment.
#[derive(Debug)]
pub(crate) struct Prepared {
    path: PathBuf,
    file: File,
    size: u64,
}

impl Prepared {
    /// The file prepared ahead by an earlier run, if it has `size` bytes (else it is removed).
    fn left_ready(dir: &Path, size: u64) -> std::io::Result<Option<Prepared>> {
        let path = dir.join(READY_FILE);
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        if file.metadata()?.len() != size {
            drop(file);
            fs::remove_file(&path)?;
            return Ok(None);
        }
        Ok(Some(Prepared { path, file, size }))
    }

    /// Creates a file of `size` zero bytes in `dir` and flushes it.
    fn create(dir: &Path, size: u64, name: u64) -> std::io::Result<Prepared> {
        let path = dir.join(format!("{name:020}{PREPARING_SUFFIX}"));
        let filled = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .and_then(|file| zero_fill(file, size));
        match filled {
            Ok(file) => Ok(Prepared { path, file, size }),
            Err(error) => {
                // A partial file would take space the store does not count until the next open.
                let _ = fs::remove_file(&path);
                Err(error)
            }
        }
    }

    /// Renames a prepared file to the name a later run reuses (removing it if that fails).
    fn keep_ready(self, dir: &Path) -> std::io::Result<Prepared> {
        let path = dir.join(READY_FILE);
        if let Err(error) = fs::rename(&self.path, &path) {
            let _ = fs::remove_file(&self.path);
            return Err(error);
        }
        sync_dir(dir)?;
        Ok(Prepared { path, ..self })
    }

    /// Renames the file to segment `number` and flushes the directory; returns the file.
    fn activate(self, dir: &Path, number: u64) -> std::io::Result<File> {
        fs::rename(&self.path, segment_path(dir, number))?;
        sync_dir(dir)?;
        Ok(self.file)
    }
}

/// Writes `size` zero bytes to `file` and flushes it.
fn zero_fill(mut file: File, size: u64) -> std::io::Result<File> {
    let zeros = vec![0u8; ZERO_CHUNK];
    let mut left = size;
    while left > 0 {
        let piece = left.min(ZERO_CHUNK as u64) as usize;
        file.write_all(&zeros[..piece])?;
        // Flushed piece by piece: one flush of the whole file would put megabytes in the
        // disk's queue ahead of the log's small flushes.
        file.sync_data()?;
        left -= piece as u64;
    }
    file.sync_all()?;
    Ok(file)
}

#[derive(Debug, Default)]
struct Slot {
    ready: Option<std::io::Result<Prepared>>,
    /// Set when a segment was taken: prepare the next one.
    wanted: bool,
    closing: bool,
    /// The preparer thread has ended.
    stopped: bool,
    next_name: u64,
}

#[derive(Debug, Default)]
struct SlotShared {
    slot: Mutex<Slot>,
    changed: Condvar,
}

/// Prepares the next segment ahead of need, on a thread of its own.
#[derive(Debug)]
pub(crate) struct Preparer {
    dir: PathBuf,
    size: u64,
    shared: Arc<SlotShared>,
    thread: Option<JoinHandle<()>>,
}

impl Preparer {
    /// Starts preparing segments of `size` bytes in `dir`.
    pub(crate) fn start(dir: &Path, size: u64) -> std::io::Result<Preparer> {
        let shared = Arc::new(SlotShared::default());
        {
            let mut slot = lock(&shared.slot);
            match Prepared::left_ready(dir, size)? {
                Some(ready) => slot.ready = Some(Ok(ready)),
                None => slot.wanted = true,
            }
        }
        let thread = {
            let (dir, shared) = (dir.to_path_buf(), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("dbadger-log-segments".to_owned())
                .spawn(move || prepare_ahead(&dir, size, &shared))?
        };
        Ok(Preparer {
            dir: dir.to_path_buf(),
            size,
            shared,
            thread: Some(thread),
        })
    }

    /// Segment `number` of at least `min_size` bytes, renamed into place (directory flushed):
    /// the file prepared ahead if it is large enough (waiting for it if it is under way), else
    /// one made now. Returns the file and its size.
    pub(crate) fn take_as_segment(
        &self,
        min_size: u64,
        number: u64,
    ) -> std::io::Result<(File, u64)> {
        if min_size > self.size {
            // An entry larger than a segment gets a segment of its own size.
            let name = {
                let mut slot = lock(&self.shared.slot);
                slot.next_name += 1;
                slot.next_name
            };
            let made = Prepared::create(&self.dir, min_size, name)?;
            let size = made.size;
            return Ok((made.activate(&self.dir, number)?, size));
        }
        let mut slot = lock(&self.shared.slot);
        loop {
            if let Some(ready) = slot.ready.take() {
                // Renamed before the preparer may start the next one: it renames its file to
                // the same ready name, which would replace this one.
                let activated = ready.and_then(|ready| {
                    let size = ready.size;
                    ready.activate(&self.dir, number).map(|file| (file, size))
                });
                slot.wanted = true;
                self.shared.changed.notify_all();
                return activated;
            }
            if slot.stopped {
                return Err(std::io::Error::other(
                    "the thread that prepares the log's segments has stopped",
                ));
            }
            slot = self
                .shared
                .changed
                .wait(slot)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        lock(&self.shared.slot).closing = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Marks the slot stopped when the preparer thread ends for any reason (a panic included),
/// so that a writer waiting for a segment gets an error instead of waiting forever.
struct StopNotice<'a>(&'a SlotShared);

impl Drop for StopNotice<'_> {
    fn drop(&mut self) {
        lock(&self.0.slot).stopped = true;
        self.0.changed.notify_all();
    }
}

fn prepare_ahead(dir: &Path, size: u64, shared: &SlotShared) {
    let _notice = StopNotice(shared);
    loop {
        let name = {
            let mut slot = lock(&shared.slot);
            while !slot.wanted && !slot.closing {
                slot = shared
                    .changed
                    .wait(slot)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            if slot.closing {
                return;
            }
            slot.wanted = false;
            slot.next_name += 1;
            slot.next_name
        };
        let prepared = Prepared::create(dir, size, name).and_then(|made| made.keep_ready(dir));
        let mut slot = lock(&shared.slot);
        slot.ready = Some(prepared);
        shared.changed.notify_all();
    }
}

fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    // The slot's fields are set one at a time; a panic cannot leave them inconsistent.
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
