//! The pidfile lock: an exclusive `flock` held for the daemon's life, so a
//! second daemon on the same state directory refuses to start instead of
//! stealing its sockets.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    /// Another daemon holds it.
    #[error("another virtkitd (pid {pid}) is already using '{}'; stop it or use another --root", path.display())]
    Busy {
        /// The pidfile.
        path: PathBuf,
        /// What it says.
        pid: String,
    },
    /// It cannot be created or written.
    #[error("cannot use pidfile '{}': {source}", path.display())]
    Io {
        /// The pidfile.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A held pidfile lock; removed on drop.
#[derive(Debug)]
pub struct PidFile {
    file: File,
    path: PathBuf,
}

/// `flock(fd, LOCK_EX | LOCK_NB)`: whether the lock was taken.
fn try_lock(file: &File) -> std::io::Result<bool> {
    // SAFETY: the descriptor belongs to `file`, which outlives the call;
    // flock has no memory effects.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

impl PidFile {
    /// Takes the lock and writes our pid.
    pub fn acquire(path: &Path) -> Result<PidFile, PidFileError> {
        let io = |source| PidFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map_err(io)?;
        if !try_lock(&file).map_err(io)? {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(PidFileError::Busy {
                path: path.to_path_buf(),
                pid: pid.trim().to_string(),
            });
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(PidFile {
            file,
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Unlink before the lock goes with the descriptor.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.flush();
    }
}
