//! `fairway new` and `fairway add`: a standalone app, and one slice file at a time.
//!
//! `fairway new <app>` writes a Cargo project of its own (never a member of an enclosing
//! workspace) that builds, tests and runs at once: the fairway dependency, a `build.rs`
//! making Cargo watch `src/slices/` (without it `fairway::slices!()` refuses to compile), a
//! binary that links the library holding the slices, one example command with its passing
//! test, a `.gitignore` with the data directory, and a README of the app's own commands.
//!
//! `fairway add <kind> <name>` writes `src/slices/<name>.rs` into the app found from the
//! current directory (like Cargo finds its manifest) and changes nothing else. Its test
//! passes as written: the snapshot is inline, so nothing waits to be accepted.

pub mod format;
mod names;

use std::path::{Path, PathBuf};

pub use names::{MAX_NAME_LEN, camel, check_app, check_slice, snake};

/// The slice written into every new app, as an example.
pub const EXAMPLE_SLICE: &str = "say-hello";

/// The kinds of slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// `#[command]`: decides from events, appends new ones.
    Command,
    /// `#[view]`: a read model folded from events.
    View,
    /// `#[automation]`: reacts to events by running commands.
    Automation,
}

impl Kind {
    fn template(self) -> &'static str {
        match self {
            Kind::Command => include_str!("templates/command.rs.tmpl"),
            Kind::View => include_str!("templates/view.rs.tmpl"),
            Kind::Automation => include_str!("templates/automation.rs.tmpl"),
        }
    }
}

/// Why nothing (or not everything) was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScaffoldError {
    /// The slice name does not fit the rule.
    #[error(
        "slice name {0:?} must be 1 to 64 characters of lowercase letters, digits and single '-', starting with \
         a letter (e.g. take-note): it becomes the route, the file and the type"
    )]
    BadSliceName(String),
    /// The app name does not fit the rule.
    #[error(
        "app name {0:?} must be 1 to 64 characters of lowercase letters, digits and single '-', starting with a \
         letter, and not a Rust keyword (e.g. course-shop): it becomes the package, the data directory and the \
         namespace"
    )]
    BadAppName(String),
    /// The app name is taken by Rust or by Fairway itself.
    #[error("app name {0:?} is reserved (a crate the app depends on, or a Cargo target name): choose another")]
    ReservedAppName(String),
    /// `fairway new` would write into a directory that holds files.
    #[error("{} exists and is not empty: nothing written; choose a new directory with --path", .0.display())]
    NotEmpty(PathBuf),
    /// No app around the current directory.
    #[error(
        "no Fairway app here: neither {} nor a parent holds a Cargo.toml beside src/slices/ (run inside an app, \
         or make one with `fairway new <name>`)",
        .0.display()
    )]
    NoApp(PathBuf),
    /// A slice file of that name exists.
    #[error("{} already exists; nothing written", .0.display())]
    Exists(PathBuf),
    /// Reading or writing a file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The app's `Cargo.toml` cannot be read.
    #[error("cannot read {}: {why}", .path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ScaffoldError + '_ {
    move |source| ScaffoldError::Io { path: path.to_path_buf(), source }
}

/// Where the new app takes the `fairway` crate from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FairwaySource {
    /// A checkout's `crates/fairway` directory.
    Path(PathBuf),
    /// A git repository (and optionally a branch).
    Git {
        /// The repository's URL.
        url: String,
        /// The branch, if not the default one.
        branch: Option<String>,
    },
    /// A published version.
    Version(String),
}

impl FairwaySource {
    /// The default: the checkout this tool was built from, if it is still there, else the
    /// version of this tool.
    pub fn default_for_this_tool() -> Self {
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fairway");
        match checkout.join("Cargo.toml").is_file().then(|| checkout.canonicalize()) {
            Some(Ok(path)) => FairwaySource::Path(path),
            _ => FairwaySource::Version(env!("CARGO_PKG_VERSION").to_owned()),
        }
    }

