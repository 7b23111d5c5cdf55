//! `fairway new`, `fairway add` and `fairway fmt` as a user runs them: from inside the app
//! (any subdirectory), never overwriting a file, every refusal a clear error. Building and
//! serving the app these commands write is walked by CI with the book's tutorial
//! (`.ci/walk_tutorial.py`), outside this repository.

use std::path::Path;
use std::process::{Command, Output};

fn fairway(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fairway")).args(args).current_dir(dir).output().unwrap()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Every file under `root`, relative, sorted.
fn files(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

#[test]
fn a_new_app_gets_slices_added_from_anywhere_inside_it() {
    let root = tempfile::tempdir().unwrap();
    let made = fairway(&["new", "course-shop"], root.path());
    assert!(made.status.success(), "{}", text(&made));
    let app = root.path().join("course-shop");
    assert_eq!(
        files(&app),
        [
            ".gitignore",
            "Cargo.toml",
            "README.md",
            "build.rs",
            "src/lib.rs",
            "src/main.rs",
            "src/slices/mod.rs",
            "src/slices/say_hello.rs"
        ]
    );
    let manifest = std::fs::read_to_string(app.join("Cargo.toml")).unwrap();
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fairway").canonicalize().unwrap();
    assert!(manifest.contains(&format!("fairway = {{ path = \"{}\" }}", checkout.display())), "{manifest}");
    assert!(manifest.contains("\n[workspace]\n"), "a project of its own: {manifest}");
    assert!(std::fs::read_to_string(app.join("src/main.rs")).unwrap().contains("use course_shop as _;"));

    let before = files(&app);
    let added = fairway(&["add", "view", "order-totals"], &app.join("src/slices"));
    assert!(added.status.success(), "{}", text(&added));
    assert!(text(&added).contains("created order_totals.rs"), "{}", text(&added));
    let mut expected = before.clone();
    expected.push("src/slices/order_totals.rs".into());
    expected.sort();
    assert_eq!(files(&app), expected, "one new file, nothing else");

    let formatted = fairway(&["fmt", "--check"], &app);
    assert!(formatted.status.success(), "what new and add write is formatted: {}", text(&formatted));
    std::fs::write(app.join("src/slices/ugly.rs"), "pub fn  ugly( ){}\n").unwrap();
    let unformatted = fairway(&["fmt", "--check"], &app.join("src"));
    assert_eq!(unformatted.status.code(), Some(1), "{}", text(&unformatted));
    assert!(text(&unformatted).contains("ugly.rs"), "rustfmt names the file: {}", text(&unformatted));
    assert!(fairway(&["fmt"], &app).status.success());
    assert_eq!(std::fs::read_to_string(app.join("src/slices/ugly.rs")).unwrap(), "pub fn ugly() {}\n");
}

#[test]
fn refusals_write_nothing_and_say_why() {
    let root = tempfile::tempdir().unwrap();
    let outside = fairway(&["add", "command", "place-order"], root.path());
    assert_eq!(outside.status.code(), Some(1));
    assert!(text(&outside).contains("no Fairway app here"), "{}", text(&outside));

    for (name, rule) in [("Shop", "lowercase letters"), ("fairway", "reserved"), ("my_shop", "single '-'")] {
        let refused = fairway(&["new", name], root.path());
        assert_eq!(refused.status.code(), Some(1), "{name}");
        assert!(text(&refused).contains(rule), "{name}: {}", text(&refused));
    }
    assert!(files(root.path()).is_empty(), "nothing written");

    std::fs::create_dir(root.path().join("taken")).unwrap();
    std::fs::write(root.path().join("taken/notes.txt"), "mine").unwrap();
    let not_empty = fairway(&["new", "shop", "--path", "taken"], root.path());
    assert!(text(&not_empty).contains("exists and is not empty"), "{}", text(&not_empty));
    assert_eq!(files(root.path()), ["taken/notes.txt"]);

    assert!(fairway(&["new", "shop", "--fairway-version", "0.1.0"], root.path()).status.success());
    let app = root.path().join("shop");
    let manifest = std::fs::read_to_string(app.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("fairway = { version = \"0.1.0\" }"), "{manifest}");
    let again = fairway(&["add", "command", "say-hello"], &app);
    assert!(text(&again).contains("already exists; nothing written"), "{}", text(&again));
    let bad = fairway(&["add", "command", "Place_Order"], &app);
    assert!(text(&bad).contains("must be 1 to 64 characters"), "{}", text(&bad));
}
