//! The on-disk capabilities cache: one JSON file per binary, valid while
//! the binary's path, size and modification time are unchanged (and the
//! cache format is this version's).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use virtkit_core::{Error, Result, files};

use super::QemuCaps;
use super::probe::probe;

/// Bumped whenever what is cached changes meaning.
/// 2: libvirt-named flags for option syntaxes and properties (`probe::VERSION_FLAGS`).
const FORMAT: u32 = 2;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, Clone)]
struct Key {
    format: u32,
    path: PathBuf,
    size: u64,
    mtime_ns: u128,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    key: Key,
    caps: QemuCaps,
}

fn key_of(binary: &Path) -> Result<Key> {
    let md = std::fs::metadata(binary)
        .map_err(|e| Error::system(format_args!("cannot stat {}", binary.display()), &e))?;
    let mtime_ns = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(Key {
        format: FORMAT,
        path: binary.to_path_buf(),
        size: md.len(),
        mtime_ns,
    })
}

fn file_name(binary: &Path) -> String {
    // Stable, readable and unique enough: the path with '/' replaced.
    let s = binary
        .to_string_lossy()
        .trim_start_matches('/')
        .replace('/', "_");
    format!("{s}.json")
}

/// Capabilities per binary, in memory and under `dir`.
#[derive(Debug)]
pub struct CapsCache {
    dir: PathBuf,
    mem: Mutex<HashMap<PathBuf, (Key, Arc<QemuCaps>)>>,
}

impl CapsCache {
    /// A cache stored under `dir`.
    pub fn new(dir: PathBuf) -> CapsCache {
        CapsCache {
            dir,
            mem: Mutex::new(HashMap::new()),
        }
    }

    /// The capabilities of `binary`: from memory, from disk, or probed.
    pub async fn get(&self, binary: &Path) -> Result<Arc<QemuCaps>> {
        let key = key_of(binary)?;
        if let Some((k, c)) = self.mem.lock().ok().and_then(|m| m.get(binary).cloned())
            && k == key
        {
            return Ok(c);
        }
        let file = self.dir.join(file_name(binary));
        if let Ok(bytes) = std::fs::read(&file)
            && let Ok(entry) = serde_json::from_slice::<Entry>(&bytes)
            && entry.key == key
        {
            return Ok(self.remember(binary, key, entry.caps));
        }
        let caps = probe(binary, &self.dir).await?;
        let entry = Entry {
            key: key.clone(),
            caps,
        };
        if let Ok(json) = serde_json::to_vec(&entry) {
            // A cache that cannot be written only costs a probe next time.
            let _ = std::fs::create_dir_all(&self.dir);
            let _ = files::write_atomic(&file, &json);
        }
        Ok(self.remember(binary, key, entry.caps))
    }

    fn remember(&self, binary: &Path, key: Key, caps: QemuCaps) -> Arc<QemuCaps> {
        let caps = Arc::new(caps);
        if let Ok(mut m) = self.mem.lock() {
            m.insert(binary.to_path_buf(), (key, caps.clone()));
        }
        caps
    }
}
