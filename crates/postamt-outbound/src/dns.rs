//! Where a domain's mail goes: MX lookup and ordering (RFC 5321 section 5.1), the implicit MX
//! (a domain without MX records is its own mail host), null MX (RFC 7505), and the host
//! address lookups. [`plan_mx`] is the pure part (ordering, shuffling, loop avoidance);
//! [`Resolver`] is the I/O, implemented on hickory-resolver by [`HickoryResolver`].

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use postamt_config::DnsConfig;
use rand::Rng;
use rand::seq::SliceRandom;

/// One MX record: preference and exchange host (lower-case, without the trailing dot; the
/// root `.` of a null MX becomes the empty string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxRecord {
    pub preference: u16,
    pub exchange: String,
}

/// Why a lookup found nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// NXDOMAIN: the name does not exist.
    #[error("domain does not exist")]
    NxDomain,
    /// The name exists but has no records of the type asked for.
    #[error("no records")]
    NoRecords,
    /// The question could not be answered now (time-out, SERVFAIL, network): ask again later.
    #[error("{0}")]
    Temporary(String),
}

/// The DNS questions outbound delivery asks. An interface so that routing can be tested
/// without a name server.
#[async_trait::async_trait]
pub trait Resolver: Send + Sync {
    /// The MX records of `domain`, in any order.
    async fn mx(&self, domain: &str) -> Result<Vec<MxRecord>, LookupError>;
    /// The IPv4 and IPv6 addresses of `host`: IPv4 first (IPv6 is often configured but not
    /// routed on servers; an unreachable address costs a failed connect, not a retry).
    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, LookupError>;
}

/// What the MX records say about a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxPlan {
    /// Try these hosts in this order.
    Hosts(Vec<String>),
    /// No MX records: the domain itself is the host (RFC 5321 5.1, the implicit MX).
    Implicit,
    /// The domain accepts no mail (RFC 7505).
    NullMx,
    /// We are one of the domain's MX hosts and no better-preferred host exists: delivering
    /// would loop back to us (RFC 5321 5.1).
    Loop,
}

/// Orders MX records per RFC 5321 section 5.1: by preference, lowest first; hosts of equal
/// preference in random order ("to spread the load"); duplicates dropped. If `our_hostname` is
/// one of the hosts, only the hosts with a strictly lower preference value remain ("the SMTP
/// client MUST only try MX RRs of lower preference than itself"). A lone record whose
/// exchange is the root is a null MX (RFC 7505 section 3); a root exchange among other records
/// is ignored.
pub fn plan_mx(records: &[MxRecord], our_hostname: &str, rng: &mut impl Rng) -> MxPlan {
    if records.is_empty() {
        return MxPlan::Implicit;
    }
    let mut usable: Vec<&MxRecord> = records.iter().filter(|r| !r.exchange.is_empty()).collect();
    if usable.is_empty() {
        return MxPlan::NullMx;
    }
    // Shuffle, then a stable sort by preference: equal preferences keep the random order.
    usable.shuffle(rng);
    usable.sort_by_key(|r| r.preference);
    let ours =
        usable.iter().filter(|r| r.exchange.eq_ignore_ascii_case(our_hostname)).map(|r| r.preference).min();
    if let Some(ours) = ours {
        usable.retain(|r| r.preference < ours);
        if usable.is_empty() {
            return MxPlan::Loop;
        }
    }
    let mut hosts: Vec<String> = Vec::with_capacity(usable.len());
    for r in usable {
        if !hosts.iter().any(|h| h.eq_ignore_ascii_case(&r.exchange)) {
            hosts.push(r.exchange.clone());
        }
    }
    MxPlan::Hosts(hosts)
}

/// Normalises a DNS name as we compare and log it: lower-case, without the trailing dot.
pub fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The resolver on hickory: the name server from `[dns] resolver`, or the system's.
pub struct HickoryResolver {
    inner: TokioResolver,
}

/// The resolver could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the DNS resolver: {0}")]
pub struct ResolverSetupError(String);

impl HickoryResolver {
    pub fn new(config: &DnsConfig) -> Result<HickoryResolver, ResolverSetupError> {
        let builder = match config.resolver {
            Some(addr) => {
                let connection = |mut c: ConnectionConfig| {
                    c.port = addr.port();
                    c
                };
                let server = NameServerConfig::new(
                    addr.ip(),
                    true,
                    vec![connection(ConnectionConfig::udp()), connection(ConnectionConfig::tcp())],
                );
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio().map_err(|e| ResolverSetupError(e.to_string()))?,
        };
        let inner = builder.build().map_err(|e| ResolverSetupError(e.to_string()))?;
        Ok(HickoryResolver { inner })
    }
}

/// Queries for the absolute name, so that no search domain of the system's configuration is
/// appended.
fn absolute(name: &str) -> String {
    if name.ends_with('.') { name.to_string() } else { format!("{name}.") }
}

fn lookup_error(e: NetError) -> LookupError {
    if e.is_nx_domain() {
        LookupError::NxDomain
    } else if e.is_no_records_found() {
        LookupError::NoRecords
    } else {
        LookupError::Temporary(e.to_string())
    }
}

#[async_trait::async_trait]
impl Resolver for HickoryResolver {
    async fn mx(&self, domain: &str) -> Result<Vec<MxRecord>, LookupError> {
        let lookup = self.inner.mx_lookup(absolute(domain)).await.map_err(lookup_error)?;
        let records: Vec<MxRecord> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some(MxRecord {
                    preference: mx.preference,
                    exchange: normalize_name(&mx.exchange.to_ascii()),
                }),
                _ => None,
            })
            .collect();
        if records.is_empty() {
            // Only CNAMEs or other types in the answer.
            return Err(LookupError::NoRecords);
        }
        Ok(records)
    }

    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, LookupError> {
        let name = absolute(host);
        let (v4, v6) = tokio::join!(self.inner.ipv4_lookup(name.clone()), self.inner.ipv6_lookup(name));
        let mut out = Vec::new();
        let mut errors = Vec::new();
        match v4 {
            Ok(l) => out.extend(l.answers().iter().filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            })),
            Err(e) => errors.push(lookup_error(e)),
        }
        match v6 {
            Ok(l) => out.extend(l.answers().iter().filter_map(|r| match &r.data {
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })),
            Err(e) => errors.push(lookup_error(e)),
        }
        if !out.is_empty() {
            return Ok(out);
        }
        // Nothing found: temporary if either question failed for now, else the stronger
        // negative answer.
        if let Some(t) = errors.iter().find(|e| matches!(e, LookupError::Temporary(_))) {
            return Err(t.clone());
        }
        if errors.len() == 2 && errors.iter().all(|e| *e == LookupError::NxDomain) {
            return Err(LookupError::NxDomain);
        }
        Err(LookupError::NoRecords)
    }
}

