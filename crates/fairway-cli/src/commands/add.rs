//! `fairway add <kind> <name>`: one new slice file in the app around the current directory.

use std::io::Write;

use crate::cli::AddArgs;
use crate::error::{Error, Result};
use crate::scaffold;

/// Writes the slice and says where.
pub fn run(args: &AddArgs, out: &mut dyn Write) -> Result<()> {
    let here = std::env::current_dir().map_err(|source| Error::File { path: ".".into(), source })?;
    let app = scaffold::find_app(&here)?;
    let file = scaffold::add_slice(args.kind, &args.name, &app)?;
    scaffold::format::tidy(&app, std::slice::from_ref(&file));
    let shown = file.strip_prefix(&here).unwrap_or(&file);
    writeln!(
        out,
        "created {} (its test is inside; `cargo test` runs it, the app serves it at its next start)",
        shown.display()
    )?;
    Ok(())
}
