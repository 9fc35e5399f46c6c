//! [`Responder`]: who a JSM override or timeline period names, and the reserved e-mails that carry
//! the responders who are not a person with a known e-mail through the core's model, which knows
//! people only by e-mail.

use oncall_core::Email;

/// The domain of the reserved e-mails: `.invalid` is reserved by RFC 2606 and never delivers
/// mail, so no person of any site has such an address.
pub const RESERVED_DOMAIN: &str = "jsm.invalid";

/// Who a JSM override or timeline period puts on call.
///
/// The core's [`Override`](oncall_core::Override) names a member by e-mail, so the others travel
/// as reserved, reversible e-mails in the [`RESERVED_DOMAIN`]:
///
/// - `nobody@jsm.invalid` for `{"type": "noone"}`;
/// - `account.<accountId>@jsm.invalid` for a user whose e-mail the site hides (or who is gone):
///   the adapter cannot say who it is, but can write it back as that accountId;
/// - `team.<id>@jsm.invalid` and `escalation.<id>@jsm.invalid` for the other responder types a
///   timeline names.
///
/// An override of any of them is listed like any other, so a sync clears a person's override from
/// the fresh region (R2) or cuts it keeping who it is; none of them is ever a host's member, so
/// none is ever adopted or written as one of ours.
///
/// ```
/// use oncall_jsm::Responder;
/// let hidden = Responder::Account("712020:a933b550-3862-441c-ac99-e78ae6dacbcb".into());
/// let email = hidden.email().unwrap();
/// assert_eq!(email.as_str(), "account.712020:a933b550-3862-441c-ac99-e78ae6dacbcb@jsm.invalid");
/// assert_eq!(Responder::from_email(&email), hidden);
/// assert_eq!(Responder::Nobody.email().unwrap().as_str(), "nobody@jsm.invalid");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Responder {
    /// A person by e-mail (the adapter maps it to and from the accountId).
    User(Email),
    /// A person known only by accountId: the site hides the e-mail, or the account is gone.
    Account(String),
    /// Nobody (`{"type": "noone"}`).
    Nobody,
    /// A team, by id.
    Team(String),
    /// An escalation, by id.
    Escalation(String),
}

impl Responder {
    /// The e-mail that stands for this responder in the core's model. `None` for an id that
    /// would not survive the trip (e-mails are lower-cased and hold no white space or `@`).
    pub fn email(&self) -> Option<Email> {
        let reserved = |local: String| {
            Email::parse(&format!("{local}@{RESERVED_DOMAIN}"))
                .ok()
                .filter(|e| Responder::from_email(e) == *self)
        };
        match self {
            Responder::User(email) => Some(email.clone()),
            Responder::Nobody => reserved("nobody".to_owned()),
            Responder::Account(id) => reserved(format!("account.{id}")),
            Responder::Team(id) => reserved(format!("team.{id}")),
            Responder::Escalation(id) => reserved(format!("escalation.{id}")),
        }
    }

    /// The responder an e-mail stands for: a reserved one, or a person.
    pub fn from_email(email: &Email) -> Responder {
        let reserved = email
            .as_str()
            .rsplit_once('@')
            .filter(|(_, domain)| *domain == RESERVED_DOMAIN)
            .map(|(local, _)| local);
        let Some(local) = reserved else {
            return Responder::User(email.clone());
        };
        if local == "nobody" {
            return Responder::Nobody;
        }
        let tagged = |prefix: &str| {
            local
                .strip_prefix(prefix)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
        };
        if let Some(id) = tagged("account.") {
            Responder::Account(id)
        } else if let Some(id) = tagged("team.") {
            Responder::Team(id)
        } else if let Some(id) = tagged("escalation.") {
            Responder::Escalation(id)
        } else {
            // Anything else in the reserved domain is a "person" the vendor will not know.
            Responder::User(email.clone())
        }
    }

    /// Whether this is a person with a known e-mail.
    pub fn is_user(&self) -> bool {
        matches!(self, Responder::User(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_emails_round_trip() {
        for r in [
            Responder::Nobody,
            Responder::Account("5b2b0e011b3a756623f4e25e".into()),
            Responder::Account("557058:f58131cb-b67d-43c7-b30d-6b58d40bd077".into()),
            Responder::Team("153c98d1-ca2c-44d8-b8ea-10280f7c2c75".into()),
            Responder::Escalation("ab73148c".into()),
            Responder::User(Email::parse("ann@example.com").unwrap()),
        ] {
            let email = r.email().unwrap();
            assert_eq!(Responder::from_email(&email), r, "{email}");
        }
        assert_eq!(Responder::Account("Upper".into()).email(), None);
        assert_eq!(Responder::Team("a b".into()).email(), None);
        let odd = Email::parse("account.@jsm.invalid").unwrap();
        assert!(Responder::from_email(&odd).is_user());
    }
}
