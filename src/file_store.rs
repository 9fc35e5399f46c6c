//! [`FileStateStore`]: every destination's state in one JSON file, for a CLI or a small host.
//!
//! ```json
//! {
//!   "format": 1,
//!   "destinations": {
//!     "og-primary": {"version": 3, "state": {"high_water": "2026-12-15T08:00:00Z", "ledger": [], "last_run": null}}
//!   },
//!   "connections": {"connections": []}
//! }
//! ```
//!
//! - **Atomic writes.** The new file is written to a temporary file in the same folder, synced
//!   (`fsync`), renamed over the old one, and the folder is synced, so a crash leaves the old file
//!   or the new one, never a mix.
//! - **Compare-and-swap across processes.** Every read-compare-write holds an exclusive lock: a
//!   lock file beside the state file (`<file>.lock`), created with `create_new` (an atomic
//!   create-if-absent on every platform and file system the standard library supports, with no new
//!   crate and no advisory-lock semantics that differ between Unix and Windows or vanish on network
//!   file systems). A process waits for the lock for a bounded time ([`DEFAULT_LOCK_WAIT`]) and then
//!   fails with [`Error::Transient`]. The lock is held for milliseconds, so a lock file older than
//!   [`DEFAULT_STALE_AFTER`] was left by a process that died: it is broken (renamed away, and
//!   checked to be the same lock that was judged stale). A holder checks that the lock is still its
//!   own right before it renames the new file into place. Within one process a mutex orders the
//!   callers, so threads do not poll the lock file against each other.
//! - **Nothing is silently replaced.** A file that is not JSON, has an unknown `format`, or holds a
//!   destination entry that does not parse is [`Error::CorruptState`] naming the file (and the
//!   destination); it is never emptied or overwritten: saves to other destinations keep the
//!   unreadable entry exactly as it is. A missing file is an empty store, created on the first save.
//! - **Blocking IO.** Each call does a few small file operations on the calling thread (it
//!   never awaits), which takes milliseconds; a host on an async runtime with many destinations may
//!   prefer a database ([`crate::StateStore`] for PostgreSQL and others).
//!
//! The file also keeps the host's [`ConnectionRegistry`] ([`FileStateStore::load_connections`],
//! [`FileStateStore::update_connections`]), so that a connection whose key proved read-only is
//! remembered between runs. No key is ever written: the registry holds references to keys only.
//!
//! ```no_run
//! use oncall_sync::{DestinationId, FileStateStore, StateStore};
//! # async fn demo() -> Result<(), oncall_sync::Error> {
//! let store = FileStateStore::new("oncall-state.json");
//! let loaded = store.load(&DestinationId("og-primary".into())).await?;
//! println!("version {}, mark {:?}", loaded.version, loaded.value.high_water);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use oncall_core::{
    ConnectionRegistry, DestinationId, DestinationState, Error, StateStore, Versioned,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The file format this release reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// How long a call waits for another process's lock before it gives up.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10);

/// How old a lock file must be before it is taken for the leftover of a process that died.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(30);

/// Destination states (and the host's connection registry) in one JSON file. See the
/// [module docs](self).
#[derive(Debug)]
pub struct FileStateStore {
    path: PathBuf,
    lock_path: PathBuf,
    lock_wait: Duration,
    stale_after: Duration,
    /// Orders this process's callers; the lock file orders processes.
    in_process: Mutex<()>,
}

/// The file's top level. Destination entries stay raw JSON until one is asked for, so that an
/// unreadable entry is reported for its destination and written back untouched.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Document {
    format: u64,
    #[serde(default)]
    destinations: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connections: Option<Value>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    version: u64,
    state: DestinationState,
}

impl FileStateStore {
    /// A store kept in the file at `path`. Nothing is read or created until the first call.
    pub fn new(path: impl Into<PathBuf>) -> FileStateStore {
        let path = path.into();
        let mut lock = path.clone().into_os_string();
        lock.push(".lock");
        FileStateStore {
            path,
            lock_path: PathBuf::from(lock),
            lock_wait: DEFAULT_LOCK_WAIT,
            stale_after: DEFAULT_STALE_AFTER,
            in_process: Mutex::new(()),
        }
    }

