//! One HTTP exchange as the recording proxy saw it: the request as sent, and the answer if one
//! came back.

/// A request and its answer, byte for byte as they crossed the wire (bodies de-chunked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// `GET`, `POST` ...
    pub method: String,
    /// The request target: the path and the query string, percent-encoded as sent.
    pub target: String,
    /// The request's headers, in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The request's body (empty when there is none).
    pub body: Vec<u8>,
    /// The answer; `None` when the connection closed without one (a dropped connection).
    pub answer: Option<Answer>,
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The answer's headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body (empty when there is none).
    pub body: Vec<u8>,
}

/// The value of the first header of this name (names compare without case).
fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Exchange {
    /// The path, without the query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The query's pairs, decoded, in order (`include[]` repeats).
    pub fn query(&self) -> Vec<(String, String)> {
        match self.target.split_once('?') {
            Some((_, q)) => url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect(),
            None => Vec::new(),
        }
    }

    /// The first value of a query parameter.
    pub fn query_value(&self, name: &str) -> Option<String> {
        self.query()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// A request header.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The answer's status, if one came back.
    pub fn status(&self) -> Option<u16> {
        self.answer.as_ref().map(|a| a.status)
    }

    /// `GET /path?query → 200`, for failure messages.
    pub fn summary(&self) -> String {
        let status = match &self.answer {
            Some(a) => a.status.to_string(),
            None => "no answer".to_owned(),
        };
        format!("{} {} → {status}", self.method, self.target)
    }
}

impl Answer {
    /// An answer header.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}