    /// The dependency as an inline TOML table, with `features`.
    fn toml(&self, features: &[&str]) -> String {
        let mut fields = match self {
            FairwaySource::Path(path) => vec![format!("path = {}", toml_string(&path.to_string_lossy()))],
            FairwaySource::Git { url, branch } => {
                let mut fields = vec![format!("git = {}", toml_string(url))];
                fields.extend(branch.iter().map(|branch| format!("branch = {}", toml_string(branch))));
                fields
            }
            FairwaySource::Version(version) => vec![format!("version = {}", toml_string(version))],
        };
        if !features.is_empty() {
            let features: Vec<String> = features.iter().map(|f| toml_string(f)).collect();
            fields.push(format!("features = [{}]", features.join(", ")));
        }
        format!("{{ {} }}", fields.join(", "))
    }
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    toml_edit::Value::from(text).to_string().trim().to_owned()
}

/// The source of slice `name` of `kind`.
pub fn render_slice(kind: Kind, name: &str) -> String {
    kind.template()
        .replace("__NAME__", name)
        .replace("__TYPE__", &camel(name))
        .replace("__SNAKE__", &snake(name))
        .replace("__KEY__", &snake(name).to_uppercase())
}

/// The files of a new app called `app`, by path inside it.
pub fn render_app(app: &str, fairway: &FairwaySource) -> Vec<(PathBuf, String)> {
    let fill = |template: &str| {
        template
            .replace("__APP__", app)
            .replace("__CRATE__", &snake(app))
            .replace("__FAIRWAY_TESTKIT__", &fairway.toml(&["testkit"]))
            .replace("__FAIRWAY__", &fairway.toml(&[]))
    };
    let mut files = vec![
        ("Cargo.toml", fill(include_str!("templates/app/Cargo.toml.tmpl"))),
        ("build.rs", fill(include_str!("templates/app/build.rs.tmpl"))),
        ("src/main.rs", fill(include_str!("templates/app/main.rs.tmpl"))),
        ("src/lib.rs", fill(include_str!("templates/app/lib.rs.tmpl"))),
        ("src/slices/mod.rs", fill(include_str!("templates/app/slices_mod.rs.tmpl"))),
        (".gitignore", fill(include_str!("templates/app/gitignore.tmpl"))),
        ("README.md", fill(include_str!("templates/app/README.md.tmpl"))),
    ];
    let example = format!("src/slices/{}.rs", snake(EXAMPLE_SLICE));
    files.push((example.as_str(), render_slice(Kind::Command, EXAMPLE_SLICE)));
    files.into_iter().map(|(path, text)| (PathBuf::from(path), text)).collect()
}

/// Writes a new app called `app` into `dir` (which must not exist or be empty); returns the
/// files written.
pub fn new_app(app: &str, dir: &Path, fairway: &FairwaySource) -> Result<Vec<PathBuf>, ScaffoldError> {
    check_app(app)?;
    if dir.exists() && std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
        return Err(ScaffoldError::NotEmpty(dir.to_path_buf()));
    }
    let mut written = Vec::new();
    for (path, text) in render_app(app, fairway) {
        let file = dir.join(&path);
        let parent = file.parent().expect("every file is inside the app");
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        std::fs::write(&file, text).map_err(io(&file))?;
        written.push(path);
    }
    Ok(written)
}

/// The app around `start`: the nearest directory, from `start` up, holding a `Cargo.toml`
/// beside `src/slices/`.
pub fn find_app(start: &Path) -> Result<PathBuf, ScaffoldError> {
    start
        .ancestors()
        .find(|dir| dir.join("Cargo.toml").is_file() && dir.join("src/slices").is_dir())
        .map(Path::to_path_buf)
        .ok_or_else(|| ScaffoldError::NoApp(start.to_path_buf()))
}

