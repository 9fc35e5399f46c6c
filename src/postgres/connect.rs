//! How the store reaches PostgreSQL: the connection string read as libpq reads it (`sslmode`,
//! `sslrootcert`), TLS with rustls on ring, and timeouts and keepalives on every connection.
//!
//! libpq's TLS modes, as this module implements them (libpq's `fe-secure-openssl.c`: the chain
//! is verified whenever a root certificate exists, in every mode that uses TLS):
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `allow` | only if a plain connection fails | verified as `verify-ca` when a root certificate exists, else not |
//! | `prefer` (default) | tried first; a plain connection if the server refuses TLS or the TLS attempt fails (a chain that fails verification too) | as `allow` |
//! | `require` | always | as `allow` |
//! | `verify-ca` | always | signed by a CA of the root certificate |
//! | `verify-full` | always | signed by a CA of the root certificate, and naming the host |
//!
//! The root certificate is `sslrootcert` (a PEM file of CA certificates, or `system` for the
//! Mozilla roots bundled with this library), else `~/.postgresql/root.crt` when it exists
//! (libpq's default); `verify-ca` and `verify-full` refuse to connect without one. As in libpq
//! 16, `sslrootcert=system` makes `verify-full` the default and refuses a weaker `sslmode`. One
//! difference, on the safe side: an `sslrootcert` that is given but cannot be read is an error in
//! every mode (libpq then connects without verifying, except in the `verify-` modes). A setting
//! this module cannot honour (an unknown `sslmode`, an unreadable `sslrootcert`, client
//! certificates) is a permanent [`Error::Unsupported`], as is a server certificate that fails
//! verification where no plain connection is tried: a retry would not change either.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use oncall_core::Error;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio_postgres::config::SslMode as WireMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::Socket;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How [`PostgresStateStore::connect_with`](super::PostgresStateStore::connect_with) sets up
/// its pool and every connection in it.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Connections kept open at most (default 8). A [`Worker`](crate::worker::Worker) grows
    /// its store's pool to what it needs (`WorkerOptions::pool_size`).
    pub pool_size: usize,
    /// The server's `statement_timeout` on every connection (default 30 s); a call of the store
    /// also gives up on its own 5 s after it, so a hung call never stalls a worker.
    pub statement_timeout: Duration,
    /// How long opening a connection may take (default 10 s), unless the URL's
    /// `connect_timeout` says otherwise.
    pub connect_timeout: Duration,
    /// How long a caller waits for a free connection of the pool (default 30 s).
    pub pool_wait_timeout: Duration,
    /// TCP keepalives: idle time before the first probe (default 30 s; probes every 10 s, 3
    /// lost ones close the connection), and the time unacknowledged data may wait (Linux's
    /// `TCP_USER_TIMEOUT`, default 30 s); unless the URL sets them (`keepalives_idle`,
    /// `tcp_user_timeout`, `keepalives=0`).
    pub keepalive_idle: Duration,
    /// See [`keepalive_idle`](Self::keepalive_idle).
    pub tcp_user_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> ConnectOptions {
        ConnectOptions {
            pool_size: 8,
            statement_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            pool_wait_timeout: Duration::from_secs(30),
            keepalive_idle: Duration::from_secs(30),
            tcp_user_timeout: Duration::from_secs(30),
        }
    }
}

impl ConnectOptions {
    /// Options with a pool of `pool_size` connections.
    pub fn with_pool_size(mut self, pool_size: usize) -> ConnectOptions {
        self.pool_size = pool_size.max(1);
        self
    }

    /// Options with another statement timeout.
    pub fn with_statement_timeout(mut self, timeout: Duration) -> ConnectOptions {
        self.statement_timeout = timeout;
        self
    }

    /// How long one call of the store may take in all: the statement timeout and 5 s.
    pub(super) fn call_timeout(&self) -> Duration {
        self.statement_timeout + Duration::from_secs(5)
    }
}

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, Error> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(settings_error(format!(
                    "sslmode {other:?} is not one of disable, allow, prefer, require, verify-ca, \
                     verify-full"
                )))
            }
        })
    }
}

