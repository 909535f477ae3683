//! Mutual TLS on the node's one port: a cluster whose nodes hold certificates from one CA
//! forms and serves; a client with a certificate from that CA is served; a client without a
//! certificate, with a certificate from a foreign CA, or in plaintext gets nothing.

use dbadger::{PemSource, ReadPreference, TlsConfig};
use dbadger_proto::v1;
use dbadger_proto::v1::kv_client::KvClient;
use dbadger_tests::start_cluster_with;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// A certificate authority for tests.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A PEM certificate and key.
struct Credentials {
    cert: String,
    key: String,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let issuer =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
        Authority { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for loopback usable as server and client certificate.
    fn issue(&self) -> Credentials {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("params");
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        Credentials {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

async fn client(
    addr: &str,
    tls: ClientTlsConfig,
) -> Result<KvClient<Channel>, tonic::transport::Error> {
    let channel = Endpoint::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(KvClient::new(channel))
}

async fn try_set(addr: &str, tls: ClientTlsConfig) -> Result<(), String> {
    let mut kv = client(addr, tls).await.map_err(|e| e.to_string())?;
    kv.set(v1::SetRequest {
        key: b"x".to_vec(),
        value: b"y".to_vec(),
    })
    .await
    .map(|_| ())
    .map_err(|status| status.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_admits_only_the_cluster_ca() {
    let authority = Authority::new("dbadger test CA");
    let ca = authority.pem();
    let nodes = {
        let ca = ca.clone();
        let credentials: Vec<Credentials> = (0..3).map(|_| authority.issue()).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        start_cluster_with(3, &move |config| {
            let mine = &credentials[next.fetch_add(1, std::sync::atomic::Ordering::SeqCst)];
            config.tls = Some(TlsConfig {
                ca: PemSource::Bytes(ca.clone().into_bytes()),
                cert: PemSource::Bytes(mine.cert.clone().into_bytes()),
                key: PemSource::Bytes(mine.key.clone().into_bytes()),
            });
        })
        .await
    };
    let revision = nodes[2]
        .db
        .set(b"k", b"v")
        .await
        .expect("write over TLS, forwarded");
    let entry = nodes[1]
        .db
        .get(b"k", ReadPreference::Leader)
        .await
        .expect("read over TLS");
    assert_eq!(entry.revision, revision);

    let addr = nodes[1].db.addr().to_owned();
    let trusted = Certificate::from_pem(&ca);
    let member = authority.issue();
    let good = ClientTlsConfig::new()
        .ca_certificate(trusted.clone())
        .identity(Identity::from_pem(&member.cert, &member.key));
    try_set(&addr, good)
        .await
        .expect("a client with a cluster certificate is served");

    let anonymous = ClientTlsConfig::new().ca_certificate(trusted.clone());
    assert!(
        try_set(&addr, anonymous).await.is_err(),
        "client without a certificate was served"
    );

    let foreign = Authority::new("someone else").issue();
    let impostor = ClientTlsConfig::new()
        .ca_certificate(trusted)
        .identity(Identity::from_pem(&foreign.cert, &foreign.key));
    assert!(
        try_set(&addr, impostor).await.is_err(),
        "client with a foreign CA's certificate was served"
    );

    let plaintext = KvClient::connect(format!("http://{addr}")).await;
    let refused = match plaintext {
        Err(_) => true,
        Ok(mut kv) => kv
            .set(v1::SetRequest {
                key: b"x".to_vec(),
                value: b"y".to_vec(),
            })
            .await
            .is_err(),
    };
    assert!(refused, "plaintext client was served");
    for node in &nodes {
        node.db.close().await;
    }
}
