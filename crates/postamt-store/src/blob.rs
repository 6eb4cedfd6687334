//! Content-addressed message bodies as plain files.
//!
//! A body lives at `<data_dir>/blobs/ab/cd/<64 hex digits>`, named by its BLAKE3 hash
//! ([`BlobId`]), so identical bodies are stored once. Files are written to `blobs/tmp/`, synced,
//! and renamed into place, so a blob file is either complete or absent; the rename and any new
//! directory entries are fsync'd before [`BlobDir::write`] returns.
//!
//! This module knows nothing about references: which blobs are still needed is decided by the
//! metadata backend, which alone calls [`BlobDir::remove`] (see the race rule in `sqlite`).
//! Every function blocks; async callers run them in `spawn_blocking`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::types::BlobId;

/// Temporary files older than this are leftovers of a crash and are removed on open. Generous,
/// because another process may be writing a large body into the same directory right now.
const STALE_TMP_AGE: Duration = Duration::from_secs(24 * 3600);

/// The blob directory of one data directory.
#[derive(Debug)]
pub struct BlobDir {
    root: PathBuf,
    tmp: PathBuf,
    /// Which fan-out directories this process has seen durably linked into their parent (one
    /// bit per `ab` and per `abcd` prefix). A directory created by someone else may not be
    /// fsync'd yet, so before relying on one the first time we fsync its parent ourselves.
    durable_l1: Bitset,
    durable_l2: Bitset,
    /// Makes temporary file names unique within the process.
    tmp_counter: AtomicU64,
}

impl BlobDir {
    /// Opens (creating if needed) `<data_dir>/blobs` and removes stale temporary files.
    pub fn open(data_dir: &Path) -> io::Result<BlobDir> {
        fs::create_dir_all(data_dir)?;
        let root = data_dir.join("blobs");
        create_durable_dir(&root)?;
        let tmp = root.join("tmp");
        create_durable_dir(&tmp)?;
        let dir = BlobDir {
            root,
            tmp,
            durable_l1: Bitset::new(256),
            durable_l2: Bitset::new(65536),
            tmp_counter: AtomicU64::new(0),
        };
        dir.remove_stale_tmp();
        Ok(dir)
    }

    /// The directory holding the fan-out directories (`<data_dir>/blobs`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `id` is (or would be) stored.
    pub fn path(&self, id: &BlobId) -> PathBuf {
        let hex = id.hex();
        self.root.join(&hex[0..2]).join(&hex[2..4]).join(hex)
    }

    /// Stores `bytes` durably under their hash and returns it. Cheap when the blob exists.
    pub fn write(&self, bytes: &[u8]) -> io::Result<BlobId> {
        let id = BlobId::of(bytes);
        let path = self.path(&id);
        let dir = self.ensure_fanout_dirs(&id)?;
        if path.try_exists()? {
            // The file may have been renamed into place by a concurrent writer that has not
            // fsync'd the directory yet; our caller is about to rely on it, so sync it here.
            sync_dir(&dir)?;
            return Ok(id);
        }

        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let tmp = self.tmp.join(format!("{}.{}.{n}.{:016x}", id, std::process::id(), rand::random::<u64>()));
        let written = (|| {
            let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(&dir)?;
        Ok(id)
    }

    /// Reads a whole blob; `NotFound` when it does not exist.
    pub fn read(&self, id: &BlobId) -> io::Result<Vec<u8>> {
        fs::read(self.path(id))
    }

    /// Opens a blob for reading and tells its size, so that a caller can choose how to read
    /// it (see [`read_open`]); `NotFound` when it does not exist.
    pub fn open_blob(&self, id: &BlobId) -> io::Result<(fs::File, u64)> {
        let file = fs::File::open(self.path(id))?;
        let len = file.metadata()?.len();
        Ok((file, len))
    }

    pub fn exists(&self, id: &BlobId) -> io::Result<bool> {
        self.path(id).try_exists()
    }

    /// Unlinks a blob; returns whether it existed. Not fsync'd: should the unlink be lost in a
    /// crash, an unreferenced file remains, which is harmless (it is picked up again by the
    /// next reference to the same content).
    pub fn remove(&self, id: &BlobId) -> io::Result<bool> {
        match fs::remove_file(self.path(id)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Makes sure `blobs/ab` and `blobs/ab/cd` exist and are durably linked; returns the
    /// latter.
    fn ensure_fanout_dirs(&self, id: &BlobId) -> io::Result<PathBuf> {
        let hex = id.hex();
        // A BlobId is 64 lower-case hex digits, so these parse.
        let l1 = usize::from_str_radix(&hex[0..2], 16).unwrap_or(0);
        let l2 = usize::from_str_radix(&hex[0..4], 16).unwrap_or(0);
        let dir1 = self.root.join(&hex[0..2]);
        let dir2 = dir1.join(&hex[2..4]);
        if !self.durable_l1.get(l1) {
            create_durable_dir(&dir1)?;
            self.durable_l1.set(l1);
        }
        if !self.durable_l2.get(l2) {
            create_durable_dir(&dir2)?;
            self.durable_l2.set(l2);
        }
        Ok(dir2)
    }

    fn remove_stale_tmp(&self) {
        let Ok(entries) = fs::read_dir(&self.tmp) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default() > STALE_TMP_AGE)
                .unwrap_or(false);
            if stale && let Err(e) = fs::remove_file(entry.path()) {
                tracing::warn!(
                    path = %entry.path().display(),
                    error = %e,
                    "cannot remove stale temporary blob"
                );
            }
        }
    }
}

/// A file found under the blob directory by [`BlobDir::scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScannedFile {
    /// A file at the place of the blob it is named after.
    Blob { id: BlobId, len: u64, modified: SystemTime },
    /// Any other file (or symbolic link) under `blobs/`, outside `tmp/`.
    Stray(PathBuf),
}

impl BlobDir {
    /// Lists every file under the blob directory except the temporaries in `tmp/`, for the
    /// consistency check. Files and directories that vanish while being listed (unlinked by a
    /// concurrent writer) are skipped.
    pub fn scan(&self) -> io::Result<Vec<ScannedFile>> {
        let mut out = Vec::new();
        let mut dirs = vec![self.root.clone()];
        while let Some(dir) = dirs.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                let path = entry.path();
                // Not following symbolic links: a link is never a blob.
                let meta = match entry.metadata() {
                    Ok(meta) => meta,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                if meta.is_dir() {
                    if path != self.tmp {
                        dirs.push(path);
                    }
                    continue;
                }
                let id = entry.file_name().to_str().and_then(BlobId::parse);
                match id {
                    Some(id) if meta.is_file() && self.path(&id) == path => {
                        let modified = meta.modified()?;
                        out.push(ScannedFile::Blob { id, len: meta.len(), modified });
                    }
                    _ => out.push(ScannedFile::Stray(path)),
                }
            }
        }
        Ok(out)
    }

