//! Mail authentication, both directions, on top of the `mail-auth` crate.
//!
//! - Outgoing: [`Signer`] DKIM-signs what our users submit (RFC 6376) with the keys of the
//!   domain of the From address, twice: `ed25519-sha256` (RFC 8463) and `rsa-sha256`
//!   (RFC 6376 section 3.3.1), relaxed/relaxed canonicalization (section 3.4), the usual header
//!   fields with the singletons over-signed ([`results`]). Keys are generated per domain
//!   ([`generate_domain_keys`]: Ed25519 and RSA-2048, PKCS#8) when `postamt domain add` runs,
//!   kept in the store, and generated on first use (or at server start) for domains that
//!   predate them. Selectors are fixed: [`SELECTOR_ED25519`] and [`SELECTOR_RSA`].
//! - Incoming: [`Verifier`] checks mail arriving on port 25: SPF for the MAIL FROM and the
//!   HELO identity against the client's address (RFC 7208 sections 2.3, 2.4), every DKIM
//!   signature (RFC 6376 section 6), DMARC for the From domain (RFC 7489 section 6.6) and
//!   the ARC chain (RFC 8617 section 5.2). The results become an Authentication-Results field
//!   (RFC 8601) with our host name as authserv-id ([`AuthResults::header`]); forged ones
//!   claiming that id are removed first ([`remove_forged_results`]). DNS goes through
//!   hickory (configured name server or the system's), each phase bounded in time: a DNS
//!   failure or a timeout is `temperror`, never an error of the delivery.
//! - [`records`]: the DNS records a domain must publish (`postamt domain dns`).

pub mod records;
pub mod results;

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use mail_auth::common::crypto::{Algorithm, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dkim::{Canonicalization, DkimSigner};
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::dmarc::{Dmarc, Policy};
use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::spf::Spf;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, DkimOutput, DkimResult, DmarcResult, DnsError, DnssecStatus, MX,
    MessageAuthenticator, Parameters, RecordSet, ResolverCache, SpfOutput, SpfResult, Txt,
};
use postamt_store::{DkimAlgorithm, DkimKey, SharedStore, StoreError};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

pub use records::{
    DnsRecord, RecordData, ServicePorts, dkim_record, dkim_record_name, domain_records, zone_text,
};
pub use results::{
    AuthResults, DkimCheck, DmarcCheck, DmarcPolicy, Outcome, SpfCheck, SpfIdentity, remove_forged_results,
};

/// Selector of every domain's Ed25519 key.
pub const SELECTOR_ED25519: &str = "postamt-ed";
/// Selector of every domain's RSA key.
pub const SELECTOR_RSA: &str = "postamt-rsa";
/// Size of generated RSA keys: RFC 8301 section 3.2 wants at least 1024 bits, 2048 is what
/// receivers expect today and still fits a DNS TXT record.
pub const RSA_BITS: usize = 2048;

/// Time each verification phase (SPF+DKIM+ARC together, then DMARC) may take before its
/// result is `temperror`. The client waits for our reply to the end of data meanwhile, which
/// RFC 5321 section 4.5.3.2.6 allows to take 10 minutes.
const PHASE_BUDGET: Duration = Duration::from_secs(15);
/// Per-query timeout and tries of the resolver.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
const QUERY_ATTEMPTS: usize = 2;
/// Parsed DNS answers kept per record type.
const CACHE_ENTRIES: usize = 4096;

/// Errors of signing and of setting up verification.
#[derive(Debug, thiserror::Error)]
pub enum MailAuthError {
    #[error("cannot generate a DKIM key: {0}")]
    KeyGeneration(String),
    #[error("DKIM key {selector:?} of {domain} is unusable: {detail}")]
    BadKey { domain: String, selector: String, detail: String },
    #[error("DKIM signing for {domain} failed: {detail}")]
    Signing { domain: String, detail: String },
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error("cannot set up the DNS resolver: {0}")]
    Resolver(String),
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/// Generates one key pair: the private key as PKCS#8 DER, the public key as the `p=` tag
/// publishes it (raw for Ed25519, RFC 8463 section 4; SubjectPublicKeyInfo DER for RSA).
pub fn generate_key(algorithm: DkimAlgorithm, selector: &str) -> Result<DkimKey, MailAuthError> {
    let failed = |e: &dyn std::fmt::Display| MailAuthError::KeyGeneration(e.to_string());
    let (private_key, public_key) = match algorithm {
        DkimAlgorithm::Ed25519 => {
            let pkcs8 = Ed25519Key::generate_pkcs8().map_err(|e| failed(&e))?;
            let public = Ed25519Key::from_pkcs8_der(&pkcs8).map_err(|e| failed(&e))?.public_key();
            (pkcs8, public)
        }
        DkimAlgorithm::Rsa => {
            use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
            let key =
                rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS).map_err(|e| failed(&e))?;
            let private = key.to_pkcs8_der().map_err(|e| failed(&e))?.as_bytes().to_vec();
            let public =
                rsa::RsaPublicKey::from(&key).to_public_key_der().map_err(|e| failed(&e))?.into_vec();
            (private, public)
        }
    };
    Ok(DkimKey {
        selector: selector.to_string(),
        algorithm,
        private_key,
        public_key,
        created: crate::now_unix(),
    })
}

