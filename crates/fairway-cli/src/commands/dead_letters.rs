//! `fairway dead-letters`: an automation's dead letters; replay one, or purge them. From the
//! running app, or in a stopped app's store (a replayed job runs when the app starts).

use std::io::Write;

use reqwest::Method;

use super::Source;
use fairway_core::DeadLetter;
use fairway_core::app::replies::{Purged, Replayed};

use crate::cli::{DeadLetterAction, DeadLettersArgs};
use crate::error::{Error, Result};
use crate::format::{json_line, table};
use crate::local::Local;

/// Runs `fairway dead-letters`.
pub async fn run(source: &Source, args: &DeadLettersArgs, out: &mut dyn Write) -> Result<()> {
    let name = args.automation.as_str();
    match &args.action {
        None => {
            let letters = list(source, name).await?;
            if args.json {
                for letter in &letters {
                    json_line(out, letter)?;
                }
                return Ok(());
            }
            if letters.is_empty() {
                writeln!(out, "automation {name:?} has no dead letters")?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = letters
                .iter()
                .map(|letter| vec![letter.position.to_string(), letter.attempts.to_string(), letter.error.clone()])
                .collect();
            table(out, &["POSITION", "ATTEMPTS", "ERROR"], &rows)?;
        }
        Some(DeadLetterAction::Replay { position }) => {
            match source {
                Source::Http(client) => {
                    let position = position.to_string();
                    let segments = ["automations", name, "dead-letters", position.as_str(), "replay"];
                    let _: Replayed = client.reply(Method::POST, &segments, &[]).await?;
                }
                Source::Local(local) => {
                    known(local, name).await?;
                    if !local.state().replay(name, *position).await? {
                        let message = format!("automation {name:?} has no dead letter at {position}");
                        return Err(Error::NotFound { message });
                    }
                }
            }
            writeln!(out, "re-queued the dead letter of {position} for automation {name:?}")?;
        }
        Some(DeadLetterAction::Purge) => {
            let purged = match source {
                Source::Http(client) => {
                    let answer: Purged =
                        client.reply(Method::DELETE, &["automations", name, "dead-letters"], &[]).await?;
                    answer.purged.to_string()
                }
                Source::Local(local) => {
                    known(local, name).await?;
                    local.state().purge(name).await?.to_string()
                }
            };
            writeln!(out, "purged {purged} dead letters of automation {name:?}")?;
        }
    }
    Ok(())
}

/// The dead letters, from the app's answer or the store.
async fn list(source: &Source, name: &str) -> Result<Vec<DeadLetter>> {
    match source {
        Source::Http(client) => {
            let segments = ["automations", name, "dead-letters"];
            let answer = client.get(&segments, &[]).await?;
            serde_json::from_value(answer).map_err(|err| Error::Protocol {
                url: client.url(&segments, &[]).to_string(),
                why: format!("not a list of dead letters: {err}"),
            })
        }
        Source::Local(local) => {
            known(local, name).await?;
            Ok(local.state().dead_letters(name).await?)
        }
    }
}

/// Refuses an automation the store holds no queue of, naming those it holds.
async fn known(local: &Local, name: &str) -> Result<()> {
    let names: Vec<String> = local.state().automations().await?.into_iter().map(|a| a.name).collect();
    if names.iter().any(|n| n == name) {
        return Ok(());
    }
    let known = if names.is_empty() { "none".to_owned() } else { names.join(", ") };
    Err(Error::NotFound {
        message: format!("no automation {name:?} in {} (automations there: {known})", local.dir().display()),
    })
}
