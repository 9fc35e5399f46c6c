//! Accepting drift into the config file (`oncall drift --accept`): the proposals' assignee edits
//! are written into the `assignees` of the shifts they name, and nothing else in the file changes,
//! byte for byte (its formatting, key order, other shifts).

use std::ops::Range;

use chrono::{DateTime, Utc};
use oncall_core::{AssigneeEdit, Email};

use super::{invalid, parse_instant, Config, ConfigError};

/// What accepting edits into a config's text gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedText {
    /// The new text of the file.
    pub text: String,
    /// The edits made (those the file held already are left out).
    pub made: Vec<AssigneeEdit>,
    /// How many edits the file held already (accepted before).
    pub already: usize,
}

/// Writes `edits` into the `schedule.shifts[…].assignees` of the config `text`, all or nothing:
/// each shift is found by its start instant, and must still have the assignee the edit expects
/// (or the one it proposes: then it was accepted before). The rest of the file is kept as it is;
/// the result is validated as a whole config (a new assignee must be among `schedule.members`
/// where the file lists them). A schedule given as a `rotation` cannot take a change to one shift:
/// that is an error.
pub fn accept_edits(text: &str, edits: &[AssigneeEdit]) -> Result<AcceptedText, ConfigError> {
    Config::from_json(text)?;
    let spots = locate_shifts(text)?;
    let mut changed: Vec<(usize, Vec<Option<String>>)> = Vec::new();
    let mut made = Vec::new();
    let mut already = 0;
    for edit in edits {
        let Some(i) = spots.iter().position(|s| s.start == edit.shift_start) else {
            return Err(invalid(
                "schedule.shifts",
                format!(
                    "no shift starts at {}: the rota changed since the drift was read",
                    edit.shift_start
                ),
            ));
        };
        let slot = match changed.iter().position(|(j, _)| *j == i) {
            Some(k) => k,
            None => {
                changed.push((i, spots[i].assignees.clone()));
                changed.len() - 1
            }
        };
        let at = format!("schedule.shifts[{i}].assignees[{}]", edit.role.0);
        let assignees = &mut changed[slot].1;
        let Some(current) = assignees.get_mut(edit.role.0) else {
            return Err(invalid(at, "no such role in this shift"));
        };
        let parsed = current
            .as_deref()
            .map(Email::parse)
            .transpose()
            .map_err(|e| invalid(&at, e))?;
        if parsed == edit.to {
            already += 1;
            continue;
        }
        if parsed != edit.from {
            let who = |e: Option<&Email>| e.map_or("nobody".to_owned(), Email::to_string);
            return Err(invalid(
                at,
                format!(
                    "has {}, where the proposal expects {}: the rota changed since the drift was \
                     read; run `oncall drift` again",
                    who(parsed.as_ref()),
                    who(edit.from.as_ref())
                ),
            ));
        }
        *current = edit.to.as_ref().map(|e| e.as_str().to_owned());
        made.push(edit.clone());
    }
    let mut out = text.to_owned();
    changed.sort_by_key(|(i, _)| std::cmp::Reverse(spots[*i].range.start));
    for (i, assignees) in changed {
        if assignees != spots[i].assignees {
            out.replace_range(spots[i].range.clone(), &render(&assignees));
        }
    }
    Config::from_json(&out)?;
    Ok(AcceptedText {
        text: out,
        made,
        already,
    })
}