/// The keys a new domain gets: Ed25519 under [`SELECTOR_ED25519`], RSA-2048 under
/// [`SELECTOR_RSA`]. CPU-bound (the RSA primes): call from a blocking context.
pub fn generate_domain_keys() -> Result<Vec<DkimKey>, MailAuthError> {
    Ok(vec![
        generate_key(DkimAlgorithm::Ed25519, SELECTOR_ED25519)?,
        generate_key(DkimAlgorithm::Rsa, SELECTOR_RSA)?,
    ])
}

/// The DKIM-Signature fields (CRLF-terminated, to prepend) of `message` signed by `domain`
/// with each of `keys`.
pub fn sign_message(keys: &[DkimKey], domain: &str, message: &[u8]) -> Result<String, MailAuthError> {
    let headers = results::signed_headers(message);
    let mut out = String::new();
    for key in keys {
        let bad = |detail: String| MailAuthError::BadKey {
            domain: domain.to_string(),
            selector: key.selector.clone(),
            detail,
        };
        let signing = |e: mail_auth::Error| MailAuthError::Signing {
            domain: domain.to_string(),
            detail: e.to_string(),
        };
        let signature = match key.algorithm {
            DkimAlgorithm::Ed25519 => {
                let pair = Ed25519Key::from_pkcs8_der(&key.private_key).map_err(|e| bad(e.to_string()))?;
                DkimSigner::from_key(pair)
                    .domain(domain)
                    .selector(&key.selector)
                    .headers(headers.iter().copied())
                    .header_canonicalization(Canonicalization::Relaxed)
                    .body_canonicalization(Canonicalization::Relaxed)
                    .sign(message)
                    .map_err(signing)?
            }
            DkimAlgorithm::Rsa => {
                let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.private_key.as_slice()));
                let pair = RsaKey::<Sha256>::from_key_der(der).map_err(|e| bad(e.to_string()))?;
                DkimSigner::from_key(pair)
                    .domain(domain)
                    .selector(&key.selector)
                    .headers(headers.iter().copied())
                    .header_canonicalization(Canonicalization::Relaxed)
                    .body_canonicalization(Canonicalization::Relaxed)
                    .sign(message)
                    .map_err(signing)?
            }
        };
        out.push_str(&signature.to_header());
    }
    Ok(out)
}

/// Signs submitted mail with the keys in the store.
pub struct Signer {
    store: SharedStore,
    /// One key generation at a time, so that two first messages of an old domain do not
    /// both generate (and the second overwrite the first's keys).
    keygen: tokio::sync::Mutex<()>,
}

impl Signer {
    pub fn new(store: SharedStore) -> Signer {
        Signer { store, keygen: tokio::sync::Mutex::new(()) }
    }

    /// The keys of `domain`, generated and stored first when it has none yet (a domain
    /// created before postamt signed mail); the generation is logged, since the new keys
    /// must be published before receivers can verify them.
    pub async fn keys(&self, domain: &str) -> Result<Vec<DkimKey>, MailAuthError> {
        let keys = self.store.dkim_keys(domain).await?;
        if !keys.is_empty() {
            return Ok(keys);
        }
        let _one_at_a_time = self.keygen.lock().await;
        let keys = self.store.dkim_keys(domain).await?;
        if !keys.is_empty() {
            return Ok(keys);
        }
        let keys = tokio::task::spawn_blocking(generate_domain_keys)
            .await
            .map_err(|e| MailAuthError::KeyGeneration(e.to_string()))??;
        self.store.set_dkim_keys(domain, keys.clone()).await?;
        tracing::warn!(
            domain,
            "generated DKIM keys for a domain that had none; publish them (postamt domain dns {domain})"
        );
        Ok(keys)
    }

    /// Gives every local domain without keys its keys (at server start). Returns how many
    /// domains got new keys.
    pub async fn ensure_all(&self) -> Result<usize, MailAuthError> {
        let mut generated = 0;
        for domain in self.store.list_domains().await? {
            if self.store.dkim_keys(&domain).await?.is_empty() {
                self.keys(&domain).await?;
                generated += 1;
            }
        }
        Ok(generated)
    }

    /// The DKIM-Signature fields for `message` sent as `domain` (CRLF-terminated, to
    /// prepend): one per key of the domain.
    pub async fn sign(&self, message: &[u8], domain: &str) -> Result<String, MailAuthError> {
        let keys = self.keys(domain).await?;
        sign_message(&keys, domain, message)
    }
}

