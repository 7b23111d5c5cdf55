//! `cargo xtask fmt [--check]`: runs rustfmt on every tracked `.rs` file.
//!
//! `cargo fmt` formats only the files it reaches through `mod` declarations; files included
//! by a macro (the slices of an app, through `fairway::slices!()`) are invisible to it. This task
//! hands every file to rustfmt itself, with the workspace's edition and `rustfmt.toml`.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The edition the workspace is written in (`Cargo.toml`).
const EDITION: &str = "2024";

/// Files handed to one rustfmt run, at most (keeps the command line short).
const FILES_PER_RUN: usize = 200;

/// Every `.rs` file of the workspace at `root`: those git tracks, or, outside a git work
/// tree, every one outside `target/` and hidden directories.
pub fn rust_files(root: &Path) -> io::Result<Vec<PathBuf>> {
    let listed = Command::new("git").args(["ls-files", "-z", "--", "*.rs"]).current_dir(root).output();
    if let Ok(output) = listed
        && output.status.success()
    {
        let text = String::from_utf8_lossy(&output.stdout);
        return Ok(text.split('\0').filter(|f| !f.is_empty()).map(|f| root.join(f)).collect());
    }
    eprintln!("xtask: not a git work tree; checking every .rs file outside target/");
    let mut files = Vec::new();
    walk(root, &mut files)?;
    files.sort();
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if entry.file_type()?.is_dir() {
            if name != "target" && !name.starts_with('.') {
                walk(&path, files)?;
            }
        } else if name.ends_with(".rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// The rustfmt commands formatting (or, with `check`, checking) `files`.
pub fn rustfmt_commands(root: &Path, files: &[PathBuf], check: bool) -> Vec<Command> {
    let rustfmt = std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".into());
    files
        .chunks(FILES_PER_RUN)
        .map(|chunk| {
            let mut command = Command::new(&rustfmt);
            command.current_dir(root).args(["--edition", EDITION]);
            command.arg("--config-path").arg(root.join("rustfmt.toml"));
            if check {
                command.arg("--check");
            }
            command.args(chunk);
            command
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_files_include_the_slices_cargo_fmt_cannot_see() {
        let root = crate::workspace_root();
        let files = rust_files(&root).unwrap();
        assert!(files.iter().any(|f| f.ends_with("examples/courses/src/slices/define_course.rs")), "{files:?}");
        assert!(files.iter().all(|f| f.extension().is_some_and(|e| e == "rs")));
    }

    #[test]
    fn a_badly_formatted_file_fails_the_check() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(crate::workspace_root().join("rustfmt.toml"), dir.path().join("rustfmt.toml")).unwrap();
        let file = dir.path().join("ugly.rs");
        std::fs::write(&file, "fn  main( ){let x=1;}\n").unwrap();
        let status = |check| {
            rustfmt_commands(dir.path(), std::slice::from_ref(&file), check)
                .into_iter()
                .all(|mut c| c.status().unwrap().success())
        };
        assert!(!status(true), "rustfmt --check accepts an unformatted file");
        assert!(status(false), "rustfmt formats it");
        assert!(status(true), "once formatted it passes");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "fn main() {\n    let x = 1;\n}\n");
    }
}
