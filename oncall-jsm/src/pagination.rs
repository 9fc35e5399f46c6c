//! JSM Operations' pagination, written once for every list (schedules, rotations, overrides):
//! `{"values": [...], "links": {"next": "/v1/...?offset=50&size=25"}}`, followed until `next` is
//! absent (reference §5).
//!
//! - The first page asks for [`PAGE_SIZE`] items (the spec's maximum, 50); the largest size the
//!   vendor serves is UNCONFIRMED, so a page may come back smaller (the next link says where to go
//!   on), and a first page refused for its size (a 400 or 422 naming it) is asked again without a
//!   size, at the vendor's default (25), for the rest of the connection's life.
//! - `next` is relative to the API's root (`/v1/...`, as in the spec's examples), or absolute;
//!   either way it must stay on the API's own host and path, or the credentials would follow a
//!   link elsewhere: anything else is an [`Error::InvalidResponse`].
//! - A link already followed, or a next page promised after an empty one, would loop for ever:
//!   both are errors, as is a list longer than [`MAX_PAGES`] pages.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use oncall_core::Error;
use reqwest::Url;
use serde_json::Value;

use crate::client::{Client, Request, Target};
use crate::error::VendorError;
use crate::json::Node;

/// Items asked for per page: the spec's maximum for `size`.
pub const PAGE_SIZE: u32 = 50;

/// The most pages one list may take (a list this long is surely a vendor looping).
pub(crate) const MAX_PAGES: usize = 2_000;

/// The URL of the next page, from the `links.next` the vendor gave: relative to `root` (the API's
/// `…/jsm/ops/api/<cloudId>`) when it starts with `/v1/`, relative to the host when it starts with
/// `/jsm/`, or absolute; it must lie below `root`.
pub(crate) fn resolve_next(root: &Url, next: &str) -> Result<Url, Error> {
    let bad = |why: &str| Error::InvalidResponse {
        message: format!("links.next {next:?}: {why}"),
    };
    let url = if next.starts_with("http://") || next.starts_with("https://") {
        Url::parse(next).map_err(|_| bad("not a URL"))?
    } else if next.starts_with("/v1/") || next.starts_with("v1/") {
        let base = format!("{}/", root.as_str().trim_end_matches('/'));
        Url::parse(&base)
            .and_then(|b| b.join(next.trim_start_matches('/')))
            .map_err(|_| bad("not a path"))?
    } else if next.starts_with('/') {
        root.join(next).map_err(|_| bad("not a path"))?
    } else {
        return Err(bad("neither a path below the API nor a URL"));
    };
    let same_origin = url.origin() == root.origin();
    let below = url
        .path()
        .starts_with(&format!("{}/", root.path().trim_end_matches('/')));
    if !same_origin || !below {
        return Err(bad(
            "outside the API this connection talks to: not followed",
        ));
    }
    Ok(url)
}