// ---------------------------------------------------------------------------------------------
// DNS answers
// ---------------------------------------------------------------------------------------------

/// A bounded cache of parsed DNS answers that honours their TTLs. In static mode
/// ([`Verifier::with_static_records`]) its entries never expire and a miss is answered with
/// `on_miss` instead of going to the network.
struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
    on_miss: Option<V>,
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    fn new(on_miss: Option<V>) -> Self {
        TtlCache { entries: Mutex::new(HashMap::new()), on_miss }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (V, Instant)>> {
        // A panic elsewhere cannot leave a half-written map behind: inserts are single calls.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for TtlCache<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.lock().get(name) {
            Some((value, until)) if *until > Instant::now() => Some(value.clone()),
            _ => self.on_miss.clone(),
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().remove(name).map(|(value, _)| value)
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        let mut entries = self.lock();
        if entries.len() >= CACHE_ENTRIES {
            let now = Instant::now();
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (value, valid_until));
    }
}

struct DnsCache {
    txt: TtlCache<Box<str>, Txt>,
    mx: TtlCache<Box<str>, RecordSet<MX>>,
    ipv4: TtlCache<Box<str>, RecordSet<Ipv4Addr>>,
    ipv6: TtlCache<Box<str>, RecordSet<Ipv6Addr>>,
    ptr: TtlCache<IpAddr, RecordSet<Box<str>>>,
}

type Params<'x, P> = Parameters<
    'x,
    P,
    TtlCache<Box<str>, Txt>,
    TtlCache<Box<str>, RecordSet<MX>>,
    TtlCache<Box<str>, RecordSet<Ipv4Addr>>,
    TtlCache<Box<str>, RecordSet<Ipv6Addr>>,
    TtlCache<IpAddr, RecordSet<Box<str>>>,
>;

fn empty_set<T>() -> RecordSet<T> {
    RecordSet { rrset: Arc::from(Vec::new()), dnssec_status: DnssecStatus::Indeterminate }
}

/// A record for [`Verifier::with_static_records`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaticRecord {
    /// A TXT record (SPF, DKIM key or DMARC, told apart by the name); several texts at one
    /// name are tried in order, as resolvers return them.
    Txt {
        name: String,
        text: String,
    },
    A {
        name: String,
        address: Ipv4Addr,
    },
    Mx {
        name: String,
        preference: u16,
        exchange: String,
    },
}

/// The cache key mail-auth looks names up with: lower case, absolute.
fn fqdn(name: &str) -> Box<str> {
    let mut name = name.to_lowercase();
    if !name.ends_with('.') {
        name.push('.');
    }
    name.into_boxed_str()
}

/// Parses the TXT texts of one name the way the lookup of that name will want them.
fn parse_txt(name: &str, texts: &[String]) -> Txt {
    let first_ok = |parse: &dyn Fn(&[u8]) -> Option<Txt>| {
        texts
            .iter()
            .find_map(|t| parse(t.as_bytes()))
            .unwrap_or(Txt::Error(mail_auth::Error::Dns(DnsError::InvalidRecordType)))
    };
    if name.starts_with("_dmarc.") {
        first_ok(&|t| Dmarc::parse(t).ok().map(Txt::from))
    } else if name.contains("._domainkey.") {
        first_ok(&|t| DomainKey::parse(t).ok().map(Txt::from))
    } else {
        first_ok(&|t| Spf::parse(t).ok().map(Txt::from))
    }
}

// ---------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------

/// Checks incoming mail: SPF, DKIM, DMARC, ARC.
pub struct Verifier {
    resolver: MessageAuthenticator,
    cache: DnsCache,
    /// Our host name: the authserv-id of our results and SPF's `%{r}`.
    hostname: String,
    budget: Duration,
}

impl Verifier {
    /// A verifier asking `name_server` (e.g. `127.0.0.1:53`, the `[dns] resolver` setting),
    /// or the system's resolvers (`/etc/resolv.conf`) when `None`.
    pub fn new(hostname: &str, name_server: Option<SocketAddr>) -> Result<Verifier, MailAuthError> {
        let (config, mut options) = match name_server {
            Some(addr) => {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut server.connections {
                    connection.port = addr.port();
                }
                (ResolverConfig::from_name_servers(vec![server]), ResolverOpts::default())
            }
            None => mail_auth::hickory_resolver::system_conf::read_system_conf().map_err(|e| {
                MailAuthError::Resolver(format!("cannot read the system's DNS configuration: {e}"))
            })?,
        };
        options.timeout = options.timeout.min(QUERY_TIMEOUT);
        options.attempts = options.attempts.min(QUERY_ATTEMPTS);
        let resolver =
            MessageAuthenticator::new(config, options).map_err(|e| MailAuthError::Resolver(e.to_string()))?;
        let cache = DnsCache {
            txt: TtlCache::new(None),
            mx: TtlCache::new(None),
            ipv4: TtlCache::new(None),
            ipv6: TtlCache::new(None),
            ptr: TtlCache::new(None),
        };
        Ok(Verifier { resolver, cache, hostname: hostname.to_string(), budget: PHASE_BUDGET })
    }