/// Writes slice `name` of `kind` into the app at `app`; returns the new file. Never
/// overwrites a file.
pub fn add_slice(kind: Kind, name: &str, app: &Path) -> Result<PathBuf, ScaffoldError> {
    check_slice(name)?;
    let file = app.join("src/slices").join(format!("{}.rs", snake(name)));
    let mut out = std::fs::OpenOptions::new().write(true).create_new(true).open(&file).map_err(|err| {
        if err.kind() == std::io::ErrorKind::AlreadyExists {
            ScaffoldError::Exists(file.clone())
        } else {
            ScaffoldError::Io { path: file.clone(), source: err }
        }
    })?;
    std::io::Write::write_all(&mut out, render_slice(kind, name).as_bytes()).map_err(io(&file))?;
    Ok(file)
}

/// The edition the app at `app` is written in (its `Cargo.toml`; `2021` when unset, as
/// Cargo's default is older still and rustfmt needs one).
pub fn edition(app: &Path) -> Result<String, ScaffoldError> {
    let path = app.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let manifest: toml_edit::Document<String> = text
        .parse()
        .map_err(|err: toml_edit::TomlError| ScaffoldError::Manifest { path: path.clone(), why: err.to_string() })?;
    let edition = manifest.get("package").and_then(|package| package.get("edition"));
    Ok(edition.and_then(|e| e.as_str()).unwrap_or("2021").to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled() {
        for kind in [Kind::Command, Kind::View, Kind::Automation] {
            let source = render_slice(kind, "notify-teacher");
            assert!(source.contains("\"notify-teacher\"") && source.contains("NotifyTeacher"), "{source}");
            assert!(!source.contains("__"), "{kind:?}: a placeholder is left");
        }
        let path = FairwaySource::Path(PathBuf::from("/src/fair \"way\"/crates/fairway"));
        for (file, text) in render_app("course-shop", &path) {
            assert!(!text.contains("__"), "{}: a placeholder is left:\n{text}", file.display());
        }
        let manifest = &render_app("course-shop", &path)[0].1;
        let parsed: toml_edit::Document<String> = manifest.parse().expect("the manifest is TOML");
        assert_eq!(parsed["dependencies"]["fairway"]["path"].as_str(), Some("/src/fair \"way\"/crates/fairway"));
        assert_eq!(parsed["package"]["name"].as_str(), Some("course-shop"));
        let git = FairwaySource::Git { url: "https://example.org/fairway.git".into(), branch: Some("main".into()) };
        let manifest = &render_app("shop", &git)[0].1;
        let parsed: toml_edit::Document<String> = manifest.parse().unwrap();
        assert_eq!(parsed["dev-dependencies"]["fairway"]["branch"].as_str(), Some("main"));
        assert_eq!(parsed["dev-dependencies"]["fairway"]["features"].as_array().map(|a| a.len()), Some(1));
    }

    #[test]
    fn a_new_app_is_written_once_and_found_from_inside() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("shop");
        let written = new_app("shop", &dir, &FairwaySource::Version("0.1.0".into())).unwrap();
        assert!(written.contains(&PathBuf::from("build.rs")) && written.contains(&PathBuf::from(".gitignore")));
        assert!(std::fs::read_to_string(dir.join(".gitignore")).unwrap().contains("/shop-data"));
        assert!(std::fs::read_to_string(dir.join("src/main.rs")).unwrap().contains("use shop as _;"));
        assert!(matches!(
            new_app("shop", &dir, &FairwaySource::Version("0.1.0".into())),
            Err(ScaffoldError::NotEmpty(_))
        ));

        let inside = dir.join("src/slices");
        assert_eq!(find_app(&inside).unwrap(), dir);
        assert!(matches!(find_app(root.path()), Err(ScaffoldError::NoApp(_))));
        assert_eq!(edition(&dir).unwrap(), "2024");

        let file = add_slice(Kind::View, "order-totals", &dir).unwrap();
        assert_eq!(file, dir.join("src/slices/order_totals.rs"));
        assert!(std::fs::read_to_string(&file).unwrap().contains("impl View for OrderTotals"));
        assert!(matches!(add_slice(Kind::Command, "order-totals", &dir), Err(ScaffoldError::Exists(_))));
        assert!(matches!(add_slice(Kind::Command, "Order", &dir), Err(ScaffoldError::BadSliceName(_))));
    }
}
