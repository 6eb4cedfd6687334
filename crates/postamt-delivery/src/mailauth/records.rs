//! The DNS records a domain needs to receive and send mail through postamt, as
//! `postamt domain dns DOMAIN` prints them: MX, SPF (RFC 7208), the DKIM keys (RFC 6376
//! section 3.6.1, RFC 8463 section 4), DMARC (RFC 7489 section 6.1), the SRV records that let
//! mail programs find the services (RFC 6186, RFC 8314 section 5.1) and the autoconfig and
//! autodiscover names. Pure: built from the domain, the host name, the configured ports and
//! the stored keys.

use base64::Engine;
use postamt_store::DkimKey;

/// Time to live written on every record, in seconds.
pub const TTL: u32 = 3600;

/// The ports the mail programs of a domain's users connect to; `None` for a service that is
/// not offered (its SRV record then says so, RFC 6186 section 4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServicePorts {
    pub submission: Option<u16>,
    pub submissions: Option<u16>,
    pub imap: Option<u16>,
    pub imaps: Option<u16>,
    pub pop3: Option<u16>,
    pub pop3s: Option<u16>,
    /// The web service answering autoconfig and autodiscover requests.
    pub https: Option<u16>,
}

/// The data of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData {
    Mx {
        preference: u16,
        exchange: String,
    },
    /// The text as one string; [`DnsRecord::rdata`] splits it into character-strings.
    Txt(String),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Cname(String),
}

/// One resource record: an absolute owner name (with the final dot) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub name: String,
    pub data: RecordData,
}