    /// A verifier that never uses the network: it knows `records` and nothing else (TXT
    /// lookups of other names find nothing, A and MX lookups an empty answer; PTR and AAAA
    /// lookups fail). For checking our own signatures against the records `postamt domain
    /// dns` prints, and for tests.
    pub fn with_static_records(
        hostname: &str,
        records: impl IntoIterator<Item = StaticRecord>,
    ) -> Result<Verifier, MailAuthError> {
        let resolver =
            MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![]), ResolverOpts::default())
                .map_err(|e| MailAuthError::Resolver(e.to_string()))?;
        let nxdomain = Txt::Error(mail_auth::Error::Dns(DnsError::RecordNotFound(ResponseCode::NXDomain)));
        let cache = DnsCache {
            txt: TtlCache::new(Some(nxdomain)),
            mx: TtlCache::new(Some(empty_set())),
            ipv4: TtlCache::new(Some(empty_set())),
            ipv6: TtlCache::new(None),
            ptr: TtlCache::new(None),
        };
        let forever = Instant::now() + Duration::from_secs(10 * 365 * 86_400);
        let mut txt: Vec<(Box<str>, Vec<String>)> = Vec::new();
        let mut a: HashMap<Box<str>, Vec<Ipv4Addr>> = HashMap::new();
        let mut mx: HashMap<Box<str>, Vec<(u16, Box<str>)>> = HashMap::new();
        for record in records {
            match record {
                StaticRecord::Txt { name, text } => match txt.iter_mut().find(|(n, _)| *n == fqdn(&name)) {
                    Some((_, texts)) => texts.push(text),
                    None => txt.push((fqdn(&name), vec![text])),
                },
                StaticRecord::A { name, address } => a.entry(fqdn(&name)).or_default().push(address),
                StaticRecord::Mx { name, preference, exchange } => {
                    mx.entry(fqdn(&name)).or_default().push((preference, fqdn(&exchange)))
                }
            }
        }
        for (name, texts) in txt {
            let parsed = parse_txt(&name, &texts);
            cache.txt.insert(name, parsed, forever);
        }
        for (name, addresses) in a {
            cache.ipv4.insert(
                name,
                RecordSet { rrset: Arc::from(addresses), dnssec_status: DnssecStatus::Indeterminate },
                forever,
            );
        }
        for (name, mut exchanges) in mx {
            exchanges.sort();
            let rrset: Vec<MX> = exchanges
                .into_iter()
                .map(|(preference, host)| MX { exchanges: Box::new([host]), preference })
                .collect();
            cache.mx.insert(
                name,
                RecordSet { rrset: Arc::from(rrset), dnssec_status: DnssecStatus::Indeterminate },
                forever,
            );
        }
        Ok(Verifier { resolver, cache, hostname: hostname.to_string(), budget: PHASE_BUDGET })
    }

    /// Our host name, the authserv-id of the results.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    fn params<P>(&self, params: P) -> Params<'_, P> {
        Parameters::new(params)
            .with_txt_cache(&self.cache.txt)
            .with_mx_cache(&self.cache.mx)
            .with_ipv4_cache(&self.cache.ipv4)
            .with_ipv6_cache(&self.cache.ipv6)
            .with_ptr_cache(&self.cache.ptr)
    }

    /// Runs every check on a message that arrived from `peer`, which said `helo` and gave
    /// `mail_from` (empty for the null sender). Never fails: what cannot be decided (DNS
    /// trouble, time running out) is `temperror`.
    pub async fn verify(&self, message: &[u8], peer: IpAddr, helo: &str, mail_from: &str) -> AuthResults {
        let parsed = AuthenticatedMessage::parse(message);
        let timed_out =
            |what: &str| tracing::warn!(what, budget = ?self.budget, "mail authentication timed out");

        // RFC 7208 section 2.4: the null sender is checked as postmaster@HELO; section 2.3:
        // the HELO identity is worth checking on its own, too.
        let spf_mail_from = async {
            if mail_from.is_empty() {
                return None;
            }
            let check = self.resolver.verify_spf(self.params(SpfParameters::verify_mail_from(
                peer,
                helo,
                &self.hostname,
                mail_from,
            )));
            Some(tokio::time::timeout(self.budget, check).await.map_err(|_| timed_out("spf")))
        };
        let spf_helo = async {
            let check =
                self.resolver.verify_spf(self.params(SpfParameters::verify_ehlo(peer, helo, &self.hostname)));
            tokio::time::timeout(self.budget, check).await.map_err(|_| timed_out("spf"))
        };
        let dkim = async {
            let message = parsed.as_ref()?;
            let check = self.resolver.verify_dkim(self.params(message));
            Some(tokio::time::timeout(self.budget, check).await.map_err(|_| timed_out("dkim")))
        };
        let arc = async {
            let message = parsed.as_ref()?;
            let check = self.resolver.verify_arc(self.params(message));
            Some(tokio::time::timeout(self.budget, check).await.map_err(|_| timed_out("arc")))
        };
        let (spf_mail_from, spf_helo, dkim, arc) = tokio::join!(spf_mail_from, spf_helo, dkim, arc);

        let temp_spf = |domain: &str| SpfOutput::new(domain.to_string()).with_result(SpfResult::TempError);
        let mut any_timeout = false;
        let spf_helo = spf_helo.unwrap_or_else(|()| {
            any_timeout = true;
            temp_spf(helo)
        });
        let spf_mail_from = spf_mail_from.map(|r| {
            r.unwrap_or_else(|()| {
                any_timeout = true;
                temp_spf(mail_from.rsplit_once('@').map_or("", |(_, d)| d))
            })
        });
        let dkim: Vec<DkimOutput<'_>> = match dkim {
            None => Vec::new(),
            Some(Ok(outputs)) => outputs,
            Some(Err(())) => {
                any_timeout = true;
                vec![DkimOutput::temp_err(mail_auth::Error::Dns(DnsError::Resolver("timeout".into())))]
            }
        };
        let arc = match arc {
            None => Outcome::None,
            Some(Ok(output)) => arc_outcome(output.result()),
            Some(Err(())) => {
                any_timeout = true;
                Outcome::TempError
            }
        };

        // DMARC's SPF input is the MAIL FROM check, or the HELO check for the null sender
        // (RFC 7489 section 4.1 via RFC 7208 section 2.4).
        let (spf_for_dmarc, spf_domain) = match &spf_mail_from {
            Some(output) => (output, mail_from.rsplit_once('@').map_or(helo, |(_, d)| d)),
            None => (&spf_helo, helo),
        };
        let dmarc = match &parsed {
            None => DmarcCheck { result: Outcome::None, from_domain: None, policy: None },
            // Without all inputs DMARC can neither pass nor fail (RFC 7489 section 6.6.2).
            Some(message) if any_timeout => DmarcCheck {
                result: Outcome::TempError,
                from_domain: message.from().rsplit_once('@').map(|(_, d)| d.to_lowercase()),
                policy: None,
            },
            Some(message) => {
                let check = self.resolver.verify_dmarc(self.params(DmarcParameters::new(
                    message,
                    &dkim,
                    spf_domain,
                    spf_for_dmarc,
                )));
                match tokio::time::timeout(self.budget, check).await {
                    Ok(output) => DmarcCheck {
                        result: match output.result() {
                            DmarcResult::Pass => Outcome::Pass,
                            DmarcResult::Fail(_) => Outcome::Fail,
                            DmarcResult::TempError(_) => Outcome::TempError,
                            DmarcResult::PermError(_) => Outcome::PermError,
                            DmarcResult::None => Outcome::None,
                        },
                        from_domain: Some(output.domain().to_string()).filter(|d| !d.is_empty()),
                        policy: output.dmarc_record().map(|_| match output.policy() {
                            Policy::Reject => DmarcPolicy::Reject,
                            Policy::Quarantine => DmarcPolicy::Quarantine,
                            Policy::None | Policy::Unspecified => DmarcPolicy::None,
                        }),
                    },
                    Err(_) => {
                        timed_out("dmarc");
                        DmarcCheck {
                            result: Outcome::TempError,
                            from_domain: message.from().rsplit_once('@').map(|(_, d)| d.to_lowercase()),
                            policy: None,
                        }
                    }
                }
            }
        };

        let mut spf = Vec::new();
        if let Some(output) = &spf_mail_from {
            spf.push(SpfCheck {
                result: spf_outcome(output.result()),
                identity: SpfIdentity::MailFrom(mail_from.into()),
            });
        }
        spf.push(SpfCheck {
            result: spf_outcome(spf_helo.result()),
            identity: SpfIdentity::Helo(helo.into()),
        });
        let mut dkim_checks: Vec<DkimCheck> = dkim.iter().map(dkim_check).collect();
        if dkim_checks.is_empty() {
            dkim_checks.push(DkimCheck {
                result: Outcome::None,
                domain: None,
                selector: None,
                algorithm: None,
                signature_prefix: None,
                reason: None,
            });
        }
        AuthResults { spf, dkim: dkim_checks, dmarc, arc }
    }
}