    /// How long a call waits for another process's lock (default [`DEFAULT_LOCK_WAIT`]).
    pub fn with_lock_wait(mut self, wait: Duration) -> FileStateStore {
        self.lock_wait = wait;
        self
    }

    /// How old a lock file must be to count as left by a dead process (default
    /// [`DEFAULT_STALE_AFTER`]). Keep it well above the time one call takes.
    pub fn with_stale_after(mut self, stale_after: Duration) -> FileStateStore {
        self.stale_after = stale_after;
        self
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock file beside it.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// The host's connection registry as last saved (empty when none was).
    pub fn load_connections(&self) -> Result<ConnectionRegistry, Error> {
        let document = self.read()?;
        self.registry_of(&document)
    }

    /// Changes the connection registry under the lock, and saves it (creating the file if needed).
    pub fn update_connections(
        &self,
        change: impl FnOnce(&mut ConnectionRegistry),
    ) -> Result<(), Error> {
        self.locked(|document| {
            let mut registry = self.registry_of(document)?;
            change(&mut registry);
            document.connections = Some(serde_json::to_value(&registry).map_err(|e| {
                self.corrupt(format!("the connection registry cannot be written: {e}"))
            })?);
            Ok(((), true))
        })
    }

    fn registry_of(&self, document: &Document) -> Result<ConnectionRegistry, Error> {
        match &document.connections {
            None => Ok(ConnectionRegistry::new()),
            Some(value) => ConnectionRegistry::deserialize(value)
                .map_err(|e| self.corrupt(format!("connections: {e}"))),
        }
    }

    fn corrupt(&self, what: impl std::fmt::Display) -> Error {
        Error::CorruptState {
            message: format!("state file {}: {what}", self.path.display()),
        }
    }

    fn io(&self, doing: &str, path: &Path, e: std::io::Error) -> Error {
        Error::Transient {
            message: format!(
                "state file {}: cannot {doing} {}: {e}",
                self.path.display(),
                path.display()
            ),
        }
    }

    /// The document on disk; an empty one when the file does not exist.
    fn read(&self) -> Result<Document, Error> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Ok(Document {
                    format: FORMAT_VERSION,
                    ..Document::default()
                })
            }
            Err(e) => return Err(self.io("read", &self.path, e)),
        };
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| self.corrupt(format!("not valid JSON: {e}")))?;
        match value.get("format").and_then(Value::as_u64) {
            Some(FORMAT_VERSION) => {}
            Some(other) => {
                return Err(self.corrupt(format!(
                "format version {other} is unknown to this release, which reads {FORMAT_VERSION}"
            )))
            }
            None => return Err(self.corrupt("no format version: not a state file")),
        }
        serde_json::from_value(value).map_err(|e| self.corrupt(e))
    }

    /// The entry of `destination`: version 0 and the default state when absent.
    fn entry(
        &self,
        document: &Document,
        destination: &DestinationId,
    ) -> Result<Versioned<DestinationState>, Error> {
        let Some(raw) = document.destinations.get(&destination.0) else {
            return Ok(Versioned {
                version: 0,
                value: DestinationState::default(),
            });
        };
        let entry = Entry::deserialize(raw)
            .map_err(|e| self.corrupt(format!("destination {destination}: {e}")))?;
        Ok(Versioned {
            version: entry.version,
            value: entry.state,
        })
    }

    /// Runs `change` on the document under the lock; writes the document back when it says so.
    fn locked<T>(
        &self,
        change: impl FnOnce(&mut Document) -> Result<(T, bool), Error>,
    ) -> Result<T, Error> {
        let _in_process = self.in_process.lock().unwrap_or_else(|e| e.into_inner());
        let lock = self.acquire()?;
        let mut document = self.read()?;
        let (result, write) = change(&mut document)?;
        if write {
            self.write(&document, &lock)?;
        }
        Ok(result)
    }

    /// Writes the document atomically: temporary file, fsync, rename, fsync of the folder.
    fn write(&self, document: &Document, lock: &LockFile) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(document)
            .map_err(|e| self.corrupt(format!("cannot be written: {e}")))?;
        let folder = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = self
            .path
            .file_name()
            .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
        let temporary = folder.join(format!(".{name}.{}.tmp", unique_token()));
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temporary)?;
            file.write_all(&bytes)?;
            file.write_all(b"\n")?;
            file.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temporary);
            return Err(self.io("write", &temporary, e));
        }
        if !lock.still_held() {
            let _ = fs::remove_file(&temporary);
            return Err(Error::Conflict {
                message: format!(
                    "state file {}: the lock {} was taken over while this process held it (held \
                     longer than {} s?): nothing was written",
                    self.path.display(),
                    self.lock_path.display(),
                    self.stale_after.as_secs()
                ),
            });
        }
        if let Err(e) = fs::rename(&temporary, &self.path) {
            let _ = fs::remove_file(&temporary);
            return Err(self.io("rename into place", &temporary, e));
        }
        sync_folder(&folder).map_err(|e| self.io("sync the folder", &folder, e))
    }

    /// Takes the lock file, waiting up to the lock wait; breaks a stale one.
    fn acquire(&self) -> Result<LockFile, Error> {
        let deadline = Instant::now() + self.lock_wait;
        let mut pause = Duration::from_millis(1);
        loop {
            let token = unique_token();
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&self.lock_path)
            {
                Ok(mut file) => {
                    let written = file
                        .write_all(token.as_bytes())
                        .and_then(|()| file.sync_all());
                    let lock = LockFile {
                        path: self.lock_path.clone(),
                        token,
                    };
                    return match written {
                        Ok(()) => Ok(lock),
                        Err(e) => Err(self.io("write the lock file", &self.lock_path, e)),
                    };
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    if self.break_if_stale() {
                        continue;
                    }
                    if Instant::now() >= deadline {
                        return Err(Error::Transient {
                            message: format!(
                                "state file {}: another process holds the lock {} (waited {} ms); \
                                 if no other process is running, the lock is taken for stale after \
                                 {} s",
                                self.path.display(),
                                self.lock_path.display(),
                                self.lock_wait.as_millis(),
                                self.stale_after.as_secs()
                            ),
                        });
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => return Err(self.io("create the lock file", &self.lock_path, e)),
            }
        }
    }

    /// Breaks the lock file if it is older than the stale age: renames it away, and checks that
    /// what was renamed is the lock judged stale (if another process took the lock in between, it
    /// is put back). Returns whether the lock file is gone.
    fn break_if_stale(&self) -> bool {
        // The token first, then the age: if another process replaced the lock in between, the age
        // read is the new lock's (fresh: nothing is broken); if it replaces it after, the token
        // renamed aside is not the one judged, and it is put back.
        let judged = match fs::read(&self.lock_path) {
            Ok(judged) => judged,
            // Released meanwhile: try again at once.
            Err(e) => return e.kind() == ErrorKind::NotFound,
        };
        let metadata = match fs::metadata(&self.lock_path) {
            Ok(metadata) => metadata,
            Err(e) => return e.kind() == ErrorKind::NotFound,
        };
        let age = metadata
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok());
        if age.is_none_or(|age| age < self.stale_after) {
            return false;
        }
        let mut aside = self.lock_path.clone().into_os_string();
        aside.push(format!(".stale-{}", unique_token()));
        let aside = PathBuf::from(aside);
        if let Err(e) = fs::rename(&self.lock_path, &aside) {
            // Gone: someone else broke or released it first.
            return e.kind() == ErrorKind::NotFound;
        }
        if fs::read(&aside).is_ok_and(|taken| taken != judged) {
            // A live lock was renamed: restore it unless yet another process holds the lock now.
            let _ = fs::hard_link(&aside, &self.lock_path);
        }
        let _ = fs::remove_file(&aside);
        true
    }
}

