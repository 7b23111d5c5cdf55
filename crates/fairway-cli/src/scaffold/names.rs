//! The names `fairway new` and `fairway add` accept, and the Rust names made from them.

use super::ScaffoldError;

/// Longest app or slice name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Whether `name` is lowercase words joined by single `-`: 1 to [`MAX_NAME_LEN`] bytes of
/// `a-z`, `0-9` and `-`, starting with a letter, not ending with `-`.
fn is_kebab(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// Whether `name` is kebab case and, in snake case, a module name (not a Rust keyword).
fn is_kebab_module_name(name: &str) -> bool {
    is_kebab(name) && !is_keyword(&snake(name))
}

/// Checks a slice name (`take-note`): it becomes the route, the file and the type.
pub fn check_slice(name: &str) -> Result<(), ScaffoldError> {
    if is_kebab_module_name(name) { Ok(()) } else { Err(ScaffoldError::BadSliceName(name.to_owned())) }
}

/// Checks an app name (`notes`, `course-shop`): it becomes the package, the library, the
/// data directory and the namespace.
pub fn check_app(name: &str) -> Result<(), ScaffoldError> {
    if !is_kebab_module_name(name) {
        return Err(ScaffoldError::BadAppName(name.to_owned()));
    }
    if ["fairway", "test", "build", "main", "lib", "std", "core", "alloc", "proc-macro"].contains(&name) {
        return Err(ScaffoldError::ReservedAppName(name.to_owned()));
    }
    Ok(())
}

/// `take-note` → `take_note` (file, module, tag key).
pub fn snake(name: &str) -> String {
    name.replace('-', "_")
}

/// `take-note` → `TakeNote` (type).
pub fn camel(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// Whether `name` is a Rust keyword (strict or reserved), which no module or crate can be
/// named.
fn is_keyword(name: &str) -> bool {
    const KEYWORDS: [&str; 52] = [
        "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for", "if", "impl",
        "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "static", "struct",
        "super", "trait", "true", "type", "unsafe", "use", "where", "while", "async", "await", "dyn", "abstract",
        "become", "box", "do", "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try",
        "gen", "union",
    ];
    KEYWORDS.contains(&name)
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
        assert_eq!(camel("a1-b2"), "A1B2");
    }

    #[test]
    fn bad_names_are_refused_with_the_rule() {
        for bad in ["", "Notify", "notify_teacher", "-x", "x-", "a--b", "9lives", "type", &"x".repeat(65)] {
            let err = check_slice(bad).unwrap_err();
            assert!(err.to_string().contains("1 to 64 characters"), "{bad:?}: {err}");
        }
        check_slice("take-note").unwrap();
        for bad in ["My App", "my_app", "fn"] {
            assert!(matches!(check_app(bad), Err(ScaffoldError::BadAppName(_))), "{bad:?}");
        }
        assert!(matches!(check_app("fairway"), Err(ScaffoldError::ReservedAppName(_))));
        check_app("course-shop").unwrap();
    }
}
