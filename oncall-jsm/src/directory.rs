//! People: e-mail ↔ Atlassian accountId, looked up one person at a time on the site and kept for
//! the connection's life (shared by every clone of a provider).
//!
//! - e-mail → accountId: `GET /rest/api/3/user/search?query=<email>&maxResults=10`, for each
//!   e-mail a create or an update names (Atlassian's Terraform provider asks for one hit, reference
//!   §4; the search matches prefixes, so [`SEARCH_RESULTS`] are asked for and the hit that shows
//!   exactly the e-mail is taken, never merely the first). A person no hit shows (a user whose
//!   e-mail the site hides, or no user at all) is unknown ([`Error::UnknownMember`], R5's exception); a host that
//!   knows such a person's accountId hands it over ([`crate::JsmBuilder::with_account_id`]).
//! - accountId → e-mail: `GET /rest/api/3/user?accountId=<id>`, for each accountId an override, a
//!   rotation or a timeline names that is not known yet. A hidden e-mail, or an account the site
//!   no longer has, is carried as a reserved e-mail ([`Responder::Account`]).
//!
//! Never a listing of all users (R10). Of a user only the accountId, the e-mail and the display
//! name are read and kept. An e-mail found unknown is asked again after [`UNKNOWN_RETRY`] (the
//! person may just have been added); everything else is kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use oncall_core::{Email, Error, Member};

use crate::client::{lock, Client, Request};
use crate::json::Node;
use crate::recipient::Responder;

/// How many users one search asks for: the site's search matches prefixes of e-mails and names
/// (`ann@example.com` also finds `ann@example.com.au` and an "Ann Example"), so the person is
/// the hit that shows exactly their e-mail, not the first hit.
pub const SEARCH_RESULTS: usize = 10;

/// How long an e-mail found unknown stays unknown before it is looked up again.
pub const UNKNOWN_RETRY: Duration = Duration::from_secs(60);

/// What a lookup of an e-mail found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    Account(String),
    /// Unknown since then, and why.
    Unknown(Instant, String),
}

/// A person as the site shows them: only what the sync needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Person {
    /// `None`: the site hides it, or the account is gone.
    pub email: Option<Email>,
    pub name: Option<String>,
}

/// The connection's people.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    by_email: Mutex<HashMap<Email, Found>>,
    by_account: Mutex<HashMap<String, Person>>,
    /// Lookups one at a time: two tasks asking for one person make one call.
    lookups: tokio::sync::Mutex<()>,
}

impl Directory {
    /// A directory that knows these people already (the host handed their accountIds over).
    pub(crate) fn with_known(known: &[(Email, String)]) -> Directory {
        let directory = Directory::default();
        for (email, account) in known {
            directory.learn(account, Some(email.clone()), None);
        }
        directory
    }

    fn learn(&self, account: &str, email: Option<Email>, name: Option<String>) {
        if let Some(email) = &email {
            lock(&self.by_email).insert(email.clone(), Found::Account(account.to_owned()));
        }
        let mut by_account = lock(&self.by_account);
        let person = by_account.entry(account.to_owned()).or_insert(Person {
            email: None,
            name: None,
        });
        if email.is_some() {
            person.email = email;
        }
        if name.is_some() {
            person.name = name;
        }
    }

    /// The accountId of a person by e-mail, looked up once. An unknown or hidden person is
    /// [`Error::UnknownMember`].
    pub(crate) async fn account_of(&self, client: &Client, email: &Email) -> Result<String, Error> {
        if let Some(found) = self.known_email(email) {
            return found;
        }
        let _one_at_a_time = self.lookups.lock().await;
        if let Some(found) = self.known_email(email) {
            return found;
        }
        let request = Request::site(&["user", "search"])
            .query("query", email.as_str())
            .query("maxResults", SEARCH_RESULTS.to_string());
        let answer = client.send(&request).await?;
        let found = pick(&Node::root(&answer.body).items()?, email)?;
        if let Ok((account, name)) = &found {
            self.learn(account, Some(email.clone()), name.clone());
        }
        match found {
            Ok((account, _)) => Ok(account),
            Err(why) => {
                lock(&self.by_email)
                    .insert(email.clone(), Found::Unknown(Instant::now(), why.clone()));
                Err(unknown(email, &why))
            }
        }
    }

