//! TLS server configuration: the administrator's certificate from `[tls]`, or a
//! self-signed one generated once under `<data_dir>/tls/` and reused after.
//!
//! Only the ring crypto provider is used, explicitly, so that the process does
//! not depend on a process-wide default provider being installed.

use std::fs;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use postamt_config::Config;
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::NetError;

/// Paths of the generated certificate and key for a data directory:
/// `<data_dir>/tls/cert.pem` and `<data_dir>/tls/key.pem`.
pub fn generated_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// Builds the server TLS configuration (TLS 1.2 and 1.3, ring provider).
///
/// With `[tls]` configured, loads that chain and key. Otherwise uses the
/// certificate generated under `<data_dir>/tls/`, generating it first (for
/// `config.hostname` and `localhost`) if it does not exist yet. The generated
/// certificate is reused as is, also after `hostname` changes; delete the two
/// files to get a new one. Does blocking file I/O; meant to be called once at
/// start.
pub fn load_or_generate(config: &Config) -> Result<Arc<ServerConfig>, NetError> {
    let (cert_path, key_path) = match &config.tls {
        Some(files) => (files.cert.clone(), files.key.clone()),
        None => {
            let (cert_path, key_path) = generated_paths(&config.data_dir);
            let have_cert = exists(&cert_path)?;
            let have_key = exists(&key_path)?;
            if !(have_cert && have_key) {
                if have_cert || have_key {
                    // A lone cert or key is useless (e.g. a crash between the
                    // two renames below), so start over rather than fail.
                    tracing::warn!(
                        cert = %cert_path.display(),
                        key = %key_path.display(),
                        "only one of the generated certificate and key exists; generating both anew"
                    );
                }
                generate(&config.hostname, &cert_path, &key_path)?;
                tracing::info!(
                    hostname = %config.hostname,
                    cert = %cert_path.display(),
                    "generated a self-signed TLS certificate"
                );
            }
            (cert_path, key_path)
        }
    };
    let chain = load_certs(&cert_path)?;
    let key = load_key(&key_path)?;
    server_config(chain, key, &cert_path, &key_path)
}

