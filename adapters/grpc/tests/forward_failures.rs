//! A forwarded request whose connection dies after it was sent (the leader killed under it) is
//! reported as what it is: unavailable, retryable, and for a write of unknown outcome. Never
//! INTERNAL, which says "a bug".

use std::time::Duration;

use dbadger_core::{Command, Query, RequestError};
use dbadger_grpc::{Forwarder, PeerTransport};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// A peer that accepts one connection, reads what the client sends (the request), and then
/// drops the connection without answering: what a client sees when the leader is killed while
/// it holds the request.
async fn dying_peer() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = vec![0; 64 << 10];
            // The HTTP/2 preface, settings, headers and the request body arrive together.
            let _ = tokio::time::timeout(Duration::from_secs(2), socket.read(&mut buffer)).await;
            drop(socket);
        }
    });
    addr
}

/// A write forwarded to a peer that dies holding it is `Unavailable` with an unknown outcome,
/// flagged as possibly delivered; a read is `Unavailable` and safe to retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_after_sending_is_unavailable_with_unknown_outcome() {
    let guard = Duration::from_secs(20);
    tokio::time::timeout(guard, async {
        let addr = dying_peer().await;
        let forwarder = Forwarder::new(PeerTransport::default());
        let command = Command::Set {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        };
        let failure = forwarder
            .write(&addr, &command, Duration::from_secs(5))
            .await
            .expect_err("the peer never answers");
        assert!(failure.may_have_arrived, "{failure:?}");
        assert!(
            matches!(failure.error, RequestError::Unavailable { .. }),
            "a lost connection is Unavailable, not {:?}",
            failure.error
        );
        assert!(failure.error.is_retryable(), "{:?}", failure.error);
        assert_eq!(
            failure.error.outcome(),
            dbadger_core::Outcome::Unknown,
            "{:?}",
            failure.error
        );

        let query = Query::Get { key: b"k".to_vec() };
        let failure = forwarder
            .linearizable_read(&addr, &query, Duration::from_secs(5))
            .await
            .expect_err("the peer never answers");
        assert!(
            matches!(failure.error, RequestError::Unavailable { .. }),
            "{:?}",
            failure.error
        );
        assert!(failure.error.is_retryable(), "{:?}", failure.error);
    })
    .await
    .expect("the test finishes within its guard");
}
