//! Mutual TLS for the node's one port (rustls through tonic's `tls-ring`): every connection,
//! node or client, must present a certificate signed by the cluster CA, and nodes present their
//! own certificate both as servers and as clients.
//!
//! Under `--cfg madsim` the simulated transport carries messages as objects, with no TLS at
//! all: the material is kept but the TLS configuration types (which madsim-tonic does not
//! export) are not built, and peers are reached in plaintext. TLS is tested on real sockets.

use std::fmt;

#[cfg(not(madsim))]
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// The cluster CA and this node's certificate chain and key, as PEM.
#[derive(Clone)]
#[cfg_attr(madsim, allow(dead_code))]
pub struct TlsMaterial {
    ca: Vec<u8>,
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("TlsMaterial").finish_non_exhaustive()
    }
}

impl TlsMaterial {
    /// PEM bytes of the CA certificate(s), this node's certificate chain and its private key.
    pub fn new(ca: Vec<u8>, cert: Vec<u8>, key: Vec<u8>) -> TlsMaterial {
        TlsMaterial { ca, cert, key }
    }

    /// The server side: present this node's certificate, require a client certificate signed
    /// by the cluster CA.
    #[cfg(not(madsim))]
    pub fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert, &self.key))
            .client_ca_root(Certificate::from_pem(&self.ca))
    }

    /// The client side: trust only the cluster CA, present this node's certificate.
    #[cfg(not(madsim))]
    pub fn client_config(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .identity(Identity::from_pem(&self.cert, &self.key))
    }
}

/// How a node reaches peers: the URI scheme, with TLS the client configuration, and the
/// HTTP/2 keepalive that notices a connection gone silent.
#[derive(Clone, Debug, Default)]
pub struct PeerTransport {
    #[cfg(not(madsim))]
    tls: Option<ClientTlsConfig>,
    keepalive: Option<std::time::Duration>,
}

impl PeerTransport {
    /// Plaintext, or mutual TLS with `tls`.
    #[cfg(not(madsim))]
    pub fn new(tls: Option<&TlsMaterial>) -> PeerTransport {
        PeerTransport {
            tls: tls.map(TlsMaterial::client_config),
            keepalive: None,
        }
    }

    /// The simulated network has no TLS: always plaintext.
    #[cfg(madsim)]
    pub fn new(_tls: Option<&TlsMaterial>) -> PeerTransport {
        PeerTransport { keepalive: None }
    }

    /// The same transport pinging every connection after `interval` of silence, and closing
    /// one whose ping is not answered within `interval` (a node uses its heartbeat timeout):
    /// a connection a partition left silent is replaced instead of waited on.
    pub fn with_keepalive(mut self, interval: std::time::Duration) -> PeerTransport {
        self.keepalive = Some(interval);
        self
    }

    /// An endpoint for `addr` (`host:port`) with this transport's scheme and TLS settings.
    pub fn endpoint(&self, addr: &str) -> Result<tonic::transport::Endpoint, String> {
        let scheme = if self.uses_tls() { "https" } else { "http" };
        let mut endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|error| format!("bad address {addr:?}: {error}"))?;
        if let Some(interval) = self.keepalive {
            endpoint = endpoint
                .http2_keep_alive_interval(interval)
                .keep_alive_timeout(interval)
                .keep_alive_while_idle(true);
        }
        self.secure(endpoint, addr)
    }

    #[cfg(not(madsim))]
    fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    #[cfg(not(madsim))]
    fn secure(
        &self,
        endpoint: tonic::transport::Endpoint,
        addr: &str,
    ) -> Result<tonic::transport::Endpoint, String> {
        match &self.tls {
            Some(tls) => endpoint
                .tls_config(tls.clone())
                .map_err(|error| format!("TLS configuration for {addr}: {error}")),
            None => Ok(endpoint),
        }
    }

    #[cfg(madsim)]
    fn uses_tls(&self) -> bool {
        false
    }

    #[cfg(madsim)]
    fn secure(
        &self,
        endpoint: tonic::transport::Endpoint,
        _addr: &str,
    ) -> Result<tonic::transport::Endpoint, String> {
        Ok(endpoint)
    }
}
