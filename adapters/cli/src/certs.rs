//! `dbadger certs`: a certificate authority and certificates for a local test cluster, so that
//! mutual TLS can be tried by copy and paste.
//!
//! It writes, into `--dir`: `ca.pem` and `ca-key.pem` (the authority), and for each name given
//! with `--names` (default `node1,node2,node3,client`) `NAME.pem` and `NAME-key.pem`: a
//! certificate signed by the authority, valid as server and as client (mutual TLS uses both),
//! with a subject alternative name for each `--hosts` entry. Existing files are kept unless
//! `--force`. These are test certificates: the CA key sits next to them in plain text.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// The flags of `dbadger certs`.
#[derive(Debug, Args)]
pub(crate) struct CertsArgs {
    /// Directory to write the files into (created if missing).
    #[arg(long, default_value = "certs")]
    dir: PathBuf,
    /// Host names and IP addresses the certificates are valid for.
    #[arg(long, value_delimiter = ',', default_value = "localhost,127.0.0.1")]
    hosts: Vec<String>,
    /// One certificate per name.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "node1,node2,node3,client"
    )]
    names: Vec<String>,
    /// Overwrite files that exist.
    #[arg(long)]
    force: bool,
}

fn authority() -> Result<CertifiedIssuer<'static, KeyPair>, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
        .distinguished_name
        .push(DnType::CommonName, "dbadger test CA");
    CertifiedIssuer::self_signed(params, KeyPair::generate()?)
}

/// A certificate for `name`, valid for `hosts`, as server and client: (certificate, key) PEM.
fn issue(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    name: &str,
    hosts: &[String],
) -> Result<(String, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(hosts.to_vec())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn write(path: &Path, contents: &str, force: bool) -> Result<(), String> {
    if path.exists() && !force {
        return Err(format!(
            "{} exists (use --force to overwrite)",
            path.display()
        ));
    }
    fs::write(path, contents).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

fn generate(args: &CertsArgs) -> Result<Vec<PathBuf>, String> {
    if args.hosts.iter().all(|host| host.trim().is_empty()) {
        return Err("--hosts names no host".to_owned());
    }
    fs::create_dir_all(&args.dir)
        .map_err(|error| format!("cannot create {}: {error}", args.dir.display()))?;
    let failed = |error: rcgen::Error| format!("cannot generate a certificate: {error}");
    let issuer = authority().map_err(failed)?;
    let mut written = Vec::new();
    let mut put = |file: String, contents: &str| -> Result<(), String> {
        let path = args.dir.join(file);
        write(&path, contents, args.force)?;
        written.push(path);
        Ok(())
    };
    put("ca.pem".to_owned(), &issuer.pem())?;
    put("ca-key.pem".to_owned(), &issuer.key().serialize_pem())?;
    for name in &args.names {
        let (cert, key) = issue(&issuer, name, &args.hosts).map_err(failed)?;
        put(format!("{name}.pem"), &cert)?;
        put(format!("{name}-key.pem"), &key)?;
    }
    Ok(written)
}

/// Runs `dbadger certs`.
pub(crate) fn run(args: CertsArgs) -> ExitCode {
    match generate(&args) {
        Ok(written) => {
            for path in written {
                eprintln!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("dbadger: {message}");
            ExitCode::FAILURE
        }
    }
}
