//! Resource subscriptions, counted across sessions.
//!
//! Backends are shared, so a backend sees one subscription per resource however many client
//! sessions want it: the first session to subscribe makes mcpmux subscribe, the last one to
//! leave (unsubscribing, or ending) makes it unsubscribe. `notifications/resources/updated`
//! then goes to exactly the sessions that subscribed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// `(backend, backend URI)`.
pub type Key = (String, String);

/// Who is subscribed to what.
#[derive(Default)]
pub struct Subscriptions {
    by_resource: Mutex<HashMap<Key, BTreeSet<String>>>,
}

/// What a change means for the backend.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// The first subscriber: subscribe on the backend.
    First,
    /// The last subscriber left: unsubscribe on the backend.
    Last,
    /// Nothing to tell the backend.
    None,
}

impl Subscriptions {
    /// Adds `session` to `key`'s subscribers.
    pub fn add(&self, key: &Key, session: &str) -> Change {
        let mut map = self.lock();
        let set = map.entry(key.clone()).or_default();
        let was_empty = set.is_empty();
        set.insert(session.to_owned());
        if was_empty { Change::First } else { Change::None }
    }

    /// Removes `session` from `key`'s subscribers.
    pub fn remove(&self, key: &Key, session: &str) -> Change {
        let mut map = self.lock();
        let Some(set) = map.get_mut(key) else { return Change::None };
        if !set.remove(session) {
            return Change::None;
        }
        if set.is_empty() {
            map.remove(key);
            Change::Last
        } else {
            Change::None
        }
    }

    /// Removes a session everywhere; returns the resources nobody wants any more.
    pub fn remove_session(&self, session: &str) -> Vec<Key> {
        let mut map = self.lock();
        let mut emptied = Vec::new();
        map.retain(|key, set| {
            set.remove(session);
            if set.is_empty() {
                emptied.push(key.clone());
                false
            } else {
                true
            }
        });
        emptied
    }

    /// Drops every subscription on `backend` (its connection was replaced); returns what was
    /// subscribed so it can be subscribed again.
    pub fn resources_of(&self, backend: &str) -> Vec<String> {
        self.lock().keys().filter(|(b, _)| b == backend).map(|(_, u)| u.clone()).collect()
    }

    /// The sessions subscribed to `key`.
    pub fn subscribers(&self, key: &Key) -> Vec<String> {
        self.lock().get(key).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, BTreeSet<String>>> {
        self.by_resource.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_subscribers_across_sessions() {
        let subs = Subscriptions::default();
        let k = ("b".to_owned(), "file:///x".to_owned());
        assert_eq!(subs.add(&k, "s1"), Change::First);
        assert_eq!(subs.add(&k, "s2"), Change::None);
        assert_eq!(subs.add(&k, "s2"), Change::None);
        assert_eq!(subs.subscribers(&k), ["s1", "s2"]);
        assert_eq!(subs.remove(&k, "s1"), Change::None);
        assert_eq!(subs.remove(&k, "s1"), Change::None);
        assert_eq!(subs.remove_session("s2"), vec![k.clone()]);
        assert!(subs.subscribers(&k).is_empty());
        assert_eq!(subs.remove(&k, "s2"), Change::None);
    }
}
