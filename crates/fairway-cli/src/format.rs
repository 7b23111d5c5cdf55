//! Output for people and for programs: tables, JSON lines, byte counts, progress bars.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::Value;

/// Widest payload shown in a table row, in characters.
pub const PAYLOAD_WIDTH: usize = 60;
/// Widest document shown in a table row, in characters.
pub const DOC_WIDTH: usize = 100;

/// Writes `value` as one line of compact JSON.
pub fn json_line(out: &mut dyn Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

/// `text` cut to `max` characters, the last one an ellipsis when cut.
pub fn abbreviate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// An event's payload in a table cell: its JSON when the app decoded it, else its bytes in
/// hex (`0x…`), abbreviated.
pub fn payload_cell(event: &Value) -> String {
    let text = match (event.get("payload"), event.get("payload_hex").and_then(Value::as_str)) {
        (Some(payload), _) => payload.to_string(),
        (None, Some(hex)) => format!("0x{hex}"),
        (None, None) => String::new(),
    };
    abbreviate(&text, PAYLOAD_WIDTH)
}

/// A table of events (position, type, tags, payload), printed row by row so that it can
/// follow the log; the header comes with the first row.
#[derive(Debug, Default)]
pub struct EventTable {
    started: bool,
}

impl EventTable {
    /// Writes one event (the admin API's JSON shape) as a row.
    pub fn row(&mut self, out: &mut dyn Write, event: &Value) -> std::io::Result<()> {
        if !self.started {
            self.started = true;
            writeln!(out, "{:<24}  {:<24}  {:<32}  PAYLOAD", "POSITION", "TYPE", "TAGS")?;
        }
        let text = |field: &str| event.get(field).and_then(Value::as_str).unwrap_or_default().to_owned();
        let tags: Vec<&str> =
            event.get("tags").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        writeln!(out, "{:<24}  {:<24}  {:<32}  {}", text("position"), text("type"), tags.join(","), payload_cell(event))
    }

    /// Whether any row was written.
    pub fn is_empty(&self) -> bool {
        !self.started
    }
}

/// Writes rows under a header, each column as wide as its widest cell (the last one left
/// ragged).
pub fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> std::io::Result<()> {
        let cells: Vec<&str> = cells.collect();
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, &mut header.iter().copied())?;
    for row in rows {
        line(out, &mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

/// A byte count for people: `512 B`, `1.50 KiB`, `64.00 MiB` (indicatif's binary units).
pub fn human_bytes(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

/// A progress bar on stderr of `len` steps, hidden when stderr is not a terminal.
pub fn progress_bar(len: u64, template: &str) -> ProgressBar {
    let target =
        if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    bar.set_style(ProgressStyle::with_template(template).expect("valid template").progress_chars("=> "));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        assert_eq!(abbreviate("short", 10), "short");
        assert_eq!(abbreviate("abcdefghij", 5), "abcd…");
        assert_eq!(abbreviate("ééééé", 3), "éé…");
    }

    #[test]
    fn payload_cells_show_json_or_hex() {
        assert_eq!(payload_cell(&json!({"payload": {"a": 1}})), r#"{"a":1}"#);
        assert_eq!(payload_cell(&json!({"payload_hex": "c1ff"})), "0xc1ff");
        assert_eq!(payload_cell(&json!({"payload": "x".repeat(100)})).chars().count(), PAYLOAD_WIDTH);
    }

    #[test]
    fn tables_align_their_columns() {
        let mut out = Vec::new();
        let rows = vec![vec!["a".to_owned(), "1".to_owned()], vec!["long name".to_owned(), "2".to_owned()]];
        table(&mut out, &["NAME", "N"], &rows).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "NAME       N\na          1\nlong name  2\n");
    }

    #[test]
    fn byte_counts_read_as_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(64 << 20), "64.00 MiB");
    }
}
