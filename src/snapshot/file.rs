//! Replacing a file atomically: write a temporary file beside it, sync it, rename it over
//! the old one, sync the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::Path;

/// `error` with the step and the path that failed, for a message that says both.
fn context(step: &str, path: &Path, error: io::Error) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("could not {step} {}: {error}", path.display()),
    )
}

/// Replaces the file at `path` with what `write` writes, **atomically**: readers of
/// `path` and a crash at any point see either the old file or the new one, complete.
///
/// `write` writes into a new temporary file in the same directory (named after `path`,
/// starting with a dot); the file is flushed and synced to disk (`fsync`), renamed over
/// `path`, and the directory is synced so that the rename itself survives a crash (on
/// Unix; elsewhere the rename is as durable as the platform makes it). If `write` or any
/// step fails, the temporary file is removed and `path` is left as it was. Two writers
/// of the same path at once each replace it whole; the last rename wins.
///
/// [`Store::snapshot_to_file`](crate::Store::snapshot_to_file) writes a snapshot with it.
///
/// # Errors
///
/// `write`'s error, or an I/O error of creating, syncing or renaming the file (through
/// `E: From<io::Error>`), whose message names the step and the path.
///
/// # Examples
///
/// ```
/// use std::io::Write;
///
/// # fn main() -> std::io::Result<()> {
/// let dir = std::env::temp_dir().join(format!("verkv-atomic-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("settings.txt");
/// verkv::snapshot::write_atomically(&path, |file| file.write_all(b"first"))?;
/// verkv::snapshot::write_atomically(&path, |file| file.write_all(b"second"))?;
/// assert_eq!(std::fs::read(&path)?, b"second");
/// assert_eq!(std::fs::read_dir(&dir)?.count(), 1); // no temporary file left behind
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
pub fn write_atomically<T, E: From<io::Error>>(
    path: impl AsRef<Path>,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<T, E>,
) -> Result<T, E> {
    let path = path.as_ref();
    let Some(name) = path.file_name() else {
        let message = format!("{} names no file to write", path.display());
        return Err(io::Error::new(io::ErrorKind::InvalidInput, message).into());
    };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temporary = dir.join(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        // Tells apart the temporary files of one process (`create_new` refuses a clash).
        uuid::Uuid::new_v4().simple()
    ));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .map_err(|error| context("create", &temporary, error))?;
    let replaced = replace(file, &temporary, path, dir, write);
    if replaced.is_err() {
        // Gone already if the rename happened (and only the directory's sync failed).
        let _ = fs::remove_file(&temporary);
    }
    replaced
}

/// The steps of [`write_atomically`] after the temporary file was created.
fn replace<T, E: From<io::Error>>(
    file: File,
    temporary: &Path,
    path: &Path,
    dir: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<T, E>,
) -> Result<T, E> {
    let mut out = BufWriter::new(file);
    let value = write(&mut out)?;
    let file = out
        .into_inner()
        .map_err(|error| context("write", temporary, error.into_error()))?;
    file.sync_all()
        .map_err(|error| context("sync", temporary, error))?;
    drop(file);
    fs::rename(temporary, path).map_err(|error| {
        let step = format!("rename {} to", temporary.display());
        context(&step, path, error)
    })?;
    sync_directory(dir)?;
    Ok(value)
}

/// Syncs `dir`, so that a rename in it survives a crash.
#[cfg(unix)]
fn sync_directory(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|error| context("sync the directory", dir, error))
}

/// Elsewhere a directory cannot be opened to sync it.
#[cfg(not(unix))]
fn sync_directory(_dir: &Path) -> io::Result<()> {
    Ok(())
}
