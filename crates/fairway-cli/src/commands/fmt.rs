//! `fairway fmt [--check]`: rustfmt on every Rust file of the app around the current
//! directory, the slices included.

use crate::cli::FmtArgs;
use crate::error::{Error, Result};
use crate::scaffold::{self, format};

/// Formats (or checks) the app.
pub fn run(args: &FmtArgs) -> Result<()> {
    let here = std::env::current_dir().map_err(|source| Error::File { path: ".".into(), source })?;
    let app = scaffold::find_app(&here)?;
    let status =
        format::rustfmt(&app, args.check)?.status().map_err(|source| Error::Tool { program: "rustfmt", source })?;
    match (status.success(), args.check, status.code()) {
        (true, _, _) => Ok(()),
        // rustfmt --check exits with 1 when a file differs; other codes are its own failures.
        (false, true, Some(1)) => Err(Error::Unformatted),
        (false, _, _) => Err(Error::FormatFailed(status)),
    }
}
