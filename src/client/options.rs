//! How the client connects: timeouts, retries, TLS trust and proxy. Turns these options into the
//! `reqwest::Client` every request of a run shares, and describes them (secrets removed) for the
//! run metadata.
//!
//! TLS: https targets are checked against the operating system's roots (rustls with the platform
//! verifier); `ca_cert` adds roots from a PEM file; `insecure` accepts any certificate and is
//! recorded in the run metadata. Requests ignore `HTTP(S)_PROXY` unless `proxy` is given.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::ClientError;
use crate::redact::public_url;

/// Connection settings beyond the target and the request shape.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClientOptions {
    /// Limit on establishing a connection (TCP and TLS); default 10 s.
    #[serde(serialize_with = "opt_secs")]
    pub connect_timeout: Option<Duration>,
    /// Limit from the send to the first content (streaming) or the whole body (non-streaming).
    #[serde(serialize_with = "opt_secs")]
    pub first_token_timeout: Option<Duration>,
    /// Retries after a connection failure, a 429 or a 5xx that came before any content.
    pub retries: u32,
    /// Extra trusted roots (PEM), on top of the system's.
    pub ca_cert: Option<PathBuf>,
    /// Accept any server certificate.
    pub insecure: bool,
    /// Send every request through this proxy.
    #[serde(serialize_with = "redacted_url")]
    pub proxy: Option<String>,
}

/// Default limit on establishing a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl ClientOptions {
    /// The shared HTTP client for `pool` concurrent requests whose whole timeout is `total`.
    pub(super) fn build_http(
        &self,
        pool: usize,
        total: Duration,
    ) -> Result<reqwest::Client, ClientError> {
        super::install_tls_provider();
        let mut b = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(pool.max(1))
            .pool_idle_timeout(Duration::from_secs(90))
            .connector_layer(super::fresh::MarkFresh)
            .connect_timeout(
                self.connect_timeout
                    .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
                    .min(total),
            );
        b = match &self.proxy {
            None => b.no_proxy(),
            Some(url) => {
                let proxy =
                    reqwest::Proxy::all(url.as_str()).map_err(|_| ClientError::BadProxy {
                        proxy: public_url(url),
                    })?;
                b.proxy(proxy)
            }
        };
        if let Some(path) = &self.ca_cert {
            let bad = |reason: String| ClientError::CaCert {
                path: path.clone(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| bad(super::error_chain(&e)))?;
            if certs.is_empty() {
                return Err(bad("no PEM certificate in it".into()));
            }
            b = b.tls_certs_merge(certs);
        }
        if self.insecure {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        b.build()
            .map_err(|e| ClientError::Build(super::error_chain(&e)))
    }
}

fn opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

fn redacted_url<S: serde::Serializer>(u: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match u {
        Some(u) => s.serialize_str(&public_url(u)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_credentials_never_show() {
        assert_eq!(
            public_url("http://bob:hunter2@proxy:3128/x"),
            "http://[redacted]@proxy:3128/x"
        );
        assert_eq!(public_url("http://proxy:3128"), "http://proxy:3128");
        let o = ClientOptions {
            proxy: Some("http://u:p@h:1".into()),
            ..ClientOptions::default()
        };
        assert!(!serde_json::to_string(&o).unwrap().contains("u:p"));
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let o = ClientOptions {
            ca_cert: Some("/nonexistent/ca.pem".into()),
            ..ClientOptions::default()
        };
        let err = o
            .build_http(1, Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