/// A held lock file; removed on drop if it is still ours.
struct LockFile {
    path: PathBuf,
    token: String,
}

impl LockFile {
    fn still_held(&self) -> bool {
        fs::read(&self.path).is_ok_and(|content| content == self.token.as_bytes())
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        if self.still_held() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Unique across processes and calls: the process id, the time and a counter.
fn unique_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Makes a rename durable: fsync of the folder (on Unix; elsewhere a folder cannot be opened).
fn sync_folder(folder: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(folder)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = folder;
        Ok(())
    }
}

fn conflict(destination: &DestinationId, current: u64, expected: u64) -> Error {
    Error::Conflict {
        message: format!(
            "state of destination {destination} is at version {current}, not {expected}: another \
             sync saved first"
        ),
    }
}

#[async_trait]
impl StateStore for FileStateStore {
    async fn load(
        &self,
        destination: &DestinationId,
    ) -> Result<Versioned<DestinationState>, Error> {
        let _in_process = self.in_process.lock().unwrap_or_else(|e| e.into_inner());
        // The rename is atomic: a read without the lock sees the old file or the new one.
        let document = self.read()?;
        self.entry(&document, destination)
    }

    async fn save(
        &self,
        destination: &DestinationId,
        expected: u64,
        state: &DestinationState,
    ) -> Result<u64, Error> {
        self.locked(|document| {
            let current = self.entry(document, destination)?.version;
            if current != expected {
                return Err(conflict(destination, current, expected));
            }
            let version = current + 1;
            let entry = Entry {
                version,
                state: state.clone(),
            };
            let raw = serde_json::to_value(&entry).map_err(|e| {
                self.corrupt(format!("destination {destination} cannot be written: {e}"))
            })?;
            document.destinations.insert(destination.0.clone(), raw);
            Ok((version, true))
        })
    }