    /// The id that a blob file's actual content hashes to, and its length; read in chunks, so
    /// any size is fine. `NotFound` when the file does not exist.
    pub fn hash_file(&self, id: &BlobId) -> io::Result<(BlobId, u64)> {
        let mut file = File::open(self.path(id))?;
        let mut hasher = blake3::Hasher::new();
        let len = io::copy(&mut file, &mut hasher)?;
        let hex = hasher.finalize().to_hex();
        let actual =
            BlobId::parse(&hex).ok_or_else(|| io::Error::other("BLAKE3 produced an unexpected digest"))?;
        Ok((actual, len))
    }
}

/// Creates `dir` if needed and fsyncs its parent so the entry survives a crash. The parent is
/// synced even when the directory already existed: it may have been created by a concurrent
/// writer that has not synced yet.
fn create_durable_dir(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(e) => return Err(e),
    }
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Fsyncs a directory, making renames and new entries in it durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A fixed-size set of small integers, safe to share between threads.
#[derive(Debug)]
struct Bitset(Box<[AtomicU64]>);

impl Bitset {
    fn new(bits: usize) -> Bitset {
        Bitset((0..bits.div_ceil(64)).map(|_| AtomicU64::new(0)).collect())
    }

    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w.load(Ordering::Acquire) & (1 << (i % 64)) != 0)
    }

    fn set(&self, i: usize) {
        if let Some(w) = self.0.get(i / 64) {
            w.fetch_or(1 << (i % 64), Ordering::Release);
        }
    }
}

