//! The projector lease: which app instance projects a view version. One instance at a time
//! holds the version's lease, in the store; it renews the lease with every batch it applies
//! (and on a timer while idle), the others try to take it every [`RETRY_EVERY`]. The lease
//! counts in the store's clock ([`DynTx::clock_micros`]), the same for every process.
//!
//! The lease saves work, it does not make the projection exactly-once: each batch re-reads
//! the checkpoint inside its transaction for that. A batch also re-reads the lease (and
//! the active version): a holder that lost either stops at its next batch, without
//! writing.

use std::time::Duration;

use super::ViewError;
use super::runtime::read_active;
use crate::backend::{DynTx, TxFailure};
use crate::format::{Lease, ViewKeys};

/// How long a lease lasts after its last renewal: a holder killed with SIGKILL is taken
/// over this long after its last batch, at most (plus [`RETRY_EVERY`]).
pub(super) const LEASE: Duration = Duration::from_secs(5);

/// How often an idle holder renews its lease.
pub(super) const RENEW_EVERY: Duration = Duration::from_secs(1);

/// How often an instance that does not hold the lease tries to take it.
pub(super) const RETRY_EVERY: Duration = Duration::from_secs(1);

/// What an instance found when it tried to take the lease.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Claim {
    /// It holds the lease now.
    Taken,
    /// Another instance holds an unexpired lease.
    Held {
        /// That instance.
        holder: String,
    },
    /// A newer version is active: this one is never projected again.
    Superseded {
        /// The active version.
        active: u32,
    },
}

/// Takes the lease of `keys`' version (of view `version`) for `holder`, unless another
/// instance holds an unexpired one or a newer version is active.
pub(super) async fn claim(tx: &dyn DynTx, keys: &ViewKeys, version: u32, holder: &str) -> Result<Claim, TxFailure> {
    if let Some(active) = read_active(tx, keys).await?.filter(|active| *active > version) {
        return Ok(Claim::Superseded { active });
    }
    let now = tx.clock_micros().await?;
    match read(tx, keys).await? {
        Some(lease) if lease.holder != holder && lease.until_micros > now => Ok(Claim::Held { holder: lease.holder }),
        _ => {
            write(tx, keys, holder, now);
            Ok(Claim::Taken)
        }
    }
}

/// Checks, inside a batch's transaction, that the batch may write: no newer version is
/// active and, when the batch runs for a `holder`, it still holds the lease (renewed here).
pub(super) async fn hold(
    tx: &dyn DynTx,
    keys: &ViewKeys,
    view: &'static str,
    version: u32,
    holder: Option<&str>,
) -> Result<(), ViewError> {
    if let Some(active) = read_active(tx, keys).await?.filter(|active| *active > version) {
        return Err(ViewError::Superseded { view, version, active });
    }
    let Some(holder) = holder else { return Ok(()) };
    match read(tx, keys).await? {
        Some(lease) if lease.holder == holder => {
            write(tx, keys, holder, tx.clock_micros().await?);
            Ok(())
        }
        other => Err(ViewError::LeaseLost { view, version, holder: other.map(|lease| lease.holder) }),
    }
}

/// Gives up the lease of `keys`' version if `holder` holds it (an instance stopping):
/// another instance takes it at its next try.
pub(super) async fn release(tx: &dyn DynTx, keys: &ViewKeys, holder: &str) -> Result<(), TxFailure> {
    if read(tx, keys).await?.is_some_and(|lease| lease.holder == holder) {
        tx.clear(&keys.lease);
    }
    Ok(())
}

/// The instance holding an unexpired lease of `keys`' version, if any.
pub(super) async fn holder(tx: &dyn DynTx, keys: &ViewKeys) -> Result<Option<String>, TxFailure> {
    let now = tx.clock_micros().await?;
    Ok(read(tx, keys).await?.filter(|lease| lease.until_micros > now).map(|lease| lease.holder))
}

async fn read(tx: &dyn DynTx, keys: &ViewKeys) -> Result<Option<Lease>, TxFailure> {
    Ok(tx.get(&keys.lease).await?.as_deref().and_then(Lease::decode))
}

fn write(tx: &dyn DynTx, keys: &ViewKeys, holder: &str, now: u64) {
    let until_micros = now.saturating_add(LEASE.as_micros() as u64);
    tx.set(&keys.lease, &Lease { until_micros, holder: holder.to_owned() }.encode());
}