fn spf_outcome(result: SpfResult) -> Outcome {
    match result {
        SpfResult::Pass => Outcome::Pass,
        SpfResult::Fail => Outcome::Fail,
        SpfResult::SoftFail => Outcome::SoftFail,
        SpfResult::Neutral => Outcome::Neutral,
        SpfResult::TempError => Outcome::TempError,
        SpfResult::PermError => Outcome::PermError,
        SpfResult::None => Outcome::None,
    }
}

fn dkim_outcome(result: &DkimResult) -> Outcome {
    match result {
        DkimResult::Pass => Outcome::Pass,
        DkimResult::Neutral(_) => Outcome::Neutral,
        DkimResult::Fail(_) => Outcome::Fail,
        DkimResult::PermError(_) => Outcome::PermError,
        DkimResult::TempError(_) => Outcome::TempError,
        DkimResult::None => Outcome::None,
    }
}

/// RFC 8617 section 4.4 knows `none`, `pass` and `fail` for the chain; a chain that cannot
/// be validated for a temporary reason is `temperror` (RFC 8601 section 2.7.1).
fn arc_outcome(result: &DkimResult) -> Outcome {
    match dkim_outcome(result) {
        Outcome::Pass => Outcome::Pass,
        Outcome::None => Outcome::None,
        Outcome::TempError => Outcome::TempError,
        _ => Outcome::Fail,
    }
}