/// Reads the whole of a file opened by [`BlobDir::open_blob`].
pub fn read_open(mut file: fs::File, len: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d).expect("read_dir").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push(path);
                }
            }
        }
        out
    }

    #[test]
    fn write_read_exists_remove() {
        let data = tempfile::tempdir().expect("tempdir");
        let blobs = BlobDir::open(data.path()).expect("open");
        let body = b"From: a@example.org\r\n\r\nhello\r\n";

        let id = blobs.write(body).expect("write");
        assert_eq!(id, BlobId::of(body));
        assert!(blobs.exists(&id).expect("exists"));
        assert_eq!(blobs.read(&id).expect("read"), body);

        assert!(blobs.remove(&id).expect("remove"));
        assert!(!blobs.exists(&id).expect("exists"));
        assert!(!blobs.remove(&id).expect("second remove"));
        assert_eq!(blobs.read(&id).expect_err("read removed").kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn layout_is_two_level_fanout() {
        let data = tempfile::tempdir().expect("tempdir");
        let blobs = BlobDir::open(data.path()).expect("open");
        let id = blobs.write(b"x").expect("write");
        let hex = id.hex();
        let expected = data.path().join("blobs").join(&hex[0..2]).join(&hex[2..4]).join(hex);
        assert_eq!(blobs.path(&id), expected);
        assert!(expected.is_file());
        assert_eq!(blobs.root(), data.path().join("blobs"));
    }

    #[test]
    fn writing_twice_keeps_one_file_and_no_temporaries() {
        let data = tempfile::tempdir().expect("tempdir");
        let blobs = BlobDir::open(data.path()).expect("open");
        let a = blobs.write(b"same body").expect("write");
        let b = blobs.write(b"same body").expect("write again");
        assert_eq!(a, b);
        let c = blobs.write(b"other body").expect("write other");
        assert_ne!(a, c);

        let files = files_under(&data.path().join("blobs"));
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files_under(&data.path().join("blobs/tmp")).is_empty());
    }

    #[test]
    fn empty_blob_is_fine() {
        let data = tempfile::tempdir().expect("tempdir");
        let blobs = BlobDir::open(data.path()).expect("open");
        let id = blobs.write(b"").expect("write");
        assert_eq!(blobs.read(&id).expect("read"), b"");
    }

    #[test]
    fn concurrent_writers_of_the_same_body_agree() {
        let data = tempfile::tempdir().expect("tempdir");
        let blobs = std::sync::Arc::new(BlobDir::open(data.path()).expect("open"));
        let body = vec![7u8; 100_000];
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let blobs = blobs.clone();
                let body = body.clone();
                std::thread::spawn(move || blobs.write(&body).expect("write"))
            })
            .collect();
        let ids: Vec<_> = handles.into_iter().map(|h| h.join().expect("join")).collect();
        assert!(ids.iter().all(|id| *id == ids[0]));
        assert_eq!(blobs.read(&ids[0]).expect("read"), body);
        assert_eq!(files_under(blobs.root()).len(), 1);
    }

    #[test]
    fn reopening_sees_existing_blobs_and_clears_stale_temporaries() {
        let data = tempfile::tempdir().expect("tempdir");
        let id = BlobDir::open(data.path()).expect("open").write(b"kept").expect("write");

        let stale = data.path().join("blobs/tmp/leftover");
        fs::write(&stale, b"partial").expect("write stale");
        let old = SystemTime::now() - 2 * STALE_TMP_AGE;
        File::options().write(true).open(&stale).and_then(|f| f.set_modified(old)).expect("age stale file");
        let fresh = data.path().join("blobs/tmp/in-progress");
        fs::write(&fresh, b"being written").expect("write fresh");

        let blobs = BlobDir::open(data.path()).expect("reopen");
        assert_eq!(blobs.read(&id).expect("read"), b"kept");
        assert!(!stale.exists(), "stale temporary removed");
        assert!(fresh.exists(), "recent temporary (maybe another process's) kept");
    }

    #[test]
    fn scan_lists_blobs_and_strays_but_not_temporaries() {
        let data = tempfile::tempdir().expect("tempdir");
        let blobs = BlobDir::open(data.path()).expect("open");
        let id = blobs.write(b"scanned").expect("write");
        fs::write(data.path().join("blobs/tmp/in-progress"), b"x").expect("temporary");
        let stray = data.path().join("blobs").join(&id.hex()[0..2]).join("notes.txt");
        fs::write(&stray, b"x").expect("stray");
        // A real blob name at the wrong place is stray too.
        let misplaced = data.path().join("blobs").join(id.hex());
        fs::write(&misplaced, b"scanned").expect("misplaced");

        let mut found = blobs.scan().expect("scan");
        found.sort_by_key(|f| format!("{f:?}"));
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found.contains(&ScannedFile::Stray(stray)));
        assert!(found.contains(&ScannedFile::Stray(misplaced)));
        assert!(found.iter().any(|f| matches!(f, ScannedFile::Blob { id: i, len: 7, .. } if *i == id)));

        assert_eq!(blobs.hash_file(&id).expect("hash"), (id.clone(), 7));
        fs::write(blobs.path(&id), b"scanneD").expect("corrupt");
        assert_eq!(blobs.hash_file(&id).expect("hash"), (BlobId::of(b"scanneD"), 7));
        blobs.remove(&id).expect("remove");
        assert_eq!(blobs.hash_file(&id).expect_err("gone").kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn bitset() {
        let s = Bitset::new(65536);
        assert!(!s.get(0) && !s.get(65535));
        s.set(0);
        s.set(65535);
        s.set(64);
        assert!(s.get(0) && s.get(65535) && s.get(64));
        assert!(!s.get(1) && !s.get(63) && !s.get(65));
        // Out of range is simply absent.
        s.set(70000);
        assert!(!s.get(70000));
    }
}
