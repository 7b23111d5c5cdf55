//! An app's claim on its embedded data directory, so that two apps never share a store by
//! accident and a directory of other files is never filled with a store.
//!
//! The first app to open a directory writes its name into [`OWNER_FILE`]; another app is
//! refused there, naming both. A directory that holds other files but no store is refused
//! too. A store made before this file existed (it holds the database but no owner) is
//! adopted by the first app that opens it.

use std::path::{Path, PathBuf};

use fairway_dcb::EmbeddedEngine;

const DATABASE_FILE: &str = EmbeddedEngine::DATABASE_FILE;
const JOURNAL_FILE: &str = EmbeddedEngine::JOURNAL_FILE;

/// The file naming the app that owns a data directory.
pub const OWNER_FILE: &str = "fairway-app";

/// Why an app may not use a data directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// The directory holds another app's store.
    #[error(
        "the data directory {} holds the store of the app {owner:?} (named in its {OWNER_FILE} file), \
         not of {app:?}: pass this app's own --data-dir (its default is ./{app}-data)",
        .dir.display()
    )]
    OtherApp {
        /// The directory.
        dir: PathBuf,
        /// The app named in its owner file.
        owner: String,
        /// The app starting.
        app: String,
    },
    /// The directory holds files that are not a Fairway store.
    #[error(
        "{} is not a Fairway data directory: it holds other files ({sample}) and no store ({DATABASE_FILE}); \
         pass --data-dir with a new or empty directory",
        .dir.display()
    )]
    Foreign {
        /// The directory.
        dir: PathBuf,
        /// A few of its entries.
        sample: String,
    },
    /// The directory or its owner file cannot be read or written.
    #[error("cannot use the data directory {}: {source}", .dir.display())]
    Io {
        /// The directory.
        dir: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

/// The app named in `dir`'s owner file, if it has one.
pub fn owner(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(OWNER_FILE)).ok()?;
    let name = text.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// Makes `dir` the data directory of `app`: creates it if needed and writes the owner file,
/// or checks that `app` already owns it.
pub fn claim(dir: &Path, app: &str) -> Result<(), DataDirError> {
    let io = |source| DataDirError::Io { dir: dir.to_path_buf(), source };
    std::fs::create_dir_all(dir).map_err(io)?;
    if let Some(owner) = owner(dir) {
        if owner == app {
            return Ok(());
        }
        return Err(DataDirError::OtherApp { dir: dir.to_path_buf(), owner, app: app.to_owned() });
    }
    let mut entries: Vec<String> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    let holds_store = entries.iter().any(|name| name == DATABASE_FILE || name == JOURNAL_FILE);
    if !entries.is_empty() && !holds_store {
        entries.sort();
        let more = entries.len().saturating_sub(3);
        let mut sample = entries.into_iter().take(3).collect::<Vec<_>>().join(", ");
        if more > 0 {
            sample.push_str(&format!(" and {more} more"));
        }
        return Err(DataDirError::Foreign { dir: dir.to_path_buf(), sample });
    }
    std::fs::write(dir.join(OWNER_FILE), format!("{app}\n")).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_app_owns_a_new_directory_and_others_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("notes-data");
        claim(&dir, "notes").unwrap();
        assert_eq!(owner(&dir).as_deref(), Some("notes"));
        claim(&dir, "notes").unwrap();
        let err = claim(&dir, "courses").unwrap_err();
        assert!(matches!(&err, DataDirError::OtherApp { owner, .. } if owner == "notes"), "{err}");
        let message = err.to_string();
        assert!(message.contains(&dir.display().to_string()) && message.contains("./courses-data"), "{message}");
    }

    #[test]
    fn a_directory_of_other_files_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["a.txt", "b.txt", "c.txt", "d.txt"] {
            std::fs::write(dir.path().join(file), "mine").unwrap();
        }
        let err = claim(dir.path(), "notes").unwrap_err();
        assert!(err.to_string().contains("(a.txt, b.txt, c.txt and 1 more)"), "{err}");
        assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
        assert!(!dir.path().join(OWNER_FILE).exists());
    }

    #[test]
    fn a_store_without_an_owner_is_adopted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DATABASE_FILE), "").unwrap();
        claim(dir.path(), "courses").unwrap();
        assert_eq!(owner(dir.path()).as_deref(), Some("courses"));
    }
}