/// The connections of one database: the parsed settings (with the password: never shown) and
/// the TLS connectors its `sslmode` needs.
pub(super) struct Connector {
    config: tokio_postgres::Config,
    mode: SslMode,
    /// Whether TLS connections verify the server's chain (a root certificate exists).
    verifies: bool,
    /// Verifies the server's chain (and in verify-full its name) when a root certificate
    /// exists; encrypts without verifying otherwise.
    tls: MakeRustlsConnect,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The config holds the password: only the mode is shown.
        f.debug_struct("Connector")
            .field("sslmode", &self.mode)
            .field("verifies", &self.verifies)
            .finish_non_exhaustive()
    }
}

/// A connection and its driver, as `tokio_postgres::Config::connect` gives them.
pub(super) type Connection =
    tokio_postgres::Connection<Socket, <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream>;

impl Connector {
    /// Reads `url` (a `postgres://` URL or `key=value` pairs) as libpq does, with `options`'
    /// timeouts and keepalives where the URL sets none.
    pub(super) fn new(url: &str, options: &ConnectOptions) -> Result<Connector, Error> {
        Connector::with_home(url, options, std::env::var_os("HOME").map(PathBuf::from))
    }

    /// [`new`](Self::new), with `home` as the home folder (where libpq looks for
    /// `.postgresql/root.crt`).
    fn with_home(
        url: &str,
        options: &ConnectOptions,
        home: Option<PathBuf>,
    ) -> Result<Connector, Error> {
        let (rest, ssl) = take_tls_params(url)?;
        let mut config: tokio_postgres::Config = rest
            .parse()
            .map_err(|e| settings_error(format!("invalid PostgreSQL connection string: {e}")))?;
        apply_options(&mut config, options);
        let given = ssl.mode.as_deref().map(SslMode::parse).transpose()?;
        let system = ssl.root_cert.as_deref() == Some("system");
        let mode = match (given, system) {
            // libpq 16: the system's roots are for verify-full only.
            (None, true) => SslMode::VerifyFull,
            (Some(mode), true) if mode != SslMode::VerifyFull => {
                return Err(settings_error(
                    "sslrootcert=system needs sslmode verify-full (as libpq refuses a weaker \
                     mode with it)"
                        .into(),
                ))
            }
            (Some(mode), _) => mode,
            (None, false) => SslMode::Prefer,
        };
        let roots = match mode {
            SslMode::Disable => None,
            _ => load_roots(ssl.root_cert.as_deref(), home)?,
        };
        let verifies = roots.is_some();
        let verifier: Arc<dyn ServerCertVerifier> = match (roots, mode) {
            (None, SslMode::VerifyCa | SslMode::VerifyFull) => {
                return Err(settings_error(
                    "sslmode verify-ca and verify-full need sslrootcert (a PEM file of CA \
                     certificates, or `system` for the bundled Mozilla roots); \
                     ~/.postgresql/root.crt does not exist"
                        .into(),
                ))
            }
            (None, _) => Arc::new(NoVerification(provider())),
            // A root certificate: the chain is verified in every mode, the name only in
            // verify-full.
            (Some(roots), mode) => {
                let full = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                    .build()
                    .map_err(|e| settings_error(format!("sslrootcert: {e}")))?;
                if mode == SslMode::VerifyFull {
                    full
                } else {
                    Arc::new(ChainOnly(full))
                }
            }
        };
        let tls = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| settings_error(format!("TLS settings: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Connector {
            config,
            mode,
            verifies,
            tls: MakeRustlsConnect::new(tls),
        })
    }

