//! [`OverrideRecipient`]: who an Opsgenie override names, and the reserved emails that carry the
//! recipients who are not people through the core's model, which knows only people.

use oncall_core::Email;

/// The domain of the reserved emails: `.invalid` is reserved by RFC 2606 and never delivers
/// mail, so no person of any account has such an address.
pub const RESERVED_DOMAIN: &str = "opsgenie.invalid";

/// Who an Opsgenie override puts on call: a user, or one of the recipients that are not people
/// (`{"type":"none"}`, a team, an escalation).
///
/// The core's [`Override`](oncall_core::Override) names a member by email, so the others travel as
/// reserved, reversible emails in the [`RESERVED_DOMAIN`]: `nobody@opsgenie.invalid`,
/// `team.<id>@opsgenie.invalid`, `escalation.<id>@opsgenie.invalid`. The adapter lists and fetches
/// such overrides like any other, and writes them back as the recipient they stand for, so a sync
/// can clear a person's `none` override from the fresh region (R2), cut a team's override without
/// making it a user's, and keep track of an override of ours that a person set to nobody.
///
/// ```
/// use oncall_opsgenie::OverrideRecipient;
/// let team = OverrideRecipient::Team("6c4e2b1a-0d9f-4e0a-9a4b-2f7c1d3e5a6b".into());
/// let email = team.email().unwrap();
/// assert_eq!(email.as_str(), "team.6c4e2b1a-0d9f-4e0a-9a4b-2f7c1d3e5a6b@opsgenie.invalid");
/// assert_eq!(OverrideRecipient::from_email(&email), team);
/// assert_eq!(OverrideRecipient::Nobody.email().unwrap().as_str(), "nobody@opsgenie.invalid");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OverrideRecipient {
    /// A user, by username (the login email).
    User(Email),
    /// Nobody (`{"type":"none"}`): the schedule has no one on call there.
    Nobody,
    /// A team, by id.
    Team(String),
    /// An escalation, by id.
    Escalation(String),
}

impl OverrideRecipient {
    /// The email that stands for this recipient in the core's model. `None` for a team or an
    /// escalation whose id would not survive the trip (emails are lower-cased and hold no white
    /// space or `@`): Opsgenie's ids are lower-case UUIDs, so that is not expected.
    pub fn email(&self) -> Option<Email> {
        let reserved = |local: String| {
            Email::parse(&format!("{local}@{RESERVED_DOMAIN}"))
                .ok()
                .filter(|e| OverrideRecipient::from_email(e) == *self)
        };
        match self {
            OverrideRecipient::User(email) => Some(email.clone()),
            OverrideRecipient::Nobody => reserved("nobody".to_owned()),
            OverrideRecipient::Team(id) => reserved(format!("team.{id}")),
            OverrideRecipient::Escalation(id) => reserved(format!("escalation.{id}")),
        }
    }

    /// The recipient an email stands for: a reserved one, or a user.
    pub fn from_email(email: &Email) -> OverrideRecipient {
        let reserved = email
            .as_str()
            .rsplit_once('@')
            .filter(|(_, domain)| *domain == RESERVED_DOMAIN)
            .map(|(local, _)| local);
        match reserved {
            Some("nobody") => OverrideRecipient::Nobody,
            Some(local) => match (
                local.strip_prefix("team."),
                local.strip_prefix("escalation."),
            ) {
                (Some(id), _) if !id.is_empty() => OverrideRecipient::Team(id.to_owned()),
                (_, Some(id)) if !id.is_empty() => OverrideRecipient::Escalation(id.to_owned()),
                _ => OverrideRecipient::User(email.clone()),
            },
            None => OverrideRecipient::User(email.clone()),
        }
    }

    /// Whether this is a person.
    pub fn is_user(&self) -> bool {
        matches!(self, OverrideRecipient::User(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_emails_round_trip() {
        for r in [
            OverrideRecipient::Nobody,
            OverrideRecipient::Team("t-1".into()),
            OverrideRecipient::Escalation("e-1".into()),
            OverrideRecipient::User(Email::parse("ann@example.com").unwrap()),
        ] {
            let email = r.email().unwrap();
            assert_eq!(OverrideRecipient::from_email(&email), r, "{email}");
        }
        // An id the email cannot carry is not represented.
        assert_eq!(OverrideRecipient::Team("Upper".into()).email(), None);
        assert_eq!(OverrideRecipient::Team("a b".into()).email(), None);
        // Anything else in the reserved domain is a user's (the vendor will say it is unknown).
        let odd = Email::parse("team.@opsgenie.invalid").unwrap();
        assert!(OverrideRecipient::from_email(&odd).is_user());
    }
}
