//! One life-cycle operation per container at a time (create, start, delete of its task,
//! delete of the container): a second waits for the first and then sees what it did,
//! so two creates cannot both pass the check for an existing task. Kill, Wait and the
//! read-only calls take no lock: a Wait lasts as long as the container runs, and a Kill
//! must reach a task whatever else is under way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

type Key = (String, String);

#[derive(Default)]
pub struct ContainerLocks {
    locks: Mutex<HashMap<Key, Arc<Mutex<()>>>>,
}

impl ContainerLocks {
    /// Runs `f` holding container `ns/id`'s lock.
    pub fn run<T>(&self, ns: &str, id: &str, f: impl FnOnce() -> T) -> T {
        let key = (ns.to_string(), id.to_string());
        let lock = self.map().entry(key.clone()).or_default().clone();
        let out = {
            let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
            f()
        };
        let mut map = self.map();
        // Only the map's and ours: nobody holds it or waits for it.
        if Arc::strong_count(&lock) == 2 {
            map.remove(&key);
        }
        out
    }

    fn map(&self) -> MutexGuard<'_, HashMap<Key, Arc<Mutex<()>>>> {
        self.locks.lock().unwrap_or_else(|p| p.into_inner())
    }
}