    /// Opens one connection as the mode asks, falling back as libpq does.
    pub(super) async fn connect(
        &self,
    ) -> Result<(tokio_postgres::Client, Connection), tokio_postgres::Error> {
        let attempt = |mode: WireMode| {
            let mut config = self.config.clone();
            config.ssl_mode(mode);
            let tls = self.tls.clone();
            async move { config.connect(tls).await }
        };
        match self.mode {
            SslMode::Disable => attempt(WireMode::Disable).await,
            // Plain first; TLS if that fails (a server that requires it).
            SslMode::Allow => match attempt(WireMode::Disable).await {
                Ok(c) => Ok(c),
                Err(first) => attempt(WireMode::Require)
                    .await
                    .map_err(|second| more_telling(first, second)),
            },
            // TLS if the server offers it (plain if it does not); plain again if the TLS
            // attempt fails for any reason, as libpq does (a server whose pg_hba refuses TLS
            // connections of this user, a handshake that fails).
            SslMode::Prefer => match attempt(WireMode::Prefer).await {
                Ok(c) => Ok(c),
                Err(first) => attempt(WireMode::Disable).await.map_err(|second| {
                    // A certificate that failed verification says more than a server that
                    // then refused the plain connection.
                    if is_permanent_tls_failure(&first) {
                        first
                    } else {
                        more_telling(first, second)
                    }
                }),
            },
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                attempt(WireMode::Require).await
            }
        }
    }
}

/// Of two failed attempts, the one the server explained (a refused password): a second attempt
/// that could not even connect says less.
fn more_telling(
    first: tokio_postgres::Error,
    second: tokio_postgres::Error,
) -> tokio_postgres::Error {
    if first.as_db_error().is_some() && second.as_db_error().is_none() {
        first
    } else {
        second
    }
}

/// The pool's way of opening connections: through the [`Connector`].
pub(super) struct PoolConnect(pub(super) Arc<Connector>);

impl deadpool_postgres::Connect for PoolConnect {
    fn connect(
        &self,
        _: &tokio_postgres::Config,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<
                        (tokio_postgres::Client, tokio::task::JoinHandle<()>),
                        tokio_postgres::Error,
                    >,
                > + Send
                + '_,
        >,
    > {
        Box::pin(async move {
            let (client, connection) = self.0.connect().await?;
            let driver = tokio::spawn(async move {
                // A connection that fails is seen by its next user (and replaced).
                let _ = connection.await;
            });
            Ok((client, driver))
        })
    }
}

/// The TLS parameters taken out of a connection string (tokio-postgres knows only some modes
/// and no `sslrootcert`).
#[derive(Debug, Default)]
struct TlsParams {
    mode: Option<String>,
    root_cert: Option<String>,
}

/// Client certificates are not supported: said so rather than ignored.
const UNSUPPORTED: &[&str] = &["sslcert", "sslkey", "sslpassword", "sslcrl", "sslcrldir"];

/// Splits `url` into the string tokio-postgres reads and the TLS parameters this module reads.
fn take_tls_params(url: &str) -> Result<(String, TlsParams), Error> {
    let mut params = TlsParams::default();
    let mut keep = |key: &str, value: String| -> Result<bool, Error> {
        match key {
            "sslmode" => params.mode = Some(value),
            "sslrootcert" => params.root_cert = Some(value),
            k if UNSUPPORTED.contains(&k) => {
                return Err(settings_error(format!(
                    "{k}: client certificates are not supported; build the pool yourself and \
                     use PostgresStateStore::from_pool"
                )))
            }
            _ => return Ok(true),
        }
        Ok(false)
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_owned(), params));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if keep(key, percent_decode(value)?)? {
                kept.push(pair);
            }
        }
        if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else {
        let mut kept = Vec::new();
        for (key, value) in key_value_pairs(url)? {
            if keep(&key, value.clone())? {
                let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
                kept.push(format!("{key}='{escaped}'"));
            }
        }
        kept.join(" ")
    };
    Ok((rest, params))
}

