//! [`OverrideRecipient`]: who an Opsgenie override names, and the reserved emails that carry the
//! recipients who are not people through the core's model, which knows only people.

use oncall_core::Email;

/// The domain of the reserved emails: `.invalid` is reserved by RFC 2606 and never delivers
/// mail, so no person of any account has such an address.
pub const RESERVED_DOMAIN: &str = "opsgenie.invalid";

/// Who an Opsgenie override puts on call: a user, or one of the recipients that are not people
/// (`{"type":"none"}`, a team, an escalation), or a recipient of a kind this adapter does not
/// know (or a user named only by id).
///
/// The core's [`Override`](oncall_core::Override) names a member by email, so the others travel as
/// reserved, reversible emails in the [`RESERVED_DOMAIN`]: `nobody@opsgenie.invalid`,
/// `team.<id>@opsgenie.invalid`, `escalation.<id>@opsgenie.invalid`,
/// `recipient.<kind>.<id>@opsgenie.invalid` (a part that is not lower-case letters, digits, `-`
/// and `_` is written `~` and its bytes in hex, so that every id survives the trip). The adapter
/// lists and fetches such overrides like any other, and writes them back as the recipient they
/// stand for, so a sync can clear a person's `none` override from the fresh region (R2), cut a
/// team's override without making it a user's, keep a recipient it does not know as a foreign
/// override, and keep track of an override of ours that a person set to nobody.
///
/// ```
/// use oncall_opsgenie::OverrideRecipient;
/// let team = OverrideRecipient::Team("6c4e2b1a-0d9f-4e0a-9a4b-2f7c1d3e5a6b".into());
/// let email = team.email().unwrap();
/// assert_eq!(email.as_str(), "team.6c4e2b1a-0d9f-4e0a-9a4b-2f7c1d3e5a6b@opsgenie.invalid");
/// assert_eq!(OverrideRecipient::from_email(&email), team);
/// assert_eq!(OverrideRecipient::Nobody.email().unwrap().as_str(), "nobody@opsgenie.invalid");
/// let odd = OverrideRecipient::Other { kind: "schedule".into(), id: Some("Sched-9".into()) };
/// assert_eq!(OverrideRecipient::from_email(&odd.email().unwrap()), odd);
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
    /// Any other recipient (`schedule`, `group`, ... or a `user` named only by id), as the vendor
    /// named it: written back as `{"type": kind, "id": id}`.
    Other {
        /// The recipient's `type`.
        kind: String,
        /// Its `id`, if it had one.
        id: Option<String>,
    },
}

/// A part of a reserved email: itself when it is made of lower-case letters, digits, `-` and
/// `_`, else `~` and its bytes in hex.
fn encode(part: &str) -> String {
    let plain = !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if plain {
        part.to_owned()
    } else {
        let hex: String = part.bytes().map(|b| format!("{b:02x}")).collect();
        format!("~{hex}")
    }
}

/// The part [`encode`] wrote; `None` for a malformed one.
fn decode(part: &str) -> Option<String> {
    let Some(hex) = part.strip_prefix('~') else {
        return (!part.is_empty()).then(|| part.to_owned());
    };
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

impl OverrideRecipient {
    /// The email that stands for this recipient in the core's model.
    pub fn email(&self) -> Option<Email> {
        let reserved = |local: String| {
            Email::parse(&format!("{local}@{RESERVED_DOMAIN}"))
                .ok()
                .filter(|e| OverrideRecipient::from_email(e) == *self)
        };
        match self {
            OverrideRecipient::User(email) => Some(email.clone()),
            OverrideRecipient::Nobody => reserved("nobody".to_owned()),
            OverrideRecipient::Team(id) => reserved(format!("team.{}", encode(id))),
            OverrideRecipient::Escalation(id) => reserved(format!("escalation.{}", encode(id))),
            OverrideRecipient::Other { kind, id } => {
                let id = id.as_deref().map(|id| format!(".{}", encode(id)));
                reserved(format!(
                    "recipient.{}{}",
                    encode(kind),
                    id.unwrap_or_default()
                ))
            }
        }
    }

    /// The recipient an email stands for: a reserved one, or a user.
    pub fn from_email(email: &Email) -> OverrideRecipient {
        let user = || OverrideRecipient::User(email.clone());
        let Some(local) = email
            .as_str()
            .rsplit_once('@')
            .filter(|(_, domain)| *domain == RESERVED_DOMAIN)
            .map(|(local, _)| local)
        else {
            return user();
        };
        if local == "nobody" {
            return OverrideRecipient::Nobody;
        }
        if let Some(id) = local.strip_prefix("team.") {
            return decode(id).map_or_else(user, OverrideRecipient::Team);
        }
        if let Some(id) = local.strip_prefix("escalation.") {
            return decode(id).map_or_else(user, OverrideRecipient::Escalation);
        }
        if let Some(rest) = local.strip_prefix("recipient.") {
            let (kind, id) = match rest.split_once('.') {
                Some((kind, id)) => (decode(kind), decode(id).map(Some)),
                None => (decode(rest), Some(None)),
            };
            if let (Some(kind), Some(id)) = (kind, id) {
                return OverrideRecipient::Other { kind, id };
            }
        }
        user()
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
        // Any id survives the trip.
        for r in [
            OverrideRecipient::Team("Upper".into()),
            OverrideRecipient::Team("a b@c".into()),
            OverrideRecipient::Escalation("é.1".into()),
            OverrideRecipient::Other {
                kind: "schedule".into(),
                id: Some("Sched-9".into()),
            },
            OverrideRecipient::Other {
                kind: "all".into(),
                id: None,
            },
            OverrideRecipient::Other {
                kind: "user".into(),
                id: Some("8be02293".into()),
            },
        ] {
            let email = r.email().unwrap();
            assert_eq!(OverrideRecipient::from_email(&email), r, "{email}");
        }
        // Anything else in the reserved domain is a user's (the vendor will say it is unknown).
        for odd in [
            "team.@opsgenie.invalid",
            "team.~zz@opsgenie.invalid",
            "other@opsgenie.invalid",
        ] {
            let odd = Email::parse(odd).unwrap();
            assert!(OverrideRecipient::from_email(&odd).is_user(), "{odd}");
        }
    }
}
