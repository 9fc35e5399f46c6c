//! `oncall --trace-http FILE`: every HTTP exchange of a run appended to a file as one JSON line
//! ([`oncall_core::trace::HttpExchange`]), for a bug report.
//!
//! Adapters record each attempt with their credentials already scrubbed (credential headers
//! replaced, the key removed wherever echoed). [`JsonLinesTrace`] then, before anything reaches
//! the disk, scrubs once more every secret it was given ([`JsonLinesTrace::hide`], in each
//! spelling [`ApiKey::redact_in`] covers) and replaces every e-mail address with a stable
//! placeholder ([`Redactor`]: the same person, the same placeholder, across the run). The file is
//! created readable and writable by its owner only (mode 0600 on Unix), also when it existed.
//!
//! ```no_run
//! use std::sync::Arc;
//! use oncall_sync::config::Config;
//! use oncall_sync::trace_file::JsonLinesTrace;
//!
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let trace = Arc::new(JsonLinesTrace::create("trace.jsonl")?);
//! let config = Config::from_file("oncall.json")?.with_http_trace(trace.clone());
//! // ... every provider `config` builds now records to trace.jsonl ...
//! if let Some(e) = trace.error() {
//!     eprintln!("the trace is incomplete: {e}");
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use oncall_core::trace::{HttpExchange, HttpTrace, Redactor};
use oncall_core::ApiKey;

/// An [`HttpTrace`] writing one JSON object per exchange and line to a file, secrets and e-mail
/// addresses redacted (see the [module docs](self)).
pub struct JsonLinesTrace {
    path: PathBuf,
    inner: Mutex<Inner>,
}

struct Inner {
    file: File,
    redactor: Redactor,
    secrets: Vec<ApiKey>,
    recorded: usize,
    error: Option<String>,
}

impl JsonLinesTrace {
    /// Creates (or empties) the file at `path`, readable and writable by its owner only.
    pub fn create(path: impl AsRef<Path>) -> io::Result<JsonLinesTrace> {
        let path = path.as_ref();
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path)?;
        // A file that existed keeps its mode on open: narrow it (it is empty by now).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(JsonLinesTrace {
            path: path.to_owned(),
            inner: Mutex::new(Inner {
                file,
                redactor: Redactor::default(),
                secrets: Vec::new(),
                recorded: 0,
                error: None,
            }),
        })
    }

    /// Scrubs `secret` (an API key, a token) from everything recorded from now on, in each
    /// spelling [`ApiKey::redact_in`] covers, on top of the adapters' own scrubbing.
    pub fn hide(&self, secret: ApiKey) {
        self.lock().secrets.push(secret);
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many exchanges were written.
    pub fn recorded(&self) -> usize {
        self.lock().recorded
    }

    /// The first write that failed, if one did (the trace then misses exchanges).
    pub fn error(&self) -> Option<String> {
        self.lock().error.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    fn scrub(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_owned(), |text, secret| secret.redact_in(&text))
    }

    fn scrub_exchange(&self, mut exchange: HttpExchange) -> HttpExchange {
        exchange.url = self.scrub(&exchange.url);
        for (_, value) in exchange
            .request_headers
            .iter_mut()
            .chain(exchange.response_headers.iter_mut())
        {
            *value = self.scrub(value);
        }
        for text in [
            &mut exchange.request_body,
            &mut exchange.response_body,
            &mut exchange.error,
        ]
        .into_iter()
        .flatten()
        {
            *text = self.scrub(text);
        }
        exchange
    }
}

impl HttpTrace for JsonLinesTrace {
    fn record(&self, exchange: HttpExchange) {
        let mut inner = self.lock();
        let scrubbed = inner.scrub_exchange(exchange);
        let redacted = inner.redactor.redact_exchange(scrubbed);
        let written = serde_json::to_string(&redacted)
            .map_err(io::Error::other)
            .and_then(|mut line| {
                line.push('\n');
                (&inner.file).write_all(line.as_bytes())
            });
        match written {
            Ok(()) => inner.recorded += 1,
            Err(e) => {
                inner.error.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

impl fmt::Debug for JsonLinesTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesTrace")
            .field("path", &self.path)
            .field("recorded", &self.recorded())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report

    use super::*;

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("oncall-trace-{}-{name}", std::process::id()))
    }

    #[test]
    fn writes_one_redacted_line_per_exchange() {
        let path = temp("lines.jsonl");
        let trace = JsonLinesTrace::create(&path).unwrap();
        trace.hide(ApiKey::new("k3y/With+odd").unwrap());
        for status in [200, 404] {
            trace.record(HttpExchange {
                method: "GET".into(),
                url: "https://x.test/users?query=ann%40example.com&echo=k3y%2FWith%2Bodd".into(),
                request_headers: vec![("X-Echo".into(), "k3y/With+odd".into())],
                request_body: None,
                status: Some(status),
                response_headers: vec![],
                response_body: Some(
                    "{\"email\":\"Ann@Example.com\",\"echo\":\"k3y\\/With+odd\"}".into(),
                ),
                error: None,
                elapsed_ms: 1,
            });
        }
        assert_eq!(trace.recorded(), 2);
        assert!(trace.error().is_none());
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for line in &lines {
            let e: HttpExchange = serde_json::from_str(line).unwrap();
            assert!(e.url.contains("person-1%40redacted.invalid"), "{line}");
        }
        for leak in ["k3y", "example.com"] {
            assert!(!text.to_lowercase().contains(leak), "{leak} in {text}");
        }
        let _ = std::fs::remove_file(&path);
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_the_owners_alone_even_when_it_existed() {
        use std::os::unix::fs::PermissionsExt;
        let path = temp("mode.jsonl");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let trace = JsonLinesTrace::create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "", "emptied");
        assert!(format!("{trace:?}").contains("mode.jsonl"));
        let _ = std::fs::remove_file(&path);
    }
}