/// The pairs of a libpq `key=value` string (values plain or single-quoted, `\` escapes).
fn key_value_pairs(text: &str) -> Result<Vec<(String, String)>, Error> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.peek().copied() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(settings_error(format!(
                "invalid PostgreSQL connection string: {key:?} has no value"
            )));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let quoted = chars.peek() == Some(&'\'');
        if quoted {
            chars.next();
        }
        let mut value = String::new();
        let mut closed = !quoted;
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.extend(chars.next()),
                '\'' if quoted => {
                    closed = true;
                    break;
                }
                c if !quoted && c.is_whitespace() => break,
                c => value.push(c),
            }
        }
        if !closed {
            return Err(settings_error(
                "invalid PostgreSQL connection string: an unterminated quoted value".into(),
            ));
        }
        pairs.push((key, value));
    }
}

fn percent_decode(value: &str) -> Result<String, Error> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    settings_error("invalid PostgreSQL connection string: a bad %-escape".into())
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| {
        settings_error("invalid PostgreSQL connection string: a %-escape is not UTF-8".into())
    })
}

/// Timeouts and keepalives where the URL set none, and the statement timeout on the server.
fn apply_options(config: &mut tokio_postgres::Config, options: &ConnectOptions) {
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(options.connect_timeout);
    }
    // libpq's default idle time is two hours: anything else came from the URL.
    if config.get_keepalives() && config.get_keepalives_idle() == Duration::from_secs(7200) {
        config.keepalives_idle(options.keepalive_idle);
        if config.get_keepalives_interval().is_none() {
            config.keepalives_interval(Duration::from_secs(10));
        }
        if config.get_keepalives_retries().is_none() {
            config.keepalives_retries(3);
        }
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(options.tcp_user_timeout);
    }
    if config.get_application_name().is_none() {
        config.application_name("oncall-sync");
    }
    // Ours first: settings the URL's own `options` give win.
    let ms = options.statement_timeout.as_millis();
    let ours = format!(
        "-c statement_timeout={ms} -c idle_in_transaction_session_timeout={}",
        ms.saturating_mul(2)
    );
    let options = match config.get_options() {
        Some(theirs) => format!("{ours} {theirs}"),
        None => ours,
    };
    config.options(&options);
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The CAs a connection verifies the server's chain against: `sslrootcert` (which must be
/// readable), else `~/.postgresql/root.crt` where it exists; `None` without either.
fn load_roots(
    root_cert: Option<&str>,
    home: Option<PathBuf>,
) -> Result<Option<rustls::RootCertStore>, Error> {
    let path = match root_cert {
        Some("system") => {
            return Ok(Some(rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            }))
        }
        Some(path) => PathBuf::from(path),
        None => match home.map(|h| h.join(".postgresql/root.crt")) {
            Some(default) if default.exists() => default,
            _ => return Ok(None),
        },
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = read_certificates(&path)?;
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(settings_error(format!(
            "sslrootcert {}: no CA certificate in it",
            path.display()
        )));
    }
    Ok(Some(roots))
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let unreadable = |why: String| settings_error(format!("sslrootcert {}: {why}", path.display()));
    CertificateDer::pem_file_iter(path)
        .map_err(|e| unreadable(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(e.to_string()))
}

fn settings_error(message: String) -> Error {
    Error::Unsupported {
        message: format!("PostgreSQL connection settings: {message}"),
    }
}

/// Whether a failed connection is the server's certificate or TLS refused for good (a retry
/// would fail the same way): verification failed, or `require` met a server without TLS.
pub(super) fn is_permanent_tls_failure(error: &tokio_postgres::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        let tls = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = tls {
            return matches!(
                tls,
                rustls::Error::InvalidCertificate(_)
                    | rustls::Error::NoCertificatesPresented
                    | rustls::Error::UnsupportedNameType
                    | rustls::Error::PeerIncompatible(_)
            );
        }
        cause = e.source();
    }
    // tokio-postgres's own words for `require` against a server without TLS.
    error.to_string().contains("server does not support TLS")
}

