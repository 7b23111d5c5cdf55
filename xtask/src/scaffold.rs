//! `cargo xtask new <command|view|automation> <name> [--app <path>]`: writes one new slice
//! file, with its test, into `<app>/src/slices/`, and changes nothing else. The app finds
//! it at start (`automod::dir!` includes every file of the directory; `#[command]`,
//! `#[view]`, `#[automation]` register it).

use std::fmt;
use std::path::{Path, PathBuf};

/// The kinds of slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `#[command]`
    Command,
    /// `#[view]`
    View,
    /// `#[automation]`
    Automation,
}

impl Kind {
    fn parse(kind: &str) -> Result<Kind, ScaffoldError> {
        match kind {
            "command" => Ok(Kind::Command),
            "view" => Ok(Kind::View),
            "automation" => Ok(Kind::Automation),
            other => Err(ScaffoldError::UnknownKind(other.to_owned())),
        }
    }

    fn template(self) -> &'static str {
        match self {
            Kind::Command => include_str!("templates/command.rs.tmpl"),
            Kind::View => include_str!("templates/view.rs.tmpl"),
            Kind::Automation => include_str!("templates/automation.rs.tmpl"),
        }
    }
}

/// Why nothing was written.
#[derive(Debug)]
pub enum ScaffoldError {
    /// Not command, view or automation.
    UnknownKind(String),
    /// The name does not fit the rule.
    BadName(String),
    /// The app has no `src/slices/` directory.
    NoSlicesDir(PathBuf),
    /// A slice file of that name exists.
    Exists(PathBuf),
    /// Writing failed.
    Io(PathBuf, std::io::Error),
}

impl fmt::Display for ScaffoldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScaffoldError::UnknownKind(kind) => {
                write!(f, "unknown slice kind {kind:?}: expected command, view or automation")
            }
            ScaffoldError::BadName(name) => write!(
                f,
                "slice name {name:?} must be 1 to 64 characters of lowercase letters, digits and '-', starting with a letter"
            ),
            ScaffoldError::NoSlicesDir(dir) => write!(
                f,
                "{} does not exist: the app must keep its slices there, included with `automod::dir!(pub \"src/slices\");`",
                dir.display()
            ),
            ScaffoldError::Exists(file) => write!(f, "{} already exists; nothing written", file.display()),
            ScaffoldError::Io(file, err) => write!(f, "cannot write {}: {err}", file.display()),
        }
    }
}

impl std::error::Error for ScaffoldError {}

/// `notify-teacher` → `notify_teacher` (file and tag key).
fn snake(name: &str) -> String {
    name.replace('-', "_")
}

/// `notify-teacher` → `NotifyTeacher` (type).
fn camel(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let valid = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if valid { Ok(()) } else { Err(ScaffoldError::BadName(name.to_owned())) }
}

/// The source of a new slice.
pub fn render(kind: Kind, name: &str) -> String {
    kind.template().replace("__NAME__", name).replace("__TYPE__", &camel(name)).replace("__SNAKE__", &snake(name))
}

/// Writes slice `name` of `kind` into `app`; returns the new file.
pub fn new_slice(kind: &str, name: &str, app: &Path) -> Result<PathBuf, ScaffoldError> {
    let kind = Kind::parse(kind)?;
    check_name(name)?;
    let dir = app.join("src").join("slices");
    if !dir.is_dir() {
        return Err(ScaffoldError::NoSlicesDir(dir));
    }
    let file = dir.join(format!("{}.rs", snake(name)));
    let mut out = std::fs::OpenOptions::new().write(true).create_new(true).open(&file).map_err(|err| {
        if err.kind() == std::io::ErrorKind::AlreadyExists {
            ScaffoldError::Exists(file.clone())
        } else {
            ScaffoldError::Io(file.clone(), err)
        }
    })?;
    std::io::Write::write_all(&mut out, render(kind, name).as_bytes())
        .map_err(|err| ScaffoldError::Io(file.clone(), err))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_files_types_and_routes() {
        assert_eq!(
            (snake("notify-teacher"), camel("notify-teacher")),
            ("notify_teacher".into(), "NotifyTeacher".into())
        );
        let source = render(Kind::Command, "notify-teacher");
        assert!(source.contains("pub struct NotifyTeacher {") && source.contains("\"notify-teacher\""));
        assert!(!source.contains("__"), "every placeholder is replaced");
    }

    #[test]
    fn bad_input_writes_nothing_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(new_slice("query", "x", dir.path()), Err(ScaffoldError::UnknownKind(_))));
        for bad in ["", "Notify", "notify_teacher", "-x", "x-", "a--b", "9lives"] {
            let err = new_slice("command", bad, dir.path()).unwrap_err();
            assert!(matches!(err, ScaffoldError::BadName(_)), "{bad:?}: {err}");
        }
        let err = new_slice("view", "totals", dir.path()).unwrap_err();
        assert!(err.to_string().contains("automod::dir!"), "{err}");
        std::fs::create_dir_all(dir.path().join("src/slices")).unwrap();
        new_slice("view", "totals", dir.path()).unwrap();
        let err = new_slice("command", "totals", dir.path()).unwrap_err();
        assert!(matches!(err, ScaffoldError::Exists(_)), "{err}");
        assert!(std::fs::read_to_string(dir.path().join("src/slices/totals.rs")).unwrap().contains("impl View"));
    }
}