/// Wraps a server configuration in an acceptor for implicit TLS or STARTTLS.
pub fn acceptor(cfg: Arc<ServerConfig>) -> TlsAcceptor {
    TlsAcceptor::from(cfg)
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<ServerConfig>, NetError> {
    let tls_err = |err| NetError::Tls { cert: cert_path.to_path_buf(), key: key_path.to_path_buf(), err };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(tls_err)?;
    // Our suite order is the secure one; don't let clients pick weaker first.
    cfg.ignore_client_order = true;
    Ok(Arc::new(cfg))
}

fn exists(path: &Path) -> Result<bool, NetError> {
    path.try_exists().map_err(|err| NetError::Read { path: path.to_path_buf(), err })
}

fn open(path: &Path) -> Result<BufReader<fs::File>, NetError> {
    fs::File::open(path).map(BufReader::new).map_err(|err| NetError::Read { path: path.to_path_buf(), err })
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let chain = rustls_pemfile::certs(&mut open(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| NetError::Pem { path: path.to_path_buf(), message: format!("invalid PEM: {err}") })?;
    if chain.is_empty() {
        return Err(NetError::Pem {
            path: path.to_path_buf(),
            message: "no certificate found (expected \"-----BEGIN CERTIFICATE-----\" blocks)".to_owned(),
        });
    }
    Ok(chain)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, NetError> {
    match rustls_pemfile::private_key(&mut open(path)?) {
        Ok(Some(key)) => Ok(key),
        Ok(None) => Err(NetError::Pem {
            path: path.to_path_buf(),
            message: "no private key found (expected a PKCS#8, PKCS#1 or SEC1 PEM block)".to_owned(),
        }),
        Err(err) => Err(NetError::Pem { path: path.to_path_buf(), message: format!("invalid PEM: {err}") }),
    }
}

/// Generates the self-signed certificate and writes both files atomically:
/// each goes to a temporary file first, key before certificate, so a complete
/// `cert.pem` always has its `key.pem` next to it.
fn generate(hostname: &str, cert_path: &Path, key_path: &Path) -> Result<(), NetError> {
    let gen_err = |err| NetError::Generate { hostname: hostname.to_owned(), err };
    let mut names = vec![hostname.to_owned()];
    if !hostname.eq_ignore_ascii_case("localhost") {
        names.push("localhost".to_owned());
    }
    let mut params = rcgen::CertificateParams::new(names).map_err(gen_err)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, hostname);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key_pair = rcgen::KeyPair::generate().map_err(gen_err)?;
    let cert = params.self_signed(&key_pair).map_err(gen_err)?;

    let dir = cert_path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    write_atomic(key_path, key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(cert_path, cert.pem().as_bytes(), 0o644)?;
    // Make the renames durable; failure here is not worth refusing to start.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<(), NetError> {
    let write_err = |err| NetError::Write { path: dir.to_path_buf(), err };
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(write_err)?;
    }
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(write_err(e)),
    }
}

fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), NetError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let write_err = |err| NetError::Write { path: path.to_path_buf(), err };
    // A leftover temporary file could carry wrong permissions; `create_new`
    // below guarantees the mode is applied to a fresh file.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(write_err(e)),
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let result = opts.open(&tmp).and_then(|mut f| {
        f.write_all(contents)?;
        f.sync_all()
    });
    if let Err(e) = result.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_in(dir: &Path) -> Config {
        let mut c = Config::default_quickstart();
        c.hostname = "mail.example.test".to_owned();
        c.data_dir = dir.join("data");
        c
    }

    #[test]
    fn generates_once_and_reuses() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = config_in(tmp.path());
        let (cert_path, key_path) = generated_paths(&config.data_dir);

        load_or_generate(&config).expect("first start");
        let cert1 = fs::read(&cert_path).expect("cert written");
        let key1 = fs::read(&key_path).expect("key written");
        assert!(String::from_utf8_lossy(&cert1).contains("BEGIN CERTIFICATE"));
        assert!(String::from_utf8_lossy(&key1).contains("PRIVATE KEY"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&key_path).expect("key meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        load_or_generate(&config).expect("second start");
        assert_eq!(fs::read(&cert_path).expect("cert"), cert1);
        assert_eq!(fs::read(&key_path).expect("key"), key1);
    }

    #[test]
    fn regenerates_when_one_file_is_missing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = config_in(tmp.path());
        let (cert_path, key_path) = generated_paths(&config.data_dir);
        load_or_generate(&config).expect("first start");
        let cert1 = fs::read(&cert_path).expect("cert");
        fs::remove_file(&key_path).expect("remove key");
        load_or_generate(&config).expect("regenerate");
        assert_ne!(fs::read(&cert_path).expect("cert"), cert1);
    }

    #[test]
    fn loads_explicit_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let ck = rcgen::generate_simple_self_signed(vec!["mx.example.test".to_owned()]).expect("rcgen");
        let cert = tmp.path().join("fullchain.pem");
        let key = tmp.path().join("privkey.pem");
        fs::write(&cert, ck.cert.pem()).expect("write cert");
        fs::write(&key, ck.key_pair.serialize_pem()).expect("write key");
        let mut config = config_in(tmp.path());
        config.tls = Some(postamt_config::TlsFiles { cert: cert.clone(), key: key.clone() });
        load_or_generate(&config).expect("explicit files");
        // Nothing is generated when files are configured.
        assert!(!config.data_dir.join("tls").exists());

        // Errors name the file.
        let missing = tmp.path().join("missing.pem");
        config.tls = Some(postamt_config::TlsFiles { cert: missing.clone(), key: key.clone() });
        let e = load_or_generate(&config).expect_err("missing cert").to_string();
        assert!(e.contains(&missing.display().to_string()), "{e}");

        config.tls = Some(postamt_config::TlsFiles { cert: key.clone(), key: key.clone() });
        let e = load_or_generate(&config).expect_err("key as cert").to_string();
        assert!(e.contains("no certificate found"), "{e}");

        config.tls = Some(postamt_config::TlsFiles { cert: cert.clone(), key: cert.clone() });
        let e = load_or_generate(&config).expect_err("cert as key").to_string();
        assert!(e.contains("no private key found"), "{e}");

        let other = rcgen::KeyPair::generate().expect("key");
        let other_key = tmp.path().join("other.pem");
        fs::write(&other_key, other.serialize_pem()).expect("write");
        config.tls = Some(postamt_config::TlsFiles { cert: cert.clone(), key: other_key.clone() });
        let e = load_or_generate(&config).expect_err("mismatched key").to_string();
        assert!(e.contains(&other_key.display().to_string()), "{e}");
    }
}