fn dkim_check(output: &DkimOutput<'_>) -> DkimCheck {
    let result = dkim_outcome(output.result());
    let reason = match output.result() {
        DkimResult::Neutral(e)
        | DkimResult::Fail(e)
        | DkimResult::PermError(e)
        | DkimResult::TempError(e) => Some(e.to_string()),
        DkimResult::Pass | DkimResult::None => None,
    };
    let signature = output.signature();
    DkimCheck {
        result,
        domain: signature.map(|s| s.d.to_lowercase()),
        selector: signature.map(|s| s.s.clone()),
        algorithm: signature.map(|s| {
            match s.a {
                Algorithm::RsaSha1 => "rsa-sha1",
                Algorithm::RsaSha256 => "rsa-sha256",
                Algorithm::Ed25519Sha256 => "ed25519-sha256",
            }
            .to_string()
        }),
        // RFC 6008 section 4: at least the first 8 characters of b=.
        signature_prefix: signature
            .filter(|s| !s.b.is_empty())
            .map(|s| base64::engine::general_purpose::STANDARD.encode(&s.b[..s.b.len().min(6)])),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: Hello\r\n\
Date: Thu, 26 Nov 2026 13:14:28 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nHi Bob,\r\n\r\nsee you.\r\n";

    fn published(keys: &[DkimKey], domain: &str) -> Vec<StaticRecord> {
        let records = domain_records(domain, "mx.example.org", &ServicePorts::default(), keys);
        records
            .into_iter()
            .filter_map(|r| match r.data {
                RecordData::Txt(text) => Some(StaticRecord::Txt { name: r.name, text }),
                RecordData::Mx { exchange, preference } => {
                    Some(StaticRecord::Mx { name: r.name, preference, exchange })
                }
                _ => None,
            })
            .chain([StaticRecord::A { name: "mx.example.org".into(), address: Ipv4Addr::new(192, 0, 2, 25) }])
            .collect()
    }

    fn keys() -> Vec<DkimKey> {
        // One RSA generation is slow in debug builds; share it between the tests.
        static KEYS: std::sync::OnceLock<Vec<DkimKey>> = std::sync::OnceLock::new();
        KEYS.get_or_init(|| generate_domain_keys().expect("generate")).clone()
    }

    #[test]
    fn generated_keys_have_the_documented_forms() {
        let keys = keys();
        assert_eq!(keys.len(), 2);
        let (ed, rsa) = (&keys[0], &keys[1]);
        assert_eq!((ed.selector.as_str(), ed.algorithm), (SELECTOR_ED25519, DkimAlgorithm::Ed25519));
        assert_eq!((rsa.selector.as_str(), rsa.algorithm), (SELECTOR_RSA, DkimAlgorithm::Rsa));
        // Ed25519: raw 32-byte public key (RFC 8463 section 4), PKCS#8 private key.
        assert_eq!(ed.public_key.len(), 32);
        assert_eq!(ed.private_key[0], 0x30, "DER SEQUENCE");
        // RSA-2048: SubjectPublicKeyInfo with the rsaEncryption OID; a PKCS#8 private key.
        assert!(rsa.public_key.len() > 256 && rsa.public_key.len() < 300, "{}", rsa.public_key.len());
        let rsa_encryption = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
        assert!(rsa.public_key.windows(9).any(|w| w == rsa_encryption));
        assert!(rsa.private_key.windows(9).any(|w| w == rsa_encryption));
        // Fresh keys every time.
        let other = generate_key(DkimAlgorithm::Ed25519, "x").expect("ed25519");
        assert_ne!(other.public_key, ed.public_key);
        assert_eq!(dkim_record(ed).split("; ").take(2).collect::<Vec<_>>(), ["v=DKIM1", "k=ed25519"]);
    }

    #[tokio::test]
    async fn signatures_verify_against_the_published_records() {
        let keys = keys();
        let signatures = sign_message(&keys, "example.org", MESSAGE.as_bytes()).expect("sign");
        assert_eq!(signatures.matches("DKIM-Signature:").count(), 2, "{signatures}");
        assert!(
            signatures.contains("a=ed25519-sha256") && signatures.contains("a=rsa-sha256"),
            "{signatures}"
        );
        assert!(signatures.contains("c=relaxed/relaxed"), "{signatures}");
        assert!(signatures.contains("d=example.org"), "{signatures}");
        assert!(signatures.ends_with("\r\n"));
        let signed = format!("{signatures}{MESSAGE}");

        let verifier = Verifier::with_static_records("mx.example.net", published(&keys, "example.org"))
            .expect("verifier");
        let peer: IpAddr = "192.0.2.25".parse().expect("ip");
        let r = verifier.verify(signed.as_bytes(), peer, "mx.example.org", "alice@example.org").await;
        assert_eq!(
            r.spf[0],
            SpfCheck { result: Outcome::Pass, identity: SpfIdentity::MailFrom("alice@example.org".into()) }
        );
        assert_eq!(r.spf[1].result, Outcome::None, "no SPF record for the HELO name");
        let dkim: Vec<_> = r
            .dkim
            .iter()
            .map(|d| (d.result, d.domain.as_deref(), d.selector.as_deref(), d.algorithm.as_deref()))
            .collect();
        assert_eq!(
            dkim,
            [
                (Outcome::Pass, Some("example.org"), Some(SELECTOR_ED25519), Some("ed25519-sha256")),
                (Outcome::Pass, Some("example.org"), Some(SELECTOR_RSA), Some("rsa-sha256")),
            ]
        );
        assert_eq!(
            r.dmarc,
            DmarcCheck {
                result: Outcome::Pass,
                from_domain: Some("example.org".into()),
                policy: Some(DmarcPolicy::Quarantine)
            }
        );
        assert_eq!(r.arc, Outcome::None);
        let header = r.header("mx.example.net");
        assert!(
            header.starts_with(
                "Authentication-Results: mx.example.net;\r\n\tspf=pass smtp.mailfrom=alice@example.org;"
            ),
            "{header}"
        );
        assert!(header.contains("\tdmarc=pass (p=quarantine) header.from=example.org;"), "{header}");

        // Over-signing: a From added above the signed one breaks both signatures.
        let tampered = format!("{signatures}From: mallory@example.org\r\n{MESSAGE}");
        let r = verifier.verify(tampered.as_bytes(), peer, "mx.example.org", "alice@example.org").await;
        assert!(r.dkim.iter().all(|d| d.result != Outcome::Pass), "{r:?}");
        // So does a changed body; the SPF pass alone still aligns DMARC.
        let changed = signed.replace("see you", "send money");
        let r = verifier.verify(changed.as_bytes(), peer, "mx.example.org", "alice@example.org").await;
        assert!(r.dkim.iter().all(|d| d.result != Outcome::Pass && d.reason.is_some()), "{r:?}");
        assert_eq!(r.dmarc.result, Outcome::Pass);
        // Relaxed canonicalization: whitespace changes in header values are fine.
        let relaxed = signed.replace("Subject: Hello", "Subject:   Hello ");
        let r = verifier.verify(relaxed.as_bytes(), peer, "mx.example.org", "alice@example.org").await;
        assert!(r.dkim.iter().all(|d| d.result == Outcome::Pass), "{r:?}");
    }

    #[tokio::test]
    async fn forgeries_fail_spf_and_dmarc() {
        let mut records = published(&keys(), "example.org");
        records.retain(|r| !matches!(r, StaticRecord::Txt { name, .. } if name.starts_with("_dmarc.")));
        records
            .push(StaticRecord::Txt { name: "_dmarc.example.org".into(), text: "v=DMARC1; p=reject".into() });
        let verifier = Verifier::with_static_records("mx.example.net", records).expect("verifier");
        let peer: IpAddr = "203.0.113.9".parse().expect("ip");
        let r = verifier.verify(MESSAGE.as_bytes(), peer, "evil.example", "alice@example.org").await;
        assert_eq!(r.spf[0].result, Outcome::Fail);
        assert_eq!(r.dkim.len(), 1);
        assert_eq!(r.dkim[0].result, Outcome::None);
        assert_eq!(r.dmarc.result, Outcome::Fail);
        assert_eq!(r.dmarc.policy, Some(DmarcPolicy::Reject));
        assert!(r.dmarc_rejects());
        let header = r.header("mx.example.net");
        assert!(header.contains("spf=fail smtp.mailfrom=alice@example.org"), "{header}");
        assert!(header.contains("dkim=none"), "{header}");
        assert!(header.contains("dmarc=fail (p=reject) header.from=example.org"), "{header}");

        // A message signed with keys nobody published: DKIM fails too.
        let stranger = generate_key(DkimAlgorithm::Ed25519, SELECTOR_ED25519).expect("key");
        let signed = format!(
            "{}{MESSAGE}",
            sign_message(&[stranger], "example.org", MESSAGE.as_bytes()).expect("sign")
        );
        let r = verifier.verify(signed.as_bytes(), peer, "evil.example", "bounce@other.example").await;
        assert_eq!(r.dkim[0].result, Outcome::Fail, "{r:?}");
        assert_eq!(r.spf[0].result, Outcome::None, "other.example publishes no SPF");
        assert!(r.dmarc_rejects());

        // The null sender is checked as its HELO identity (RFC 7208 section 2.4).
        let r = verifier.verify(MESSAGE.as_bytes(), peer, "example.org", "").await;
        assert_eq!(
            r.spf,
            [SpfCheck { result: Outcome::Fail, identity: SpfIdentity::Helo("example.org".into()) }]
        );
        assert!(r.header("mx").contains("spf=fail smtp.helo=example.org"));
    }

    #[tokio::test]
    async fn dns_failures_are_temperrors() {
        // A name server that never answers: every lookup times out or fails.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = silent.local_addr().expect("addr");
        let mut verifier = Verifier::new("mx.example.net", Some(addr)).expect("verifier");
        verifier.budget = Duration::from_millis(300);
        let signed =
            format!("{}{MESSAGE}", sign_message(&keys(), "example.org", MESSAGE.as_bytes()).expect("sign"));
        let started = Instant::now();
        let r = verifier
            .verify(signed.as_bytes(), "192.0.2.1".parse().expect("ip"), "client.example", "a@example.org")
            .await;
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        assert!(r.spf.iter().all(|s| s.result == Outcome::TempError), "{r:?}");
        assert!(r.dkim.iter().all(|d| d.result == Outcome::TempError), "{r:?}");
        assert_eq!(r.dmarc.result, Outcome::TempError);
        assert_eq!(r.dmarc.from_domain.as_deref(), Some("example.org"));
        assert!(!r.dmarc_rejects());
        // Garbage is not a crash either.
        let r = verifier.verify(b"\r\n\r\n", "192.0.2.1".parse().expect("ip"), "", "").await;
        assert_eq!(r.dkim[0].result, Outcome::None);
        assert_eq!(r.dmarc.result, Outcome::None);
    }

    #[tokio::test]
    async fn arc_chains_are_validated() {
        use mail_auth::arc::ArcSealer;
        // A forwarder seals the message it received (RFC 8617 section 5.1).
        let key = generate_key(DkimAlgorithm::Ed25519, "arc").expect("key");
        let original = AuthenticatedMessage::parse(MESSAGE.as_bytes()).expect("parse");
        let results = mail_auth::AuthenticationResults::new("forwarder.example");
        let set = ArcSealer::from_key(Ed25519Key::from_pkcs8_der(&key.private_key).expect("pair"))
            .domain("forwarder.example")
            .selector("arc")
            .headers(["From", "To", "Subject", "Date", "Message-ID"])
            .seal(&original, &results, &mail_auth::ArcOutput::default())
            .expect("seal");
        let sealed = format!("{}{MESSAGE}", set.to_header());
        let records = [StaticRecord::Txt {
            name: dkim_record_name("arc", "forwarder.example"),
            text: dkim_record(&key),
        }];
        let verifier = Verifier::with_static_records("mx.example.net", records).expect("verifier");
        let peer: IpAddr = "192.0.2.1".parse().expect("ip");
        let r = verifier.verify(sealed.as_bytes(), peer, "forwarder.example", "list@forwarder.example").await;
        assert_eq!(r.arc, Outcome::Pass, "{r:?}");
        assert!(r.header("mx").contains("\tarc=pass\r\n"));
        // A change after sealing breaks the chain.
        let changed = sealed.replace("see you", "send money");
        let r =
            verifier.verify(changed.as_bytes(), peer, "forwarder.example", "list@forwarder.example").await;
        assert_eq!(r.arc, Outcome::Fail, "{r:?}");
    }

    #[tokio::test]
    async fn static_records_parse_by_name() {
        let txt = |name: &str, text: &str| StaticRecord::Txt { name: name.into(), text: text.into() };
        let verifier = Verifier::with_static_records(
            "mx",
            [
                txt("Example.COM", "google-site-verification=abc"),
                txt("example.com", "v=spf1 ip4:192.0.2.0/24 -all"),
                txt("_dmarc.example.com.", "v=DMARC1; p=none"),
            ],
        )
        .expect("verifier");
        let r = verifier
            .verify(b"From: a@example.com\r\n\r\n", "192.0.2.7".parse().expect("ip"), "h", "a@example.com")
            .await;
        assert_eq!(r.spf[0].result, Outcome::Pass);
        assert_eq!(r.dmarc.result, Outcome::Pass);
        assert_eq!(r.dmarc.policy, Some(DmarcPolicy::None));
    }
}