    async fn remove(&self, destination: &DestinationId, expected: u64) -> Result<(), Error> {
        self.locked(|document| {
            let current = self.entry(document, destination)?.version;
            if current != expected {
                return Err(conflict(destination, current, expected));
            }
            let removed = document.destinations.remove(&destination.0).is_some();
            Ok(((), removed))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    use oncall_core::testkit::store_conformance::{self, sample_state};

    use super::*;

    /// A fresh folder under the target directory's temporary space, unique per test.
    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("oncall-file-store-{name}-{}", unique_token()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn d(name: &str) -> DestinationId {
        DestinationId(name.into())
    }

    /// Makes one destination's entry unreadable, as a damaged or hand-edited file would be.
    fn corrupt_entry(path: &Path, destination: &DestinationId) -> bool {
        let mut value: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        value["destinations"][&destination.0]["state"] = Value::String("garbage".into());
        fs::write(path, serde_json::to_vec(&value).unwrap()).unwrap();
        true
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn passes_the_store_conformance_suite() {
        let path = folder("conformance").join("state.json");
        let store = FileStateStore::new(&path);
        store_conformance::run_all(&store, "file", |dest| corrupt_entry(&path, dest)).await;
        // And again on the same file, with other destinations in it.
        store_conformance::run_all(&store, "again", |dest| corrupt_entry(&path, dest)).await;
        assert!(!store.lock_path().exists(), "the lock is released");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_savers_on_threads_with_separate_stores_one_wins() {
        // Separate store values on one file: only the lock file orders them.
        let path = folder("threads").join("state.json");
        let first = FileStateStore::new(&path);
        let v = first.save(&d("x"), 0, &sample_state(1)).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let path = path.clone();
            tasks.push(tokio::spawn(async move {
                FileStateStore::new(path)
                    .save(&d("x"), v, &sample_state(10 + i))
                    .await
                    .map(|_| i)
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(i) => winners.push(i),
                Err(Error::Conflict { .. }) => {}
                Err(e) => panic!("a loser gets Conflict, got {e:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one wins: {winners:?}");
        let loaded = first.load(&d("x")).await.unwrap();
        assert_eq!(
            (loaded.version, loaded.value),
            (v + 1, sample_state(10 + winners[0]))
        );
    }

    #[test]
    fn a_missing_file_is_empty_and_created_on_the_first_save_only() {
        let path = folder("missing").join("state.json");
        let store = FileStateStore::new(&path);
        let loaded = block_on(store.load(&d("a"))).unwrap();
        assert_eq!(loaded.version, 0);
        assert!(block_on(store.remove(&d("a"), 0)).is_ok());
        assert!(store.load_connections().unwrap().list().is_empty());
        assert!(!path.exists(), "reading and a no-op remove create nothing");
        block_on(store.save(&d("a"), 0, &sample_state(1))).unwrap();
        let on_disk: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(on_disk["format"], 1);
        assert_eq!(on_disk["destinations"]["a"]["version"], 1);
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers,
            [std::ffi::OsString::from("state.json")],
            "no temporary or lock file left"
        );
    }

    #[test]
    fn a_corrupt_or_unknown_file_is_an_error_naming_it_and_is_never_replaced() {
        let dir = folder("corrupt");
        let cases: [(&str, &[u8], &str); 4] = [
            (
                "truncated.json",
                b"{\"format\": 1, \"destinations\": {",
                "not valid JSON",
            ),
            (
                "future.json",
                b"{\"format\": 2, \"destinations\": {}}",
                "format version 2 is unknown",
            ),
            ("other.json", b"[1, 2, 3]", "no format version"),
            (
                "shape.json",
                b"{\"format\": 1, \"destinations\": [1]}",
                "invalid type",
            ),
        ];
        for (name, bytes, expect) in cases {
            let path = dir.join(name);
            fs::write(&path, bytes).unwrap();
            let store = FileStateStore::new(&path);
            for result in [
                block_on(store.load(&d("a"))).map(|_| ()),
                block_on(store.save(&d("a"), 0, &sample_state(1))).map(|_| ()),
                block_on(store.remove(&d("a"), 0)),
                store.update_connections(|_| {}),
            ] {
                match result {
                    Err(Error::CorruptState { message }) => {
                        assert!(message.contains(name), "names the file: {message}");
                        assert!(message.contains(expect), "{expect:?} in {message}");
                    }
                    other => panic!("{name}: expected CorruptState, got {other:?}"),
                }
            }
            assert_eq!(
                fs::read(&path).unwrap(),
                bytes,
                "{name} is left exactly as it was"
            );
        }
    }

    #[test]
    fn a_corrupt_entry_is_kept_while_others_are_saved() {
        let path = folder("entry").join("state.json");
        let store = FileStateStore::new(&path);
        block_on(store.save(&d("bad"), 0, &sample_state(1))).unwrap();
        corrupt_entry(&path, &d("bad"));
        block_on(store.save(&d("good"), 0, &sample_state(2))).unwrap();
        let err = block_on(store.save(&d("bad"), 1, &sample_state(3))).unwrap_err();
        assert!(
            matches!(&err, Error::CorruptState { message } if message.contains("destination bad")),
            "{err:?}"
        );
        let on_disk: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            on_disk["destinations"]["bad"]["state"], "garbage",
            "kept as it was"
        );
        assert_eq!(
            block_on(store.load(&d("good"))).unwrap().value,
            sample_state(2)
        );
    }

    #[test]
    fn the_connection_registry_is_kept_beside_the_states() {
        use oncall_core::{Connection, ConnectionId, Endpoint, KeyReference, ProviderKind};
        let path = folder("registry").join("state.json");
        let store = FileStateStore::new(&path);
        store
            .update_connections(|r| {
                r.add(Connection::new(
                    ConnectionId("og".into()),
                    ProviderKind::Opsgenie,
                    KeyReference::EnvVar("OG_KEY".into()),
                    Endpoint::Eu,
                ))
                .unwrap();
            })
            .unwrap();
        block_on(store.save(&d("a"), 0, &sample_state(1))).unwrap();
        let registry = FileStateStore::new(&path).load_connections().unwrap();
        assert_eq!(registry.list().len(), 1);
        assert_eq!(
            registry.list()[0].key,
            KeyReference::EnvVar("OG_KEY".into())
        );
        assert_eq!(block_on(store.load(&d("a"))).unwrap().version, 1);
    }

    #[test]
    fn a_held_lock_makes_callers_wait_a_bounded_time_and_a_stale_one_is_broken() {
        let path = folder("lock").join("state.json");
        let store = FileStateStore::new(&path)
            .with_lock_wait(Duration::from_millis(100))
            .with_stale_after(Duration::from_secs(30));
        // A live holder: the save waits, then gives up without writing.
        fs::write(store.lock_path(), "another process").unwrap();
        let started = Instant::now();
        let err = block_on(store.save(&d("a"), 0, &sample_state(1))).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert!(
            matches!(&err, Error::Transient { message } if message.contains("state.json.lock")),
            "{err:?}"
        );
        assert!(!path.exists());
        assert_eq!(
            fs::read(store.lock_path()).unwrap(),
            b"another process",
            "not broken"
        );
        // The holder died a minute ago: its lock is broken and the save goes through.
        let lock = File::options().write(true).open(store.lock_path()).unwrap();
        lock.set_modified(SystemTime::now() - Duration::from_secs(60))
            .unwrap();
        drop(lock);
        assert_eq!(block_on(store.save(&d("a"), 0, &sample_state(1))), Ok(1));
        assert!(!store.lock_path().exists());
    }

    const RACE_FILE: &str = "ONCALL_FILE_STORE_RACE_FILE";
    const RACE_NAME: &str = "ONCALL_FILE_STORE_RACE_NAME";

    /// One racer of [`two_processes_race_on_one_file_and_exactly_one_wins`], run in a child
    /// process of this test binary: loads, says it is ready, waits for the start, saves.
    #[test]
    #[ignore = "a child process of two_processes_race_on_one_file_and_exactly_one_wins"]
    fn race_child() {
        let path = PathBuf::from(std::env::var(RACE_FILE).expect("run by the race test"));
        let name: u32 = std::env::var(RACE_NAME).unwrap().parse().unwrap();
        let store = FileStateStore::new(&path);
        let version = block_on(store.load(&d("raced"))).unwrap().version;
        fs::write(path.with_extension(format!("ready-{name}")), b"").unwrap();
        let go = path.with_extension("go");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !go.exists() {
            assert!(Instant::now() < deadline, "the race never started");
            std::thread::sleep(Duration::from_millis(1));
        }
        match block_on(store.save(&d("raced"), version, &sample_state(name))) {
            Ok(v) => println!("RACE-RESULT won {v}"),
            Err(Error::Conflict { .. }) => println!("RACE-RESULT lost"),
            Err(e) => println!("RACE-RESULT error {e}"),
        }
    }

    #[test]
    fn two_processes_race_on_one_file_and_exactly_one_wins() {
        const RACERS: u32 = 3;
        let exe = std::env::current_exe().unwrap();
        for round in 0..3u32 {
            let path = folder("race").join("state.json");
            let store = FileStateStore::new(&path);
            block_on(store.save(&d("raced"), 0, &sample_state(99))).unwrap();
            let children: Vec<_> = (0..RACERS)
                .map(|i| {
                    Command::new(&exe)
                        .args([
                            "--exact",
                            "file_store::tests::race_child",
                            "--ignored",
                            "--nocapture",
                        ])
                        .env(RACE_FILE, &path)
                        .env(RACE_NAME, (round * 10 + i).to_string())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            let deadline = Instant::now() + Duration::from_secs(20);
            while (0..RACERS).any(|i| {
                !path
                    .with_extension(format!("ready-{}", round * 10 + i))
                    .exists()
            }) {
                assert!(Instant::now() < deadline, "the racers never got ready");
                std::thread::sleep(Duration::from_millis(1));
            }
            fs::write(path.with_extension("go"), b"").unwrap();
            let mut winners = Vec::new();
            for (i, child) in children.into_iter().enumerate() {
                let out = child.wait_with_output().unwrap();
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "racer {i}: {stdout}{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let result = stdout
                    .lines()
                    .find_map(|l| l.strip_prefix("RACE-RESULT "))
                    .unwrap_or_else(|| panic!("racer {i} said nothing: {stdout}"));
                match result {
                    "won 2" => winners.push(round * 10 + i as u32),
                    "lost" => {}
                    other => panic!("racer {i}: {other}"),
                }
            }
            assert_eq!(
                winners.len(),
                1,
                "round {round}: exactly one process wins: {winners:?}"
            );
            let loaded = block_on(store.load(&d("raced"))).unwrap();
            assert_eq!(
                (loaded.version, loaded.value),
                (2, sample_state(winners[0]))
            );
        }
    }
}
