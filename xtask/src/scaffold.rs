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
    /// The app's `Cargo.toml` cannot be read as a package manifest.
    Manifest(PathBuf, String),
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
            ScaffoldError::Manifest(file, why) => {
                write!(f, "cannot read the package name in {}: {why}", file.display())
            }
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

/// The name the app's library is referred to by in Rust (`[lib] name`, else the package
/// name with `-` as `_`).
fn library_name(app: &Path) -> Result<String, ScaffoldError> {
    let path = app.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).map_err(|err| ScaffoldError::Io(path.clone(), err))?;
    let manifest: toml_edit::Document<String> =
        text.parse().map_err(|err: toml_edit::TomlError| ScaffoldError::Manifest(path.clone(), err.to_string()))?;
    let name = |table: &str| manifest.get(table).and_then(|t| t.get("name")).and_then(|n| n.as_str());
    let name = name("lib")
        .or_else(|| name("package"))
        .ok_or_else(|| ScaffoldError::Manifest(path.clone(), "no [package] name".into()))?;
    Ok(name.replace('-', "_"))
}

/// Makes the app's binary link its library, so the slices registered there are
/// discovered: adds `use <lib> as _;` to `src/main.rs` unless it already names the
/// library. Returns the file changed, if any (only ever the first time).
pub fn ensure_linked(app: &Path) -> Result<Option<PathBuf>, ScaffoldError> {
    let main = app.join("src").join("main.rs");
    if !main.is_file() || !app.join("src").join("lib.rs").is_file() {
        return Ok(None);
    }
    let library = library_name(app)?;
    let source = std::fs::read_to_string(&main).map_err(|err| ScaffoldError::Io(main.clone(), err))?;
    let names_library = source.contains(&format!("{library}::"))
        || source.contains(&format!("use {library} "))
        || source.contains(&format!("use {library};"));
    if names_library {
        return Ok(None);
    }
    let lines: Vec<&str> = source.lines().collect();
    let header = lines.iter().take_while(|l| l.starts_with("//!") || l.starts_with("#![")).count();
    let rest: Vec<&str> = lines[header..].iter().copied().skip_while(|l| l.trim().is_empty()).collect();
    let mut out = String::new();
    for line in &lines[..header] {
        out.push_str(line);
        out.push('\n');
    }
    if header > 0 {
        out.push('\n');
    }
    out.push_str(&format!(
        "// Links the library, so every slice it registers is discovered at start.\nuse {library} as _;\n"
    ));
    if !rest.is_empty() {
        out.push('\n');
        out.push_str(&rest.join("\n"));
        out.push('\n');
    }
    std::fs::write(&main, out).map_err(|err| ScaffoldError::Io(main.clone(), err))?;
    Ok(Some(main))
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

    #[test]
    fn a_binary_that_does_not_name_its_library_gets_linked_once() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path();
        std::fs::create_dir_all(app.join("src")).unwrap();
        std::fs::write(app.join("Cargo.toml"), "[package]\nname = \"my-app\"\nversion = \"0.1.0\"\n").unwrap();
        std::fs::write(app.join("src/lib.rs"), "").unwrap();
        let main = "//! My app.\n\nfn main() {\n    fairway::run();\n}\n";
        std::fs::write(app.join("src/main.rs"), main).unwrap();

        assert_eq!(ensure_linked(app).unwrap(), Some(app.join("src/main.rs")));
        let linked = std::fs::read_to_string(app.join("src/main.rs")).unwrap();
        assert!(linked.starts_with("//! My app.\n\n// Links the library"), "{linked}");
        assert!(linked.contains("use my_app as _;\n\nfn main() {"), "{linked}");
        assert_eq!(ensure_linked(app).unwrap(), None, "already linked: nothing changes");
        assert_eq!(std::fs::read_to_string(app.join("src/main.rs")).unwrap(), linked);

        std::fs::write(app.join("Cargo.toml"), "[package]\nname = \"my-app\"\n[lib]\nname = \"slices\"\n").unwrap();
        std::fs::write(app.join("src/main.rs"), "use slices::Thing;\nfn main() {}\n").unwrap();
        assert_eq!(ensure_linked(app).unwrap(), None, "the binary names the [lib] already");
    }
}