/// A domain literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`, RFC 5321 4.1.3) as an address.
pub fn domain_literal(domain: &str) -> Option<IpAddr> {
    let inner = domain.strip_prefix('[')?.strip_suffix(']')?;
    match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("ipv6:") => {
            inner[5..].parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
        }
        _ => inner.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

/// Addresses to connect to for a host given as name or IP address.
pub async fn host_addresses(
    resolver: &dyn Resolver,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, LookupError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    Ok(resolver.addresses(host).await?.into_iter().map(|ip| SocketAddr::new(ip, port)).collect())
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn mx(records: &[(u16, &str)]) -> Vec<MxRecord> {
        records
            .iter()
            .map(|&(preference, exchange)| MxRecord { preference, exchange: exchange.into() })
            .collect()
    }

    fn hosts(plan: MxPlan) -> Vec<String> {
        match plan {
            MxPlan::Hosts(h) => h,
            other => panic!("expected hosts, got {other:?}"),
        }
    }

    #[test]
    fn preference_order() {
        let mut rng = StdRng::seed_from_u64(1);
        let plan =
            plan_mx(&mx(&[(20, "b.example"), (5, "a.example"), (30, "c.example")]), "me.example", &mut rng);
        assert_eq!(hosts(plan), ["a.example", "b.example", "c.example"]);
    }

    #[test]
    fn equal_preferences_are_shuffled_within_their_rank() {
        let records = mx(&[(10, "x1"), (10, "x2"), (10, "x3"), (5, "first"), (50, "last")]);
        let mut seen_first = std::collections::HashSet::new();
        for seed in 0..64 {
            let order = hosts(plan_mx(&records, "me.example", &mut StdRng::seed_from_u64(seed)));
            assert_eq!(order.len(), 5);
            assert_eq!(order[0], "first");
            assert_eq!(order[4], "last");
            let mut middle = order[1..4].to_vec();
            seen_first.insert(middle[0].clone());
            middle.sort();
            assert_eq!(middle, ["x1", "x2", "x3"]);
        }
        assert_eq!(seen_first.len(), 3, "every equal-preference host comes first sometimes");
    }

    #[test]
    fn implicit_null_and_duplicates() {
        let mut rng = StdRng::seed_from_u64(2);
        assert_eq!(plan_mx(&[], "me.example", &mut rng), MxPlan::Implicit);
        assert_eq!(plan_mx(&mx(&[(0, "")]), "me.example", &mut rng), MxPlan::NullMx);
        // A root exchange next to real hosts is ignored rather than bouncing everything.
        assert_eq!(
            hosts(plan_mx(&mx(&[(0, ""), (10, "mx.example")]), "me.example", &mut rng)),
            ["mx.example"]
        );
        assert_eq!(
            hosts(plan_mx(&mx(&[(10, "mx.example"), (20, "MX.example"), (30, "b")]), "me.example", &mut rng)),
            ["mx.example", "b"]
        );
    }

    #[test]
    fn we_only_try_hosts_preferred_over_ourselves() {
        let mut rng = StdRng::seed_from_u64(3);
        let records = mx(&[(10, "primary.example"), (20, "Me.Example"), (30, "backup.example")]);
        assert_eq!(hosts(plan_mx(&records, "me.example", &mut rng)), ["primary.example"]);
        assert_eq!(
            plan_mx(&mx(&[(10, "me.example"), (10, "peer.example")]), "me.example", &mut rng),
            MxPlan::Loop
        );
        assert_eq!(plan_mx(&mx(&[(10, "me.example")]), "me.example", &mut rng), MxPlan::Loop);
    }

    #[test]
    fn domain_literals() {
        assert_eq!(domain_literal("[192.0.2.1]"), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(domain_literal("[IPv6:2001:db8::1]"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(domain_literal("[ipv6:::1]"), Some("::1".parse().unwrap()));
        for bad in ["192.0.2.1", "[192.0.2]", "[2001:db8::1]", "[IPv6:192.0.2.1x]", "[]", "example.org"] {
            assert_eq!(domain_literal(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize_name("MX.Example.ORG."), "mx.example.org");
        assert_eq!(normalize_name("."), "");
        assert_eq!(absolute("example.org"), "example.org.");
        assert_eq!(absolute("example.org."), "example.org.");
    }
}
