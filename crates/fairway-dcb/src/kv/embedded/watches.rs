//! Watches on keys: a commit wakes the watches on the keys it wrote, and no other.
//!
//! A watch is armed by registering it under each of its keys. The applier makes a group
//! visible first and then fires the watches on the keys the group wrote, all under one lock:
//! a watch registered before that lookup is fired, and a caller that armed its watch after it
//! reads the group (already visible) when it looks after arming. So no change after arming
//! is missed, and a change before arming wakes it at most once more (spuriously).
//!
//! A watch that is dropped unfired takes its keys out again, so an abandoned wait (a
//! timeout, a cancelled task) leaves nothing behind.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use tokio::sync::oneshot;

use super::applier::Resolved;
use crate::error::StorageError;
use crate::kv::Watch;

/// Why a watch fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fired {
    /// One of its keys may have changed.
    Changed,
    /// The engine closed.
    Closed,
}

/// The armed watches of one engine.
#[derive(Default)]
pub(crate) struct Watches {
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    next: u64,
    /// The watches armed on each key.
    by_key: BTreeMap<Vec<u8>, Vec<u64>>,
    /// Each armed watch: its keys and how to fire it.
    armed: HashMap<u64, Armed>,
    closed: bool,
}

struct Armed {
    keys: Vec<Vec<u8>>,
    fire: oneshot::Sender<Fired>,
}

impl Registry {
    /// Takes watch `id` out of the registry; returns it if it was armed.
    fn take(&mut self, id: u64) -> Option<Armed> {
        let armed = self.armed.remove(&id)?;
        for key in &armed.keys {
            if let Some(ids) = self.by_key.get_mut(key) {
                ids.retain(|other| *other != id);
                if ids.is_empty() {
                    self.by_key.remove(key);
                }
            }
        }
        Some(armed)
    }

    /// Fires every watch.
    fn fire_all(&mut self, why: Fired) {
        self.by_key.clear();
        for (_, armed) in self.armed.drain() {
            let _ = armed.fire.send(why);
        }
    }
}

impl Watches {
    /// Arms a watch on `keys`: the returned future completes once a commit wrote one of them
    /// (or the engine is poisoned), and fails with [`StorageError::Closed`] once the engine
    /// closed.
    pub(crate) fn arm(self: &Arc<Self>, keys: Vec<Vec<u8>>) -> Result<Watch, StorageError> {
        let (fire, fired) = oneshot::channel();
        let id = {
            let mut registry = self.registry.lock().expect("watch registry lock");
            if registry.closed {
                return Err(StorageError::Closed);
            }
            let id = registry.next;
            registry.next += 1;
            for key in &keys {
                let ids = registry.by_key.entry(key.clone()).or_default();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            registry.armed.insert(id, Armed { keys, fire });
            id
        };
        let disarm = Disarm { watches: self.clone(), id };
        Ok(async move {
            let _disarm = disarm;
            match fired.await {
                Ok(Fired::Changed) => Ok(()),
                Ok(Fired::Closed) | Err(_) => Err(StorageError::Closed),
            }
        }
        .boxed())
    }

    /// Fires the watches on every key `writes` wrote (call once they are visible).
    pub(crate) fn fire_written(&self, writes: &[Resolved]) {
        let mut registry = self.registry.lock().expect("watch registry lock");
        if registry.armed.is_empty() {
            return;
        }
        let mut hit = Vec::new();
        for write in writes {
            match write {
                Resolved::ClearRange(begin, end) => {
                    if begin < end {
                        let range = (Bound::Included(begin.as_slice()), Bound::Excluded(end.as_slice()));
                        hit.extend(registry.by_key.range::<[u8], _>(range).flat_map(|(_, ids)| ids.iter().copied()));
                    }
                }
                other => hit.extend(registry.by_key.get(other.key()).into_iter().flatten().copied()),
            }
        }
        for id in hit {
            if let Some(armed) = registry.take(id) {
                let _ = armed.fire.send(Fired::Changed);
            }
        }
    }

    /// Fires every watch, as a spurious wake-up (the engine stopped accepting writes: its
    /// waiters look again and find out).
    pub(crate) fn wake_all(&self) {
        self.registry.lock().expect("watch registry lock").fire_all(Fired::Changed);
    }

    /// Fails every watch with [`StorageError::Closed`], and every watch armed later.
    pub(crate) fn close(&self) {
        let mut registry = self.registry.lock().expect("watch registry lock");
        registry.closed = true;
        registry.fire_all(Fired::Closed);
    }

    /// Watches armed and not yet fired or dropped.
    #[cfg(test)]
    fn armed(&self) -> usize {
        self.registry.lock().expect("watch registry lock").armed.len()
    }
}

/// Takes an unfired watch out of the registry when its future is dropped.
struct Disarm {
    watches: Arc<Watches>,
    id: u64,
}

impl Drop for Disarm {
    fn drop(&mut self) {
        if let Ok(mut registry) = self.watches.registry.lock() {
            registry.take(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &[u8]) -> Resolved {
        Resolved::Set(key.to_vec(), b"v".to_vec())
    }

    #[tokio::test]
    async fn a_dropped_watch_leaves_nothing_behind_and_a_fired_one_neither() {
        let watches = Arc::new(Watches::default());
        let dropped = watches.arm(vec![b"a".to_vec(), b"b".to_vec()]).unwrap();
        let fired = watches.arm(vec![b"a".to_vec(), b"a".to_vec()]).unwrap();
        assert_eq!(watches.armed(), 2);
        drop(dropped);
        assert_eq!(watches.armed(), 1);
        watches.fire_written(&[set(b"a")]);
        assert_eq!(watches.armed(), 0);
        assert!(watches.registry.lock().unwrap().by_key.is_empty(), "no key keeps a fired or dropped watch");
        assert!(fired.await.is_ok());
    }

    #[tokio::test]
    async fn closing_fails_armed_watches_and_refuses_new_ones() {
        let watches = Arc::new(Watches::default());
        let armed = watches.arm(vec![b"a".to_vec()]).unwrap();
        watches.close();
        assert!(matches!(armed.await, Err(StorageError::Closed)));
        assert!(matches!(watches.arm(vec![b"a".to_vec()]), Err(StorageError::Closed)));
    }
}
