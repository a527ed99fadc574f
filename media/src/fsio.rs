//! Atomic file output: checks on the output path, a temporary name in the same directory,
//! fsync, rename, fsync of the directory, and removal of temporaries on every failure path.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::EncodeError;

/// A checked output path: `out` lies in the existing directory `dir` under `name`.
#[derive(Debug, Clone)]
pub(crate) struct OutputTarget {
    pub out: PathBuf,
    pub dir: PathBuf,
    name: OsString,
}

impl OutputTarget {
    /// Checks that `out` names a file (not a directory) in an existing directory.
    /// Writability is checked when the first temporary file is created.
    pub fn check(out: &Path) -> Result<Self, EncodeError> {
        if out.is_dir() {
            return Err(EncodeError::OutputIsDirectory {
                path: out.to_path_buf(),
            });
        }
        let Some(name) = out.file_name() else {
            return Err(EncodeError::OutputDir {
                dir: out.to_path_buf(),
                reason: "the output path does not end in a file name".to_owned(),
            });
        };
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        match fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(EncodeError::OutputDir {
                    dir,
                    reason: "it is not a directory".to_owned(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(EncodeError::OutputDir {
                    dir,
                    reason: "the directory does not exist (create it first)".to_owned(),
                });
            }
            Err(e) => {
                return Err(EncodeError::OutputDir {
                    dir,
                    reason: e.to_string(),
                });
            }
        }
        Ok(OutputTarget {
            out: out.to_path_buf(),
            dir,
            name: name.to_os_string(),
        })
    }

    /// A fresh hidden name next to the output: `.<name>.<tag>-<pid>-<n>`.
    pub fn temp_path(&self, tag: &str) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut file = OsString::from(".");
        file.push(&self.name);
        file.push(format!(".{tag}-{}-{n}", std::process::id()));
        self.dir.join(file)
    }

    /// Creates `path` (which must not exist); a read-only or unwritable directory becomes
    /// [`EncodeError::OutputDir`].
    pub fn create_temp(&self, path: &Path) -> Result<File, EncodeError> {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                    EncodeError::OutputDir {
                        dir: self.dir.clone(),
                        reason: format!("it is not writable: {e}"),
                    }
                }
                _ => EncodeError::io("create", path, e),
            })
    }

    /// Makes the finished temporary file durable and moves it to the output:
    /// fsync the file, rename, fsync the directory. Returns the file's size.
    pub fn commit(&self, temp: &Path) -> Result<u64, EncodeError> {
        let file = File::open(temp).map_err(|e| EncodeError::io("open", temp, e))?;
        file.sync_all()
            .map_err(|e| EncodeError::io("sync", temp, e))?;
        let bytes = file
            .metadata()
            .map_err(|e| EncodeError::io("stat", temp, e))?
            .len();
        drop(file);
        fs::rename(temp, &self.out).map_err(|e| EncodeError::io("rename", temp, e))?;
        if let Err(e) = sync_dir(&self.dir) {
            // An error must leave nothing at the output, even one this late.
            let _ = fs::remove_file(&self.out);
            return Err(e);
        }
        Ok(bytes)
    }
}

/// The temporary-name tags this crate uses (see [`OutputTarget::temp_path`]).
pub(crate) const TEMP_TAGS: [&str; 2] = ["partial", "faststart"];

/// Removes temporary files left in `dir` by encoders or poster writes of processes that are no
/// longer running (a crash, a power cut); returns the paths removed.
///
/// Only hidden files named like this crate's temporaries (`.<name>.partial-<pid>-<n>`,
/// `.<name>.faststart-<pid>-<n>`) whose process is gone are touched. Call it at start-up on
/// each directory videos and posters are written to.
pub fn remove_stale_temporaries(dir: &Path) -> Result<Vec<PathBuf>, EncodeError> {
    let mut removed = Vec::new();
    let read = fs::read_dir(dir).map_err(|e| EncodeError::io("read directory", dir, e))?;
    for entry in read {
        let entry = entry.map_err(|e| EncodeError::io("read directory", dir, e))?;
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temporary_owner) else {
            continue;
        };
        if process_alive(pid) {
            continue;
        }
        let path = entry.path();
        match fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(EncodeError::io("remove", path, e)),
        }
    }
    if !removed.is_empty() {
        tracing::info!(dir = %dir.display(), count = removed.len(), "removed stale temporary files");
    }
    Ok(removed)
}

/// The pid in a temporary's name `.<name>.<tag>-<pid>-<n>`, if it is one.
fn temporary_owner(name: &str) -> Option<u32> {
    if !name.starts_with('.') {
        return None;
    }
    let (rest, n) = name.rsplit_once('-')?;
    let (rest, pid) = rest.rsplit_once('-')?;
    let (head, tag) = rest.rsplit_once('.')?;
    // `head` is "." plus the output's name, which is never empty.
    if head.len() < 2
        || !TEMP_TAGS.contains(&tag)
        || n.is_empty()
        || !n.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` exists; when /proc cannot tell, assume it does.
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

/// fsync a directory so a rename in it survives a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), EncodeError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| EncodeError::io("sync directory", dir, e))
}

/// Temporary files that are removed when the guard drops, unless released.
#[derive(Debug, Default)]
pub(crate) struct TempFiles {
    paths: Vec<PathBuf>,
}

impl TempFiles {
    /// Removes `path` when this guard drops.
    pub fn track(&mut self, path: PathBuf) {
        self.paths.push(path);
    }

    /// Stops tracking `path` (it was renamed into place).
    pub fn release(&mut self, path: &Path) {
        self.paths.retain(|p| p != path);
    }
}

impl Drop for TempFiles {
    fn drop(&mut self) {
        for path in self.paths.drain(..) {
            match fs::remove_file(&path) {
                Ok(()) => tracing::debug!(path = %path.display(), "removed temporary file"),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove temporary file")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::temporary_owner;

    #[test]
    fn recognises_only_our_temporary_names() {
        assert_eq!(temporary_owner(".v.mp4.partial-123-0"), Some(123));
        assert_eq!(temporary_owner(".a-b.mp4.faststart-7-12"), Some(7));
        assert_eq!(temporary_owner("v.mp4.partial-123-0"), None);
        assert_eq!(temporary_owner(".v.mp4.tmp-123-0"), None);
        assert_eq!(temporary_owner(".v.mp4.partial-x-0"), None);
        assert_eq!(temporary_owner(".v.mp4.partial-1-"), None);
        assert_eq!(temporary_owner(".partial-1-2"), None);
    }
}