    fn known_email(&self, email: &Email) -> Option<Result<String, Error>> {
        match lock(&self.by_email).get(email)? {
            Found::Account(account) => Some(Ok(account.clone())),
            Found::Unknown(at, why) if at.elapsed() < UNKNOWN_RETRY => {
                Some(Err(unknown(email, why)))
            }
            Found::Unknown(..) => None,
        }
    }

    /// The person with this accountId, looked up once.
    pub(crate) async fn person(&self, client: &Client, account: &str) -> Result<Person, Error> {
        if let Some(person) = self.known_account(account) {
            return Ok(person);
        }
        let _one_at_a_time = self.lookups.lock().await;
        if let Some(person) = self.known_account(account) {
            return Ok(person);
        }
        let request = Request::site(&["user"]).query("accountId", account);
        let person = match client.send(&request).await {
            Ok(answer) => {
                let user = Node::root(&answer.body);
                Person {
                    email: user
                        .opt_str("emailAddress")?
                        .and_then(|e| Email::parse(e).ok()),
                    name: user.opt_str("displayName")?.map(str::to_owned),
                }
            }
            // An account the site no longer has (a deleted user an old override still names).
            Err(Error::NotFound { .. }) => Person {
                email: None,
                name: None,
            },
            Err(e) => return Err(e),
        };
        self.learn(account, person.email.clone(), person.name.clone());
        Ok(person)
    }

    fn known_account(&self, account: &str) -> Option<Person> {
        lock(&self.by_account).get(account).cloned()
    }

    /// The e-mail standing for an accountId in the core's model: the person's, or the reserved
    /// one of [`Responder::Account`] when the site does not say.
    pub(crate) async fn email_of(
        &self,
        client: &Client,
        account: &str,
    ) -> Result<Option<Email>, Error> {
        let person = self.person(client, account).await?;
        Ok(match person.email {
            Some(email) => Some(email),
            None => Responder::Account(account.to_owned()).email(),
        })
    }

    /// A member for the schedule listing: e-mail and display name.
    pub(crate) async fn member_of(
        &self,
        client: &Client,
        account: &str,
    ) -> Result<Option<Member>, Error> {
        let person = self.person(client, account).await?;
        let Some(email) = self.email_of(client, account).await? else {
            return Ok(None);
        };
        let name = person.name.unwrap_or_else(|| email.to_string());
        Ok(Some(Member::new(email, name)))
    }
}

/// The user among a search's hits that shows exactly `email` (accountId and display name), or why
/// there is none: no hit, hits that are all someone else, or a hit whose e-mail the site hides.
fn pick(
    users: &[Node<'_>],
    email: &Email,
) -> Result<Result<(String, Option<String>), String>, Error> {
    let mut hidden = None;
    for user in users {
        let account = user.field("accountId")?.str()?;
        let shown = user
            .opt_str("emailAddress")?
            .and_then(|e| Email::parse(e).ok());
        match shown {
            Some(shown) if shown == *email => {
                let name = user.opt_str("displayName")?.map(str::to_owned);
                return Ok(Ok((account.to_owned(), name)));
            }
            Some(_) => {}
            None => {
                hidden.get_or_insert_with(|| account.to_owned());
            }
        }
    }
    Ok(Err(match (users.is_empty(), hidden) {
        (true, _) => "no user of the site has this e-mail".to_owned(),
        (false, Some(account)) => format!(
            "no user the site's search found shows this e-mail, and it hides the e-mail of \
             {account}: if that is the person, hand the accountId over with \
             JsmBuilder::with_account_id"
        ),
        (false, None) => format!(
            "the site's search found {} other user(s) for this e-mail, none with it exactly",
            users.len()
        ),
    }))
}

fn unknown(email: &Email, why: &str) -> Error {
    Error::UnknownMember {
        email: email.clone(),
        message: format!("JSM: {why}"),
    }
}
