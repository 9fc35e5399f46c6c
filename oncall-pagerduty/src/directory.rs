//! The account's user directory (id ↔ email, case-insensitive through [`Email`]), shared by every
//! clone of a provider and so by every destination on its connection.
//!
//! The core's `Provider` has no notion of a sync run, so "once per run" is kept with a freshness
//! window: a directory younger than the window (60 s by default, `with_directory_ttl`) is reused, an
//! older one is read again. Loads are serialised by an async mutex: destinations that ask at once wait
//! for one load instead of each making their own. A create naming an email the directory does not
//! know may reload it once, if it is older than [`UNKNOWN_EMAIL_REFRESH`] (someone may just have
//! been added to the account); a person still unknown then is reported, not guessed.
//!
//! PagerDuty lists at most 10,000 users (classic pagination: `offset + limit` ≤ 10000). The
//! directory of a larger account holds the first 10,000 and says it is incomplete; an email it
//! does not hold is then looked up with `GET /users?query=<email>` (an exact, case-insensitive
//! match among the answers), and remembered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oncall_core::{Email, Member};

use crate::models::User;

/// How old a directory must be before an unknown email on create triggers a reload.
pub(crate) const UNKNOWN_EMAIL_REFRESH: Duration = Duration::from_secs(5);

/// Users by id and by email.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    pub(crate) by_id: HashMap<String, Member>,
    pub(crate) by_email: HashMap<Email, String>,
    /// Whether every user of the account is here (false past PagerDuty's 10,000 listing cap).
    pub(crate) complete: bool,
}

impl Directory {
    /// Indexes users; one whose email is not an address, or repeats another's in a different case,
    /// cannot be told apart by email and is left out (the first one keeps the email).
    pub(crate) fn from_users(users: Vec<User>, complete: bool) -> Directory {
        let mut directory = Directory {
            complete,
            ..Directory::default()
        };
        for user in users {
            let Ok(email) = Email::parse(&user.email) else {
                continue;
            };
            if directory.by_email.contains_key(&email) {
                continue;
            }
            directory.by_email.insert(email.clone(), user.id.clone());
            let name = user.name.unwrap_or_else(|| email.to_string());
            directory.by_id.insert(user.id, Member::new(email, name));
        }
        directory
    }
}

#[derive(Debug)]
struct Loaded {
    at: Instant,
    directory: Arc<Directory>,
}

/// The shared cache: the last directory read, and users looked up one by one since (ids the
/// listing did not have, e.g. deleted users still named by old overrides).
#[derive(Debug)]
pub(crate) struct DirectoryCache {
    pub(crate) ttl: Duration,
    loaded: tokio::sync::Mutex<Option<Loaded>>,
    pub(crate) extra: Mutex<HashMap<String, Member>>,
    /// Emails found by `query` (accounts past the listing cap).
    pub(crate) found: Mutex<HashMap<Email, String>>,
    loads: AtomicUsize,
}

impl DirectoryCache {
    pub(crate) fn new(ttl: Duration) -> DirectoryCache {
        DirectoryCache {
            ttl,
            loaded: tokio::sync::Mutex::new(None),
            extra: Mutex::new(HashMap::new()),
            found: Mutex::new(HashMap::new()),
            loads: AtomicUsize::new(0),
        }
    }

    /// The directory if one younger than `max_age` is cached, else the result of `load`, cached.
    pub(crate) async fn get<F, Fut>(
        &self,
        max_age: Duration,
        load: F,
    ) -> Result<Arc<Directory>, oncall_core::Error>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Directory, oncall_core::Error>>,
    {
        let mut slot = self.loaded.lock().await;
        if let Some(loaded) = slot.as_ref() {
            if loaded.at.elapsed() <= max_age {
                return Ok(Arc::clone(&loaded.directory));
            }
        }
        let directory = Arc::new(load().await?);
        self.loads.fetch_add(1, Ordering::Relaxed);
        *slot = Some(Loaded {
            at: Instant::now(),
            directory: Arc::clone(&directory),
        });
        Ok(directory)
    }

    /// How many times the directory was read from the vendor.
    pub(crate) fn loads(&self) -> usize {
        self.loads.load(Ordering::Relaxed)
    }

    /// A user looked up by id.
    pub(crate) fn extra(&self, id: &str) -> Option<Member> {
        self.extra
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    pub(crate) fn remember(&self, id: String, member: Member) {
        self.extra
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, member);
    }

    /// A user id found by email with `query`.
    pub(crate) fn found(&self, email: &Email) -> Option<String> {
        self.found
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(email)
            .cloned()
    }

    /// Remembers a user found by `query`, by id and by email.
    pub(crate) fn remember_found(&self, id: String, member: Member) {
        self.found
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(member.email.clone(), id.clone());
        self.remember(id, member);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, email: &str) -> User {
        User {
            id: id.into(),
            name: Some(id.to_lowercase()),
            email: email.into(),
        }
    }

    #[test]
    fn emails_are_case_insensitive_and_unique() {
        let d = Directory::from_users(
            vec![
                user("P1", "Ann.Lee@Example.com"),
                user("P2", "ann.lee@example.COM"),
                user("P3", "not-an-address"),
                user("P4", "bob@example.com"),
            ],
            true,
        );
        assert_eq!(
            d.by_email
                .get(&Email::parse("ANN.LEE@example.com").unwrap()),
            Some(&"P1".to_owned())
        );
        assert_eq!(d.by_id.len(), 2);
        assert_eq!(d.by_id["P1"].email.as_str(), "ann.lee@example.com");
        assert!(!d.by_id.contains_key("P3"));
    }
}