/// One page: its items and the link to the next, if any.
pub(crate) fn page(body: &Value) -> Result<(Vec<Value>, Option<String>), Error> {
    let root = Node::root(body);
    let values = match root.opt("values")? {
        // Checked to be an array first, so a malformed answer names the field.
        Some(values) => {
            values.items()?;
            body.get("values")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    let next = match root.opt("links")? {
        Some(links) => links
            .opt_str("next")?
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        None => None,
    };
    Ok((values, next))
}

/// Every item of a list: `first` with `size` (unless the connection learnt it is refused), then
/// each next page. `size_refused` is the connection's memory of a refused size.
pub(crate) async fn collect(
    client: &Client,
    first: Request<'_>,
    size_refused: &AtomicBool,
    what: &str,
) -> Result<Vec<Value>, Error> {
    let answer = if size_refused.load(Ordering::Relaxed) {
        client.send(&first).await?
    } else {
        let sized = first.clone().query("size", PAGE_SIZE.to_string());
        match client.send(&sized).await {
            Err(Error::Rejected { message }) if refuses_the_size(&message) => {
                size_refused.store(true, Ordering::Relaxed);
                client.send(&first).await?
            }
            other => other?,
        }
    };
    let root = client.ops_root().await?;
    let (mut items, mut next) = page(&answer.body)?;
    let mut seen: HashSet<String> = HashSet::new();
    let mut pages = 1;
    let mut last_was_empty = items.is_empty();
    while let Some(link) = next.take() {
        if last_was_empty {
            return Err(Error::InvalidResponse {
                message: format!("the list of {what} promised a next page after an empty one"),
            });
        }
        let url = resolve_next(&root, &link)?;
        if !seen.insert(url.as_str().to_owned()) || pages >= MAX_PAGES {
            return Err(Error::InvalidResponse {
                message: format!(
                    "the list of {what} loops or does not end (page {pages}, next {link:?})"
                ),
            });
        }
        let request = Request {
            target: Target::Url(url),
            query: Vec::new(),
            ..first.clone()
        };
        let answer = client.send(&request).await?;
        let (more, link) = page(&answer.body)?;
        last_was_empty = more.is_empty();
        items.extend(more);
        next = link;
        pages += 1;
    }
    Ok(items)
}

/// Whether a refusal is of the page size (a 400 or 422 whose words name it).
fn refuses_the_size(message: &str) -> bool {
    let status = message.starts_with("HTTP 400") || message.starts_with("HTTP 422");
    status
        && VendorError {
            texts: vec![message.to_owned()],
            codes: Vec::new(),
        }
        .names_the_size()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn root() -> Url {
        Url::parse("https://api.atlassian.com/jsm/ops/api/cloud-1").unwrap()
    }

    #[test]
    fn next_links_resolve_below_the_api_root_only() {
        let ok = |next: &str| resolve_next(&root(), next).map(|u| u.to_string());
        assert_eq!(
            ok("/v1/schedules/s-1/overrides?offset=50&size=25").unwrap(),
            "https://api.atlassian.com/jsm/ops/api/cloud-1/v1/schedules/s-1/overrides?offset=50&size=25"
        );
        assert_eq!(
            ok("/jsm/ops/api/cloud-1/v1/schedules?offset=25").unwrap(),
            "https://api.atlassian.com/jsm/ops/api/cloud-1/v1/schedules?offset=25"
        );
        assert_eq!(
            ok("https://api.atlassian.com/jsm/ops/api/cloud-1/v1/schedules?offset=2").unwrap(),
            "https://api.atlassian.com/jsm/ops/api/cloud-1/v1/schedules?offset=2"
        );
        for bad in [
            "https://evil.example/jsm/ops/api/cloud-1/v1/schedules",
            "http://api.atlassian.com/jsm/ops/api/cloud-1/v1/schedules",
            "/jsm/ops/api/cloud-2/v1/schedules",
            "/rest/api/3/users",
            "schedules?offset=2",
            "https://api.atlassian.com/jsm/ops/api/cloud-10/v1/x",
        ] {
            assert!(
                matches!(
                    resolve_next(&root(), bad),
                    Err(Error::InvalidResponse { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn pages_read_values_and_the_next_link() {
        let (items, next) =
            page(&json!({"values": [{"a": 1}, {"a": 2}], "links": {"next": "/v1/x?offset=2"}}))
                .unwrap();
        assert_eq!((items.len(), next.as_deref()), (2, Some("/v1/x?offset=2")));
        let (items, next) = page(&json!({"values": [], "links": {}})).unwrap();
        assert!(items.is_empty() && next.is_none());
        let (items, next) = page(&json!({"links": {"next": ""}})).unwrap();
        assert!(
            items.is_empty() && next.is_none(),
            "an empty link ends the list"
        );
        assert!(page(&json!({"values": {"a": 1}})).is_err());
        assert!(page(&json!({"values": [], "links": {"next": 3}})).is_err());
    }

    #[test]
    fn size_refusals_are_recognised_by_status_and_words() {
        assert!(refuses_the_size("HTTP 422: size must be between 1 and 25"));
        assert!(refuses_the_size("HTTP 400: Invalid limit"));
        assert!(!refuses_the_size(
            "HTTP 422: End date must be in the future"
        ));
        assert!(!refuses_the_size("HTTP 409: size"));
    }
}
