//! File helpers shared by drivers and tools: bounded reads of user files and
//! atomic writes of state.

use std::io::{self, Read, Write};
use std::path::Path;

/// Largest XML document virtkit reads (libvirt's limit too).
pub const MAX_XML_FILE: u64 = 10 * 1024 * 1024;

/// Reads a whole file of at most `max` bytes. A larger file is an `InvalidData` error naming
/// the limit.
pub fn read_limited(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let f = std::fs::File::open(path)?;
    // Most XML files are small: one read fills this, the next sees the end,
    // without asking for the size first.
    let mut buf = Vec::with_capacity(16 * 1024);
    f.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(too_big(max));
    }
    Ok(buf)
}

fn too_big(max: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("file is larger than the limit of {max} bytes"),
    )
}

/// Writes `data` to `path` atomically: a temporary file in the same
/// directory, fsync, rename, then fsync of the directory. Readers see the old
/// or the new content, never a mix; a crash leaves at most a stray
/// temporary file.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_read_and_atomic_write() {
        let dir = std::env::temp_dir().join(format!("vk-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.xml");
        write_atomic(&p, b"<a/>").unwrap();
        write_atomic(&p, b"<b/>").unwrap();
        assert_eq!(read_limited(&p, 100).unwrap(), b"<b/>");
        let e = read_limited(&p, 3).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary left"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
