//! What a process derives from a device's record and keeps between its requests, stamped with
//! the device's `policy_revision` it was read at. Every policy assignment to the device's group
//! and every attestation of it bump that revision in their own transaction, on any Command
//! process on the database, so an entry is good exactly as long as the revision a request
//! reads (or a writer's transaction finds) is the one it carries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use enigm_types::DeviceHandle;

/// The most devices a cache keeps; beyond it, it starts over (a fleet larger than this costs
/// a reload per device now and then, never a wrong answer).
const MAX_CACHED_DEVICES: usize = 100_000;

/// A value and the `policy_revision` it was read at.
#[derive(Debug)]
pub struct Cached<V> {
    pub value: Arc<V>,
    pub revision: i64,
}

impl<V> Clone for Cached<V> {
    fn clone(&self) -> Self {
        Cached {
            value: self.value.clone(),
            revision: self.revision,
        }
    }
}

/// One [`Cached`] value per device, bounded. A poisoned lock reads as empty and stores
/// nothing: the caller then reads the database, as on a miss.
pub struct RevisionCache<V> {
    entries: Mutex<HashMap<DeviceHandle, Cached<V>>>,
}

impl<V> Default for RevisionCache<V> {
    fn default() -> Self {
        RevisionCache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<V> RevisionCache<V> {
    /// The device's entry, whatever its revision (for a caller that checks it later, in a
    /// transaction).
    pub fn latest(&self, handle: &DeviceHandle) -> Option<Cached<V>> {
        self.entries.lock().ok()?.get(handle).cloned()
    }

    /// The device's value if it was read at `revision`.
    pub fn at(&self, handle: &DeviceHandle, revision: i64) -> Option<Arc<V>> {
        self.latest(handle)
            .filter(|cached| cached.revision == revision)
            .map(|cached| cached.value)
    }

    pub fn insert(&self, handle: DeviceHandle, cached: Cached<V>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_CACHED_DEVICES {
                entries.clear();
            }
            entries.insert(handle, cached);
        }
    }

    pub fn forget(&self, handle: &DeviceHandle) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(handle);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(n: u8) -> DeviceHandle {
        DeviceHandle::from_digest(&[n; 20])
    }

    #[test]
    fn an_entry_is_good_at_its_revision_only() {
        let cache = RevisionCache::<&str>::default();
        assert!(cache.latest(&handle(1)).is_none());
        cache.insert(
            handle(1),
            Cached {
                value: Arc::new("read at 3"),
                revision: 3,
            },
        );
        assert_eq!(cache.at(&handle(1), 3).as_deref(), Some(&"read at 3"));
        assert!(cache.at(&handle(1), 4).is_none());
        assert!(cache.at(&handle(2), 3).is_none());
        assert_eq!(
            cache.latest(&handle(1)).map(|cached| cached.revision),
            Some(3)
        );
        cache.forget(&handle(1));
        assert!(cache.latest(&handle(1)).is_none());
    }
}