impl DnsRecord {
    /// The record type: `MX`, `TXT`, `SRV` or `CNAME`.
    pub fn kind(&self) -> &'static str {
        match self.data {
            RecordData::Mx { .. } => "MX",
            RecordData::Txt(_) => "TXT",
            RecordData::Srv { .. } => "SRV",
            RecordData::Cname(_) => "CNAME",
        }
    }

    /// The data in zone-file presentation format (RFC 1035 section 5.1). A TXT text longer
    /// than 255 bytes becomes several quoted character-strings of at most 255 bytes each,
    /// which resolvers join again (RFC 7208 section 3.3, RFC 6376 section 3.6.2.2).
    pub fn rdata(&self) -> String {
        match &self.data {
            RecordData::Mx { preference, exchange } => format!("{preference} {exchange}"),
            RecordData::Txt(text) => txt_strings(text)
                .iter()
                .map(|chunk| format!("\"{}\"", chunk.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect::<Vec<_>>()
                .join(" "),
            RecordData::Srv { priority, weight, port, target } => {
                format!("{priority} {weight} {port} {target}")
            }
            RecordData::Cname(target) => target.clone(),
        }
    }
}

/// Splits a TXT text into character-strings of at most 255 bytes (RFC 1035 section 3.3.14).
/// The texts we publish are ASCII, so no character is ever cut in half.
pub fn txt_strings(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > 255 {
        let mut cut = 255;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (chunk, tail) = rest.split_at(cut);
        out.push(chunk);
        rest = tail;
    }
    out.push(rest);
    out
}

/// The DKIM key record of a key (RFC 6376 section 3.6.1): `v=DKIM1; k=ed25519; p=...`.
pub fn dkim_record(key: &DkimKey) -> String {
    let p = base64::engine::general_purpose::STANDARD.encode(&key.public_key);
    format!("v=DKIM1; k={}; p={p}", key.algorithm.as_str())
}

/// Where a key record is published: `<selector>._domainkey.<domain>.` (RFC 6376 section
/// 3.6.2.1).
pub fn dkim_record_name(selector: &str, domain: &str) -> String {
    format!("{selector}._domainkey.{}.", domain.trim_end_matches('.'))
}

/// Every record `domain` needs, in the order they are printed.
pub fn domain_records(
    domain: &str,
    hostname: &str,
    ports: &ServicePorts,
    keys: &[DkimKey],
) -> Vec<DnsRecord> {
    let domain = domain.trim_end_matches('.').to_lowercase();
    let host = format!("{}.", hostname.trim_end_matches('.'));
    let at =
        |prefix: &str| if prefix.is_empty() { format!("{domain}.") } else { format!("{prefix}.{domain}.") };
    let mut records = vec![
        // Mail for the domain goes to this server.
        DnsRecord { name: at(""), data: RecordData::Mx { preference: 10, exchange: host.clone() } },
        // RFC 7208: only the MX hosts (this server) send mail as the domain, the rest fails.
        DnsRecord { name: at(""), data: RecordData::Txt("v=spf1 mx -all".into()) },
    ];
    for key in keys {
        records.push(DnsRecord {
            name: dkim_record_name(&key.selector, &domain),
            data: RecordData::Txt(dkim_record(key)),
        });
    }
    // RFC 7489 section 6.3: mail failing both SPF and DKIM alignment goes to the spam folder.
    records.push(DnsRecord { name: at("_dmarc"), data: RecordData::Txt("v=DMARC1; p=quarantine".into()) });
    let srv = |service: &str, port: Option<u16>| DnsRecord {
        name: at(&format!("_{service}._tcp")),
        data: match port {
            Some(port) => RecordData::Srv { priority: 0, weight: 1, port, target: host.clone() },
            // RFC 6186 section 4: "." as target says the service is not offered.
            None => RecordData::Srv { priority: 0, weight: 0, port: 0, target: ".".into() },
        },
    };
    records.push(srv("submission", ports.submission));
    records.push(srv("submissions", ports.submissions));
    records.push(srv("imap", ports.imap));
    records.push(srv("imaps", ports.imaps));
    records.push(srv("pop3", ports.pop3));
    records.push(srv("pop3s", ports.pop3s));
    records.push(srv("autodiscover", Some(ports.https.unwrap_or(443))));
    records.push(DnsRecord { name: at("autoconfig"), data: RecordData::Cname(host.clone()) });
    records.push(DnsRecord { name: at("autodiscover"), data: RecordData::Cname(host) });
    records
}

/// The records as a zone-file fragment with explanations, ready to paste.
pub fn zone_text(domain: &str, hostname: &str, records: &[DnsRecord]) -> String {
    let domain = domain.trim_end_matches('.').to_lowercase();
    let width = records.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let mut out = format!(
        "; DNS records for {domain}, served by {hostname} (zone file format, TTL {TTL}).\n\
         ; Also needed outside this zone: an A (and AAAA) record of {hostname} with the server's\n\
         ; address, the reverse (PTR) record of that address pointing back to {hostname}, and\n\
         ; for receivers' SPF check of the HELO name (RFC 7208 section 2.3):\n\
         ;   {hostname}. {TTL} IN TXT \"v=spf1 a -all\"\n"
    );
    let mut section = "";
    for record in records {
        let heading = match (&record.data, record.name.as_str()) {
            (RecordData::Mx { .. }, _) => "; Incoming mail",
            (RecordData::Txt(t), _) if t.starts_with("v=spf1") => {
                "; SPF (RFC 7208): who may send mail as this domain"
            }
            (RecordData::Txt(t), _) if t.starts_with("v=DKIM1") => {
                "; DKIM keys (RFC 6376, RFC 8463): postamt signs with both"
            }
            (RecordData::Txt(_), _) => {
                "; DMARC (RFC 7489); add \"; rua=mailto:ADDRESS\" to receive aggregate reports"
            }
            (RecordData::Srv { .. }, name) if !name.starts_with("_autodiscover") => {
                "; Services for mail programs (RFC 6186, RFC 8314); target \".\" = not offered"
            }
            _ => "; Automatic configuration of mail programs (autoconfig, autodiscover)",
        };
        if heading != section {
            out.push_str(heading);
            out.push('\n');
            section = heading;
        }
        out.push_str(&format!("{:<width$} {TTL} IN {:<5} {}\n", record.name, record.kind(), record.rdata()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use postamt_store::DkimAlgorithm;

    fn keys() -> Vec<DkimKey> {
        vec![
            DkimKey {
                selector: "postamt-ed".into(),
                algorithm: DkimAlgorithm::Ed25519,
                private_key: vec![],
                public_key: vec![0xd7; 32],
                created: 0,
            },
            DkimKey {
                selector: "postamt-rsa".into(),
                algorithm: DkimAlgorithm::Rsa,
                private_key: vec![],
                public_key: vec![0x30; 294],
                created: 0,
            },
        ]
    }

    #[test]
    fn long_txt_is_split_into_255_byte_strings() {
        let text = "a".repeat(600);
        let chunks = txt_strings(&text);
        assert_eq!(chunks.iter().map(|c| c.len()).collect::<Vec<_>>(), [255, 255, 90]);
        assert_eq!(chunks.concat(), text);
        assert_eq!(txt_strings("short"), ["short"]);
        assert_eq!(txt_strings(&"b".repeat(255)).len(), 1);
        let record =
            DnsRecord { name: "x.".into(), data: RecordData::Txt(format!("{}\"\\", "c".repeat(256))) };
        assert_eq!(record.rdata(), format!("\"{}\" \"c\\\"\\\\\"", "c".repeat(255)));
    }

    #[test]
    fn every_record_of_a_domain() {
        let ports = ServicePorts {
            submission: Some(587),
            submissions: Some(465),
            imap: None,
            imaps: Some(993),
            pop3: None,
            pop3s: Some(995),
            https: None,
        };
        let records = domain_records("Example.ORG", "mail.example.net", &ports, &keys());
        let lines: Vec<String> =
            records.iter().map(|r| format!("{} {} {}", r.name, r.kind(), r.rdata())).collect();
        let ed = base64::engine::general_purpose::STANDARD.encode([0xd7; 32]);
        let rsa = base64::engine::general_purpose::STANDARD.encode([0x30; 294]);
        let rsa_text = format!("v=DKIM1; k=rsa; p={rsa}");
        assert!(rsa_text.len() > 255);
        assert_eq!(
            lines,
            [
                "example.org. MX 10 mail.example.net.".to_string(),
                "example.org. TXT \"v=spf1 mx -all\"".into(),
                format!("postamt-ed._domainkey.example.org. TXT \"v=DKIM1; k=ed25519; p={ed}\""),
                format!(
                    "postamt-rsa._domainkey.example.org. TXT \"{}\" \"{}\"",
                    &rsa_text[..255],
                    &rsa_text[255..]
                ),
                "_dmarc.example.org. TXT \"v=DMARC1; p=quarantine\"".into(),
                "_submission._tcp.example.org. SRV 0 1 587 mail.example.net.".into(),
                "_submissions._tcp.example.org. SRV 0 1 465 mail.example.net.".into(),
                "_imap._tcp.example.org. SRV 0 0 0 .".into(),
                "_imaps._tcp.example.org. SRV 0 1 993 mail.example.net.".into(),
                "_pop3._tcp.example.org. SRV 0 0 0 .".into(),
                "_pop3s._tcp.example.org. SRV 0 1 995 mail.example.net.".into(),
                "_autodiscover._tcp.example.org. SRV 0 1 443 mail.example.net.".into(),
                "autoconfig.example.org. CNAME mail.example.net.".into(),
                "autodiscover.example.org. CNAME mail.example.net.".into(),
            ]
        );
        let zone = zone_text("example.org", "mail.example.net", &records);
        assert!(zone.starts_with("; DNS records for example.org, served by mail.example.net"), "{zone}");
        assert!(
            zone.contains("\n_dmarc.example.org.                 3600 IN TXT   \"v=DMARC1; p=quarantine\"\n"),
            "{zone}"
        );
        assert!(
            zone.contains("\nexample.org.                        3600 IN MX    10 mail.example.net.\n"),
            "{zone}"
        );
        assert_eq!(zone.lines().filter(|l| !l.starts_with(';')).count(), records.len());
        // Every heading once.
        assert_eq!(zone.matches("; Services for mail programs").count(), 1);
        assert_eq!(zone.matches("; DKIM keys").count(), 1);
    }
}
