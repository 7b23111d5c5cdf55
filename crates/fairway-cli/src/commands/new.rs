//! `fairway new <name>`: a new app in a directory of its own.

use std::io::Write;
use std::path::PathBuf;

use crate::cli::NewArgs;
use crate::error::Result;
use crate::scaffold::{self, FairwaySource};

/// Writes the app and says what to do next.
pub fn run(args: &NewArgs, out: &mut dyn Write) -> Result<()> {
    let dir = args.path.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    let fairway = match (&args.fairway_path, &args.git, &args.fairway_version) {
        (Some(path), _, _) => FairwaySource::Path(std::path::absolute(path).unwrap_or_else(|_| path.clone())),
        (_, Some(url), _) => FairwaySource::Git { url: url.clone(), branch: args.branch.clone() },
        (_, _, Some(version)) => FairwaySource::Version(version.clone()),
        _ => FairwaySource::default_for_this_tool(),
    };
    let written = scaffold::new_app(&args.name, &dir, &fairway)?;
    let root = std::path::absolute(&dir).unwrap_or_else(|_| dir.clone());
    let sources: Vec<PathBuf> = written
        .iter()
        .filter(|file| file.extension().is_some_and(|ext| ext == "rs"))
        .map(|file| root.join(file))
        .collect();
    scaffold::format::tidy(&root, &sources);
    writeln!(out, "created the app {} in {} ({} files):", args.name, dir.display(), written.len())?;
    for file in &written {
        writeln!(out, "  {}", file.display())?;
    }
    writeln!(
        out,
        "next:\n  cd {}\n  cargo test    # the example slice's test\n  cargo run     # serves on http://127.0.0.1:8080",
        dir.display()
    )?;
    writeln!(out, "  fairway add command <name>   # or view, automation")?;
    Ok(())
}
