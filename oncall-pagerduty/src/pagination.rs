//! PagerDuty's classic pagination, written once for every paginated call (`/users`, `/schedules`).
//!
//! Pages of `limit=100` (the most PagerDuty serves); the next offset is the current one plus the
//! items *received*, not the echoed `limit` (python-pagerduty does the same, citing pdpyras#61);
//! `more` says whether to go on. PagerDuty refuses `offset + limit > 10000` with a 400, so a list
//! longer than that cannot be read this way: that is an explicit error, never a silent truncation
//! (python-pagerduty only warns and returns what it has).

use std::future::Future;

use oncall_core::Error;

use crate::models::Page;

/// Items per page: PagerDuty's maximum.
pub(crate) const PAGE_LIMIT: u32 = 100;

/// PagerDuty's cap on `offset + limit`.
pub(crate) const OFFSET_CAP: u32 = 10_000;

/// The offset of the page after one at `offset` that brought `received` items, or `None` when the
/// list is complete. `what` names the list in errors.
pub(crate) fn next_offset(
    offset: u32,
    received: usize,
    more: bool,
    what: &str,
) -> Result<Option<u32>, Error> {
    if !more {
        return Ok(None);
    }
    if received == 0 {
        // `more` with an empty page would loop for ever.
        return Err(Error::InvalidResponse {
            message: format!(
                "PagerDuty's list of {what} says `more` at offset {offset} but sent no items"
            ),
        });
    }
    let next = u32::try_from(received)
        .ok()
        .and_then(|r| offset.checked_add(r))
        .filter(|n| n.saturating_add(PAGE_LIMIT) <= OFFSET_CAP);
    next.map(Some).ok_or_else(|| past_cap(what))
}

/// The error of a list longer than classic pagination reaches.
fn past_cap(what: &str) -> Error {
    Error::Unsupported {
        message: format!(
            "the account has more {what} than PagerDuty's classic pagination can list \
             (offset + limit may not pass {OFFSET_CAP}); the list would be incomplete, so \
             nothing was read"
        ),
    }
}

/// Reads every page: `fetch(offset, limit)` reads one. A list longer than the cap is an error.
pub(crate) async fn collect_pages<T, F, Fut>(what: &str, fetch: F) -> Result<Vec<T>, Error>
where
    F: FnMut(u32, u32) -> Fut,
    Fut: Future<Output = Result<Page<T>, Error>>,
{
    match collect_up_to_cap(what, fetch).await? {
        (all, true) => Ok(all),
        (_, false) => Err(past_cap(what)),
    }
}

/// Reads every page up to PagerDuty's cap: the items, and whether they are the whole list
/// (`false`: the list goes on past `offset + limit` = 10000, which PagerDuty refuses to page to).
pub(crate) async fn collect_up_to_cap<T, F, Fut>(
    what: &str,
    mut fetch: F,
) -> Result<(Vec<T>, bool), Error>
where
    F: FnMut(u32, u32) -> Fut,
    Fut: Future<Output = Result<Page<T>, Error>>,
{
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let page = fetch(offset, PAGE_LIMIT).await?;
        let (received, more) = (page.items.len(), page.more);
        all.extend(page.items);
        match next_offset(offset, received, more, what) {
            Ok(Some(next)) => offset = next,
            Ok(None) => return Ok((all, true)),
            Err(Error::Unsupported { .. }) => return Ok((all, false)),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        // The fetches below are ready at once: nothing to wait for.
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn offsets_advance_by_items_received() {
        assert_eq!(next_offset(0, 100, true, "users"), Ok(Some(100)));
        // A short page with `more` (the echoed limit is not trusted).
        assert_eq!(next_offset(100, 73, true, "users"), Ok(Some(173)));
        assert_eq!(next_offset(173, 12, false, "users"), Ok(None));
        assert_eq!(next_offset(9800, 100, true, "users"), Ok(Some(9900)));
        assert!(matches!(
            next_offset(0, 0, true, "users"),
            Err(Error::InvalidResponse { .. })
        ));
    }

    #[test]
    fn the_cap_is_an_error_not_a_truncation() {
        let e = next_offset(9900, 100, true, "users").unwrap_err();
        assert!(
            matches!(&e, Error::Unsupported { message } if message.contains("10000") && message.contains("users")),
            "{e:?}"
        );
        // At the cap with nothing more, the list is complete.
        assert_eq!(next_offset(9900, 100, false, "users"), Ok(None));
    }

    #[test]
    fn collects_literal_pages() {
        let pages = [
            Page {
                items: vec![1, 2, 3],
                more: true,
            },
            Page {
                items: vec![4],
                more: true,
            },
            Page {
                items: vec![5, 6],
                more: false,
            },
        ];
        let mut asked = Vec::new();
        let all = block_on(collect_pages("numbers", |offset, limit| {
            asked.push((offset, limit));
            let page = pages[asked.len() - 1].clone();
            async move { Ok(page) }
        }));
        assert_eq!(all, Ok(vec![1, 2, 3, 4, 5, 6]));
        assert_eq!(asked, [(0, 100), (3, 100), (4, 100)]);
    }

    #[test]
    fn a_list_up_to_the_cap_says_it_is_incomplete() {
        let (all, complete) = block_on(collect_up_to_cap("users", |offset, _| async move {
            Ok(Page {
                items: vec![offset; 100],
                more: true,
            })
        }))
        .unwrap();
        assert!(!complete);
        assert_eq!(all.len(), 10_000);
    }

    #[test]
    fn a_list_past_the_cap_fails_whole() {
        let result = block_on(collect_pages("schedules", |offset, _| async move {
            Ok(Page {
                items: vec![offset; 100],
                more: true,
            })
        }));
        assert!(matches!(result, Err(Error::Unsupported { .. })));
    }
}
