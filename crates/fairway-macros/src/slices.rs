//! `fairway::slices!()`: one public module per slice file of a folder, and a compile error
//! wherever a slice could silently be left out of the build.

use std::path::{Path, PathBuf};

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::LitStr;

/// The environment variable the app's build script sets to the folder it watches.
pub const WATCH_VARIABLE: &str = "FAIRWAY_SLICES_WATCHED";

/// The folder listed when the macro is given no argument.
pub const DEFAULT_FOLDER: &str = "src/slices";

/// Expands `slices!()` / `slices!("dir")`.
pub fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let folder =
        if input.is_empty() { LitStr::new(DEFAULT_FOLDER, Span::call_site()) } else { syn::parse2::<LitStr>(input)? };
    let relative = folder.value();
    let manifest = std::env::var("CARGO_MANIFEST_DIR")
        .map_err(|_| syn::Error::new(folder.span(), "slices!: CARGO_MANIFEST_DIR is not set (build with cargo)"))?;
    check_watched(&relative, folder.span())?;
    let modules = slice_modules(&Path::new(&manifest).join(&relative), &relative, folder.span())?;
    let modules = modules.iter().map(|name| format_ident!("{name}"));
    Ok(quote! { #( pub mod #modules; )* })
}

/// Without a build script telling Cargo to watch the folder, a slice file added later is
/// not compiled until some other file changes: refuse to build, saying what to add.
fn check_watched(relative: &str, span: Span) -> syn::Result<()> {
    let watched = std::env::var(WATCH_VARIABLE).ok();
    if watched.as_deref().is_some_and(|watched| watched.split(',').any(|dir| dir == relative)) {
        return Ok(());
    }
    let found = match &watched {
        Some(value) => format!("it watches {value:?} instead"),
        None => "the package has no build script saying so".to_owned(),
    };
    Err(syn::Error::new(
        span,
        format!(
            "slices!: Cargo does not watch {relative:?} ({found}), so a slice file added later would not be \
             compiled. Add a `build.rs` beside Cargo.toml with:\n\nfn main() {{\n    \
             println!(\"cargo:rerun-if-changed={relative}\");\n    \
             println!(\"cargo:rustc-env={WATCH_VARIABLE}={relative}\");\n}}\n\n(`fairway new` writes it.)"
        ),
    ))
}

/// The module names of the slices in `dir`: every `<name>.rs` but `mod.rs`, and every
/// `<name>/` folder holding a `mod.rs`, sorted. A file or folder that cannot be a module is
/// an error naming it, never skipped.
fn slice_modules(dir: &Path, relative: &str, span: Span) -> syn::Result<Vec<String>> {
    let error = |message: String| syn::Error::new(span, message);
    let entries = std::fs::read_dir(dir).map_err(|err| error(format!("slices!: cannot list {relative:?}: {err}")))?;
    let mut names = Vec::new();
    for entry in entries {
        let path: PathBuf = entry.map_err(|err| error(format!("slices!: cannot list {relative:?}: {err}")))?.path();
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if file_name.starts_with('.') || file_name == "snapshots" {
            continue;
        }
        let name = if path.is_dir() {
            if !path.join("mod.rs").is_file() {
                return Err(error(format!(
                    "slices!: the folder {relative}/{file_name} has no mod.rs, so it is no slice; add one or move the folder out"
                )));
            }
            file_name.clone()
        } else if let Some(stem) = file_name.strip_suffix(".rs") {
            if stem == "mod" {
                continue;
            }
            stem.to_owned()
        } else {
            continue;
        };
        if !is_module_name(&name) {
            return Err(error(format!(
                "slices!: {relative}/{file_name} cannot be a module: name slice files in snake_case \
                 (lowercase letters, digits and '_', starting with a letter), e.g. `take_note.rs`"
            )));
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// Whether `name` is a plain Rust module name (not a keyword).
fn is_module_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && syn::parse_str::<syn::Ident>(name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_are_snake_case_identifiers() {
        for good in ["take_note", "a1", "x"] {
            assert!(is_module_name(good), "{good}");
        }
        for bad in ["take-note", "Take", "1a", "_x", "type", "mod", ""] {
            assert!(!is_module_name(bad), "{bad}");
        }
    }

    #[test]
    fn every_file_and_folder_is_listed_or_refused() {
        let dir = std::env::temp_dir().join(format!("fairway-slices-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("folder_slice")).unwrap();
        std::fs::write(dir.join("folder_slice/mod.rs"), "").unwrap();
        for file in ["mod.rs", "b_slice.rs", "a_slice.rs", "notes.txt"] {
            std::fs::write(dir.join(file), "").unwrap();
        }
        std::fs::create_dir_all(dir.join("snapshots")).unwrap();
        let names = slice_modules(&dir, "src/slices", Span::call_site()).unwrap();
        assert_eq!(names, ["a_slice", "b_slice", "folder_slice"]);

        std::fs::write(dir.join("take-note.rs"), "").unwrap();
        let err = slice_modules(&dir, "src/slices", Span::call_site()).unwrap_err();
        assert!(err.to_string().contains("src/slices/take-note.rs cannot be a module"), "{err}");
        std::fs::remove_file(dir.join("take-note.rs")).unwrap();

        std::fs::create_dir_all(dir.join("loose")).unwrap();
        let err = slice_modules(&dir, "src/slices", Span::call_site()).unwrap_err();
        assert!(err.to_string().contains("src/slices/loose has no mod.rs"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