/// `["alice@example.com", null]`, as the README writes assignees.
fn render(assignees: &[Option<String>]) -> String {
    let items: Vec<String> = assignees
        .iter()
        .map(|a| match a {
            Some(e) => serde_json::Value::String(e.clone()).to_string(),
            None => "null".to_owned(),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// One shift of the file: its start and where its `assignees` array lies in the text.
struct Spot {
    start: DateTime<Utc>,
    assignees: Vec<Option<String>>,
    range: Range<usize>,
}

/// Every shift of `schedule.shifts`, with the byte range of its `assignees` value.
fn locate_shifts(text: &str) -> Result<Vec<Spot>, ConfigError> {
    let no_shifts = || {
        invalid(
            "schedule",
            "accepting drift needs explicit `shifts`: a `rotation` cannot take a change to one shift",
        )
    };
    let mut scan = Scanner {
        text: text.as_bytes(),
        at: 0,
    };
    let root = scan.object()?;
    let schedule = field(text, &root, "schedule").ok_or_else(no_shifts)?;
    let shifts = field(text, &scan.at_range(schedule).object()?, "shifts").ok_or_else(no_shifts)?;
    let mut spots = Vec::new();
    for (i, element) in scan.at_range(shifts).array()?.into_iter().enumerate() {
        let members = scan.at_range(element).object()?;
        let at = |f: &str| format!("schedule.shifts[{i}].{f}");
        let start =
            field(text, &members, "start").ok_or_else(|| invalid(at("start"), "missing"))?;
        let start: String =
            serde_json::from_str(&text[start]).map_err(|e| invalid(at("start"), e))?;
        let range = field(text, &members, "assignees")
            .ok_or_else(|| invalid(at("assignees"), "missing"))?;
        let assignees =
            serde_json::from_str(&text[range.clone()]).map_err(|e| invalid(at("assignees"), e))?;
        spots.push(Spot {
            start: parse_instant(&start, &at("start"))?,
            assignees,
            range,
        });
    }
    Ok(spots)
}

/// An object member's key (its JSON string) and value, as ranges of the text.
type Member = (Range<usize>, Range<usize>);

/// The value of member `name` among an object's members (key ranges are the keys' JSON strings).
fn field(text: &str, members: &[Member], name: &str) -> Option<Range<usize>> {
    members
        .iter()
        .find(|(key, _)| {
            serde_json::from_str::<String>(&text[key.clone()]).is_ok_and(|k| k == name)
        })
        .map(|(_, value)| value.clone())
}

/// Where JSON values lie in a text: just enough of a reader to find them (the text was already
/// validated as a config by serde, so only positions are wanted here).
struct Scanner<'a> {
    text: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn at_range(&mut self, range: Range<usize>) -> &mut Self {
        self.at = range.start;
        self
    }

    fn error(&self) -> ConfigError {
        ConfigError::Syntax {
            message: format!("unexpected text at byte {} of the config", self.at),
        }
    }

    fn skip_space(&mut self) {
        while self
            .text
            .get(self.at)
            .is_some_and(|b| b.is_ascii_whitespace())
        {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), ConfigError> {
        self.skip_space();
        if self.text.get(self.at) == Some(&byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// Skips one value; returns its range.
    fn value(&mut self) -> Result<Range<usize>, ConfigError> {
        self.skip_space();
        let start = self.at;
        match self.text.get(self.at) {
            Some(b'{') => {
                self.object()?;
            }
            Some(b'[') => {
                self.array()?;
            }
            Some(b'"') => self.string()?,
            Some(_) => {
                while self
                    .text
                    .get(self.at)
                    .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
                {
                    self.at += 1;
                }
                if self.at == start {
                    return Err(self.error());
                }
            }
            None => return Err(self.error()),
        }
        Ok(start..self.at)
    }

    fn string(&mut self) -> Result<(), ConfigError> {
        self.expect(b'"')?;
        while let Some(&b) = self.text.get(self.at) {
            self.at += 1;
            match b {
                b'\\' => self.at += 1,
                b'"' => return Ok(()),
                _ => {}
            }
        }
        Err(self.error())
    }

    /// An object's members as (key, value) ranges.
    fn object(&mut self) -> Result<Vec<Member>, ConfigError> {
        self.expect(b'{')?;
        let mut members = Vec::new();
        self.skip_space();
        if self.text.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Ok(members);
        }
        loop {
            self.skip_space();
            let key_start = self.at;
            self.string()?;
            let key = key_start..self.at;
            self.expect(b':')?;
            let value = self.value()?;
            members.push((key, value));
            self.skip_space();
            match self.text.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(members);
                }
                _ => return Err(self.error()),
            }
        }
    }

    /// An array's elements' ranges.
    fn array(&mut self) -> Result<Vec<Range<usize>>, ConfigError> {
        self.expect(b'[')?;
        let mut elements = Vec::new();
        self.skip_space();
        if self.text.get(self.at) == Some(&b']') {
            self.at += 1;
            return Ok(elements);
        }
        loop {
            elements.push(self.value()?);
            self.skip_space();
            match self.text.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(elements);
                }
                _ => return Err(self.error()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use oncall_core::RoleIndex;

    use super::*;

    const TEXT: &str = r#"{"connections": [{"id": "og", "provider": "opsgenie", "api_key_env": "OG_KEY"}],
 "schedule": {"id": "platform", "time_zone": "Europe/Berlin", "roles": ["primary", "secondary"],
   "shifts": [
     {"start": "2026-12-01T09:00:00+01:00", "end": "2026-12-02T09:00:00+01:00",
      "assignees": ["alice@example.com", null]},
     {"assignees" : [ "bob@example.com" , "alice@example.com" ], "start": "2026-12-02T09:00:00+01:00",
      "end": "2026-12-03T09:00:00+01:00"}]},
 "destinations": [{"id": "og-primary", "connection": "og", "schedule_id": "s", "role": "primary",
   "mode": "protect"}]}"#;

    fn t(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, d, 8, 0, 0).unwrap()
    }

    fn e(name: &str) -> Option<Email> {
        Some(Email::parse(&format!("{name}@example.com")).unwrap())
    }

    fn edit(d: u32, role: usize, from: Option<Email>, to: Option<Email>) -> AssigneeEdit {
        AssigneeEdit {
            role: RoleIndex(role),
            shift_start: t(d),
            from,
            to,
        }
    }

    #[test]
    fn a_swap_changes_the_two_assignee_lists_and_nothing_else() {
        let swap = [
            edit(1, 0, e("alice"), e("bob")),
            edit(2, 0, e("bob"), e("alice")),
        ];
        let accepted = accept_edits(TEXT, &swap).unwrap();
        let expected = TEXT
            .replace(
                r#""assignees": ["alice@example.com", null]"#,
                r#""assignees": ["bob@example.com", null]"#,
            )
            .replace(
                r#"[ "bob@example.com" , "alice@example.com" ]"#,
                r#"["alice@example.com", "alice@example.com"]"#,
            );
        assert_eq!(accepted.text, expected);
        assert_eq!(accepted.made.len(), 2);
        // Accepting again finds them there.
        let again = accept_edits(&accepted.text, &swap).unwrap();
        assert_eq!(
            (again.text, again.made.len(), again.already),
            (accepted.text, 0, 2)
        );
    }

    #[test]
    fn a_stale_or_impossible_edit_changes_nothing_and_says_where() {
        let stale = accept_edits(TEXT, &[edit(1, 0, e("carol"), e("bob"))]).unwrap_err();
        assert!(
            stale
                .to_string()
                .contains("schedule.shifts[0].assignees[0]")
                && stale.to_string().contains("carol"),
            "{stale}"
        );
        let missing = accept_edits(TEXT, &[edit(5, 0, e("alice"), e("bob"))]).unwrap_err();
        assert!(missing.to_string().contains("no shift starts"), "{missing}");
        // With members listed, a newcomer must be among them.
        let listed = TEXT.replace(
            r#""roles": ["primary", "secondary"],"#,
            r#""roles": ["primary", "secondary"], "members": ["alice@example.com", "bob@example.com"],"#,
        );
        let outsider = accept_edits(&listed, &[edit(1, 1, None, e("zed"))]).unwrap_err();
        assert!(
            outsider.to_string().contains("schedule.members"),
            "{outsider}"
        );
        // Clearing a role is an edit like any other.
        let cleared = accept_edits(TEXT, &[edit(2, 1, e("alice"), None)]).unwrap();
        assert!(
            cleared.text.contains(r#"["bob@example.com", null]"#),
            "{}",
            cleared.text
        );
    }

    #[test]
    fn a_rotation_cannot_take_drift() {
        let text = r#"{"connections": [{"id": "og", "provider": "opsgenie", "api_key_env": "OG_KEY"}],
          "schedule": {"id": "p", "time_zone": "UTC", "roles": ["primary"], "horizon_days": 7,
            "rotation": {"unit": "daily", "start": "2026-03-16T09:00:00", "participants": [["a@x.io"]]}},
          "destinations": []}"#;
        let e = accept_edits(text, &[edit(1, 0, None, None)]).unwrap_err();
        assert!(e.to_string().contains("explicit `shifts`"), "{e}");
    }
}
