//! `fairway fmt [--check]`: rustfmt on every `.rs` file of an app, slices included.
//!
//! `cargo fmt` formats the files it reaches through `mod` declarations, and
//! `fairway::slices!()` includes the slice files without any; so this hands rustfmt every
//! file under `src/`, `tests/`, `examples/` and `benches/`, and `build.rs`, with the app's
//! edition (rustfmt reads the app's `rustfmt.toml` itself).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{ScaffoldError, edition};

/// The folders of a package that hold Rust sources.
const SOURCE_DIRS: [&str; 4] = ["src", "tests", "examples", "benches"];

/// Every `.rs` file of the app at `app`, sorted.
pub fn rust_files(app: &Path) -> Result<Vec<PathBuf>, ScaffoldError> {
    let mut files = Vec::new();
    for dir in SOURCE_DIRS.iter().map(|dir| app.join(dir)).filter(|dir| dir.is_dir()) {
        walk(&dir, &mut files)?;
    }
    let build = app.join("build.rs");
    if build.is_file() {
        files.push(build);
    }
    files.sort();
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), ScaffoldError> {
    let io = |source| ScaffoldError::Io { path: dir.to_path_buf(), source };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            walk(&path, files)?;
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// The rustfmt run formatting (or, with `check`, checking) the app at `app`.
pub fn rustfmt(app: &Path, check: bool) -> Result<Command, ScaffoldError> {
    let mut command = rustfmt_files(app, &rust_files(app)?)?;
    if check {
        command.arg("--check");
    }
    Ok(command)
}

/// The rustfmt run formatting `files` of the app at `app`, with its edition and its own
/// `rustfmt.toml`, if it has one.
pub fn rustfmt_files(app: &Path, files: &[PathBuf]) -> Result<Command, ScaffoldError> {
    let mut command = Command::new(std::env::var_os("RUSTFMT").unwrap_or_else(|| "rustfmt".into()));
    command.current_dir(app).args(["--edition", &edition(app)?]).args(files);
    Ok(command)
}

/// Formats the files `fairway new` or `fairway add` just wrote, so they are as the app's
/// `fairway fmt --check` wants them. A missing or failing rustfmt is a warning on stderr:
/// the files are written and compile either way.
pub fn tidy(app: &Path, files: &[PathBuf]) {
    let outcome = rustfmt_files(app, files).map(|mut command| command.status());
    match outcome {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => eprintln!("warning: rustfmt failed ({status}); the new files are not formatted"),
        Ok(Err(err)) => eprintln!("warning: cannot run rustfmt ({err}); the new files are not formatted"),
        Err(err) => eprintln!("warning: {err}; the new files are not formatted"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_file_is_listed_and_nothing_else() {
        let app = tempfile::tempdir().unwrap();
        for file in [
            "src/main.rs",
            "src/slices/a.rs",
            "src/slices/b/mod.rs",
            "tests/t.rs",
            "build.rs",
            "target/x.rs",
            "src/notes.md",
        ] {
            let path = app.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let listed: Vec<PathBuf> =
            rust_files(app.path()).unwrap().iter().map(|f| f.strip_prefix(app.path()).unwrap().to_path_buf()).collect();
        let expected = ["build.rs", "src/main.rs", "src/slices/a.rs", "src/slices/b/mod.rs", "tests/t.rs"];
        assert_eq!(listed, expected.map(PathBuf::from));
    }
}