/// A TLS failure's reason, for messages: what rustls found wrong with the certificate.
pub(super) fn tls_reason(error: &tokio_postgres::Error) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            return Some(format!("the server's certificate: {inner}"));
        }
        cause = e.source();
    }
    None
}

/// `prefer`, `allow` and `require` without a root certificate: encrypted, not authenticated
/// (libpq's behaviour). The handshake's signatures are still checked.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted CA; the name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The name is checked after the chain: a name error means the chain was good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, Option<String>, Option<String>) {
        let (rest, p) = take_tls_params(url).unwrap();
        (rest, p.mode, p.root_cert)
    }

    #[test]
    fn tls_parameters_are_taken_out_of_urls_and_key_value_strings() {
        assert_eq!(
            split("postgres://u:p@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x"),
            (
                "postgres://u:p@h/db?application_name=x".into(),
                Some("verify-full".into()),
                Some("/etc/ca.pem".into())
            )
        );
        assert_eq!(
            split("postgresql://h/db?sslmode=require"),
            ("postgresql://h/db".into(), Some("require".into()), None)
        );
        assert_eq!(
            split("postgres://h/db"),
            ("postgres://h/db".into(), None, None)
        );
        assert_eq!(
            split("host=h password='it s' sslmode = verify-ca sslrootcert='/a b/ca.pem' dbname=x"),
            (
                "host='h' password='it s' dbname='x'".into(),
                Some("verify-ca".into()),
                Some("/a b/ca.pem".into())
            )
        );
        assert_eq!(
            split(r"host=h password='a\'b c' sslmode=disable"),
            (
                r"host='h' password='a\'b c'".into(),
                Some("disable".into()),
                None
            )
        );
    }

    #[test]
    fn bad_settings_are_permanent_errors_that_never_show_the_password() {
        for url in [
            "postgres://u:hunter2@h/db?sslmode=verify-everything",
            "postgres://u:hunter2@h/db?sslcert=%2Fc.pem",
            "postgres://u:hunter2@h/db?sslmode=verify-full&sslrootcert=%2Fno%2Fsuch.pem",
            "postgres://u:hunter2@h/db?sslrootcert=%zz",
            "host=h password='hunter2",
            "postgres://u:hunter2@h:notaport/db",
        ] {
            let e = Connector::new(url, &ConnectOptions::default()).unwrap_err();
            assert!(!e.is_transient(), "{url}: {e}");
            assert!(!e.to_string().contains("hunter2"), "{url}: {e}");
        }
    }

    #[test]
    fn sslrootcert_system_means_verify_full_and_refuses_weaker_modes_as_libpq() {
        let c = Connector::new(
            "postgres://h/db?sslrootcert=system",
            &ConnectOptions::default(),
        )
        .unwrap();
        assert_eq!(c.mode, SslMode::VerifyFull);
        for mode in ["disable", "allow", "prefer", "require", "verify-ca"] {
            let url = format!("postgres://u:hunter2@h/db?sslrootcert=system&sslmode={mode}");
            let e = Connector::new(&url, &ConnectOptions::default()).unwrap_err();
            assert!(
                !e.is_transient() && e.to_string().contains("verify-full"),
                "{e}"
            );
        }
    }

    /// A CA certificate (it signed nothing), as a root file.
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBqzCCAVGgAwIBAgIUeK+TF0kKZyXACqBFtyQZq4AZZrEwCgYIKoZIzj0EAwIw
IzEhMB8GA1UEAwwYb25jYWxsLXN5bmMgdW5pdCB0ZXN0IENBMB4XDTI2MTIwNjAz
MDg0MFoXDTM2MTIwMzAzMDg0MFowIzEhMB8GA1UEAwwYb25jYWxsLXN5bmMgdW5p
dCB0ZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEcEFAxckyLlkiwgrh
tIQpSAoFeBAiNS3lqa0HJrUee6K1QGipPqN+J2JQOWKTFeZWI9QVeC+zhdHjinib
T9thqqNjMGEwHQYDVR0OBBYEFGoRr28B0gaegv5BruTctdc0YPgsMB8GA1UdIwQY
MBaAFGoRr28B0gaegv5BruTctdc0YPgsMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0P
AQH/BAQDAgIEMAoGCCqGSM49BAMCA0gAMEUCIQCb4TKs9aRPs4zmCvIUUkgIXY6t
O5oDMVb4rihfknoNPQIgQGVCps2Iy9LcE8/m5t4nMJVur1dcokfJiLg0wzsZaHs=
-----END CERTIFICATE-----
";

    #[test]
    fn a_root_certificate_in_the_home_folder_is_verified_in_every_mode_that_uses_tls() {
        let home = std::env::temp_dir().join(format!("oncall-home-{}", std::process::id()));
        std::fs::create_dir_all(home.join(".postgresql")).unwrap();
        let options = ConnectOptions::default();
        let connector = |url: &str, home: &Path| {
            Connector::with_home(url, &options, Some(home.to_owned())).unwrap()
        };
        // Without ~/.postgresql/root.crt: encrypted, not verified.
        for mode in ["allow", "prefer", "require"] {
            let url = format!("postgres://h/db?sslmode={mode}");
            assert!(!connector(&url, &home).verifies, "{mode}");
        }
        std::fs::write(home.join(".postgresql/root.crt"), TEST_CA).unwrap();
        for mode in ["allow", "prefer", "require", "verify-ca", "verify-full"] {
            let url = format!("postgres://h/db?sslmode={mode}");
            let c = connector(&url, &home);
            assert!(
                c.verifies,
                "{mode}: libpq verifies the chain with a root file"
            );
            assert_eq!(
                format!("{:?}", c.mode).to_lowercase(),
                mode.replace('-', "")
            );
        }
        assert!(!connector("postgres://h/db", &home)
            .mode
            .eq(&SslMode::Disable));
        assert!(
            connector("postgres://h/db", &home).verifies,
            "prefer, the default"
        );
        assert!(!connector("postgres://h/db?sslmode=disable", &home).verifies);
        let _ = std::fs::remove_dir_all(&home);
    }

    #[test]
    fn a_given_sslrootcert_that_cannot_be_read_is_refused_in_every_mode() {
        for mode in ["allow", "prefer", "require", "verify-ca"] {
            let url = format!("postgres://h/db?sslmode={mode}&sslrootcert=%2Fno%2Fsuch.pem");
            let e = Connector::new(&url, &ConnectOptions::default()).unwrap_err();
            assert!(!e.is_transient(), "{mode}: {e}");
        }
        // disable never reads it.
        assert!(Connector::new(
            "postgres://h/db?sslmode=disable&sslrootcert=%2Fno%2Fsuch.pem",
            &ConnectOptions::default()
        )
        .is_ok());
    }

    #[test]
    fn timeouts_and_keepalives_are_set_where_the_url_sets_none() {
        let c = Connector::new("postgres://h/db", &ConnectOptions::default()).unwrap();
        assert_eq!(c.mode, SslMode::Prefer);
        assert_eq!(c.config.get_keepalives_idle(), Duration::from_secs(30));
        assert_eq!(
            c.config.get_tcp_user_timeout(),
            Some(&Duration::from_secs(30))
        );
        assert!(c
            .config
            .get_options()
            .unwrap()
            .starts_with("-c statement_timeout=30000"));
        let c = Connector::new(
            "postgres://h/db?keepalives_idle=5&options=-c%20statement_timeout%3D1000",
            &ConnectOptions::default(),
        )
        .unwrap();
        assert_eq!(c.config.get_keepalives_idle(), Duration::from_secs(5));
        assert!(c
            .config
            .get_options()
            .unwrap()
            .ends_with("-c statement_timeout=1000"));
        assert!(!format!("{c:?}").contains("db"));
    }
}
