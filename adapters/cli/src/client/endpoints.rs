//! The nodes a client command talks to, tried in order within one deadline.

use std::time::Duration;

use dbadger_core::{Outcome, RequestError};
use dbadger_grpc::status::from_status;
use dbadger_grpc::{PeerTransport, TlsMaterial};
use tokio::time::Instant;
use tonic::transport::Channel;

use super::failover::{Effect, Failover, after_failure, may_have_applied};
use super::{ClientArgs, Exit, Failure};

/// The endpoints of one command, with its TLS material and deadline.
pub(crate) struct Endpoints {
    addrs: Vec<String>,
    transport: PeerTransport,
    timeout: Duration,
}

fn read_pem(path: &std::path::Path, what: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|error| {
        Failure::usage(format!(
            "cannot read the {what} {}: {error}",
            path.display()
        ))
    })
}

impl Endpoints {
    pub(crate) fn new(args: &ClientArgs) -> Result<Endpoints, Failure> {
        let addrs: Vec<String> = args
            .endpoints
            .iter()
            .map(|addr| addr.trim().to_owned())
            .filter(|addr| !addr.is_empty())
            .collect();
        if addrs.is_empty() {
            return Err(Failure::usage("--endpoints names no address"));
        }
        let tls = match (&args.ca, &args.cert, &args.key) {
            (Some(ca), Some(cert), Some(key)) => Some(TlsMaterial::new(
                read_pem(ca, "CA certificate")?,
                read_pem(cert, "certificate")?,
                read_pem(key, "private key")?,
            )),
            _ => None,
        };
        Ok(Endpoints {
            addrs,
            transport: PeerTransport::new(tls.as_ref()),
            timeout: args.timeout,
        })
    }

    /// The same deadline and TLS material, with `addr` as the only endpoint.
    pub(crate) fn only(&self, addr: &str) -> Endpoints {
        Endpoints {
            addrs: vec![addr.to_owned()],
            transport: self.transport.clone(),
            timeout: self.timeout,
        }
    }

    /// The endpoints, in order.
    pub(crate) fn addrs(&self) -> &[String] {
        &self.addrs
    }

    async fn connect(&self, addr: &str, within: Duration) -> Result<Channel, String> {
        let endpoint = self
            .transport
            .endpoint(addr)?
            .connect_timeout(within.min(Duration::from_secs(2)));
        endpoint.connect().await.map_err(|error| {
            let mut reason = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !reason.contains(&cause_text) {
                    reason = format!("{reason}: {cause_text}");
                }
                source = cause.source();
            }
            reason
        })
    }

    /// Sends a request built by `attempt` (given a channel and the time left) to the
    /// endpoints in order until one answers, or the failure may not be passed on to the next
    /// one (`failover.rs`), or the deadline passes.
    pub(crate) async fn call<T, F, Fut>(&self, effect: Effect, mut attempt: F) -> Result<T, Failure>
    where
        F: FnMut(Channel, Duration) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        let deadline = Instant::now() + self.timeout;
        let mut last: Option<Failure> = None;
        for addr in &self.addrs {
            let within = deadline.saturating_duration_since(Instant::now());
            if within.is_zero() {
                break;
            }
            let channel = match self.connect(addr, within).await {
                Ok(channel) => channel,
                Err(reason) => {
                    let error = RequestError::unavailable(reason, Outcome::NotApplied);
                    let failure = Failure {
                        exit: Exit::of_error(&error),
                        message: format!("cannot reach {addr}: {}", error.reason()),
                    };
                    match after_failure(effect, false, &error) {
                        Failover::NextEndpoint => last = Some(failure),
                        Failover::Stop => return Err(failure),
                    }
                    continue;
                }
            };
            let within = deadline.saturating_duration_since(Instant::now());
            let status = match tokio::time::timeout(within, attempt(channel, within)).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(status)) => status,
                Err(_) => tonic::Status::deadline_exceeded("Timeout expired"),
            };
            let error = from_status(&status);
            let mut message = format!("{addr}: {}", status.message());
            if may_have_applied(effect, &error) && !message.contains("may have applied") {
                message.push_str(" (the write may have applied; read before retrying it)");
            }
            let failure = Failure {
                exit: Exit::of_error(&error),
                message,
            };
            match after_failure(effect, true, &error) {
                Failover::NextEndpoint => last = Some(failure),
                Failover::Stop => return Err(failure),
            }
        }
        Err(last.unwrap_or_else(|| Failure {
            exit: Exit::Unavailable,
            message: format!("no answer within {} ms", self.timeout.as_millis()),
        }))
    }
}

/// A request with its deadline set, so the node budgets its work to it.
pub(crate) fn request<T>(message: T, within: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(within);
    request
}
