//! `fairway dead-letters`: an automation's dead letters; replay one, or purge them.

use std::io::Write;

use reqwest::Method;
use serde_json::Value;

use super::Source;
use crate::cli::{DeadLetterAction, DeadLettersArgs};
use crate::error::{Error, Result};
use crate::format::{json_line, table};

/// Runs `fairway dead-letters`.
pub async fn run(source: &Source, args: &DeadLettersArgs, out: &mut dyn Write) -> Result<()> {
    let client = source.http("dead-letters")?;
    let name = args.automation.as_str();
    match &args.action {
        None => {
            let segments = ["automations", name, "dead-letters"];
            let letters = client.get(&segments, &[]).await?;
            let Some(letters) = letters.as_array() else {
                let url = client.url(&segments, &[]).to_string();
                return Err(Error::Protocol { url, why: "not a list of dead letters".into() });
            };
            if args.json {
                for letter in letters {
                    json_line(out, letter)?;
                }
                return Ok(());
            }
            if letters.is_empty() {
                writeln!(out, "automation {name:?} has no dead letters")?;
                return Ok(());
            }
            let cell = |letter: &Value, field: &str| match letter.get(field) {
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let rows: Vec<Vec<String>> = letters
                .iter()
                .map(|letter| vec![cell(letter, "position"), cell(letter, "attempts"), cell(letter, "error")])
                .collect();
            table(out, &["POSITION", "ATTEMPTS", "ERROR"], &rows)?;
        }
        Some(DeadLetterAction::Replay { position }) => {
            let position = position.to_string();
            let segments = ["automations", name, "dead-letters", position.as_str(), "replay"];
            client.json(Method::POST, &segments, &[]).await?;
            writeln!(out, "re-queued the dead letter of {position} for automation {name:?}")?;
        }
        Some(DeadLetterAction::Purge) => {
            let answer = client.json(Method::DELETE, &["automations", name, "dead-letters"], &[]).await?;
            let purged = answer.get("purged").map(Value::to_string).unwrap_or_else(|| "the".into());
            writeln!(out, "purged {purged} dead letters of automation {name:?}")?;
        }
    }
    Ok(())
}
