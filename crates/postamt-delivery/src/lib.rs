//! Delivery: what happens to a message once an SMTP session has accepted its envelope.
//!
//! [`Delivery::route`] decides per recipient whether it is ours (an account, an alias, a
//! catch-all), an unknown local address, or remote. [`Delivery::deliver`] then stores the
//! body once, expands aliases with duplicate elimination (an account reached through several
//! of its addresses gets one copy, as Postfix does) and, in one durable store transaction,
//! files the local copies and queues the remote recipients. Only after it returns may the
//! session answer 250.
//!
//! [`mailauth`] authenticates mail: DKIM signatures on what our users submit
//! ([`Delivery::sign_submission`]), SPF/DKIM/DMARC/ARC checks with an Authentication-Results
//! header on what arrives from other servers ([`Delivery::authenticate_incoming`]).

pub mod headers;
pub mod mailauth;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use postamt_mime::Summary;
use postamt_store::{
    AccountId, BlobId, DeliveryBatch, DeliveryTarget, Flags, NewQueueEntry, QueueId, QueueRecipient,
    SharedStore, StoreError,
};

pub use headers::{format_date, now_unix};
// The store types a protocol session needs, so that it does not depend on the store crate.
pub use postamt_store::{Account, DeliveryFailure};

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    /// A local recipient has no room for the message; nothing was delivered.
    #[error("mailbox of account {0} is full")]
    OverQuota(AccountId),
}

/// Where a recipient address leads.
#[derive(Debug, Clone)]
pub enum Route {
    /// One of our accounts (directly, through an alias or a catch-all).
    Local(Account),
    /// The domain is ours but nothing answers to the address.
    UnknownLocal,
    /// Not one of our domains.
    Remote,
}

/// Where one accepted recipient goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Local(AccountId),
    Remote,
}

/// One accepted recipient with its RFC 3461 parameters.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub address: String,
    pub target: Target,
    pub notify: Option<String>,
    pub orcpt: Option<String>,
}

/// The envelope of one SMTP transaction.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    /// Reverse-path; empty for the null sender `<>`.
    pub sender: String,
    pub recipients: Vec<Recipient>,
    pub envid: Option<String>,
    pub ret: Option<String>,
    pub smtputf8: bool,
    pub body_8bit: bool,
}

/// What goes into the Received header (RFC 5321 section 4.4).
#[derive(Debug, Clone)]
pub struct Trace {
    pub helo: String,
    pub peer: IpAddr,
    /// `with` protocol per RFC 3848 / RFC 6531: SMTP, ESMTP, ESMTPS, ESMTPSA, UTF8SMTPS, ...
    pub protocol: String,
    /// TLS version and cipher, when the session is encrypted.
    pub tls: Option<String>,
}

/// Result of one delivery.
#[derive(Debug, Clone)]
pub struct Report {
    /// Identifier quoted in the 250 reply and the Received header.
    pub id: String,
    /// Local accounts that got a copy.
    pub delivered: Vec<AccountId>,
    /// Local accounts refused (over quota after all, or gone meanwhile).
    pub failed: Vec<(AccountId, DeliveryFailure)>,
    pub queued: Option<QueueId>,
}

pub struct Delivery {
    store: SharedStore,
    hostname: String,
    signer: mailauth::Signer,
    /// Checks of incoming mail; without one, incoming mail gets no Authentication-Results.
    verifier: Option<Arc<mailauth::Verifier>>,
}

/// An incoming message after [`Delivery::authenticate_incoming`].
#[derive(Debug)]
pub struct Incoming {
    /// The message with forged Authentication-Results removed and ours prepended.
    pub message: Vec<u8>,
    /// What the checks found; `None` when this delivery has no verifier.
    pub results: Option<mailauth::AuthResults>,
}

impl Delivery {
    /// Delivery that signs submitted mail but does not check incoming mail.
    pub fn new(store: SharedStore, hostname: String) -> Arc<Delivery> {
        let signer = mailauth::Signer::new(store.clone());
        Arc::new(Delivery { store, hostname, signer, verifier: None })
    }

    /// Delivery that also checks incoming mail with `verifier`.
    pub fn with_verifier(
        store: SharedStore,
        hostname: String,
        verifier: mailauth::Verifier,
    ) -> Arc<Delivery> {
        let signer = mailauth::Signer::new(store.clone());
        Arc::new(Delivery { store, hostname, signer, verifier: Some(Arc::new(verifier)) })
    }

    /// The DKIM signer (keys of every local domain).
    pub fn signer(&self) -> &mailauth::Signer {
        &self.signer
    }

    /// Prepares a message one of our users submitted for delivery: removes Authentication-
    /// Results fields claiming to be ours (RFC 8601 section 5; local recipients would trust
    /// them) and prepends DKIM signatures of `from_domain`, the domain of the From address
    /// that submission verified the user owns. Call it after Date and Message-ID were added,
    /// so the signatures cover them.
    pub async fn sign_submission(
        &self,
        message: Vec<u8>,
        from_domain: &str,
    ) -> Result<Vec<u8>, mailauth::MailAuthError> {
        let (message, removed) = mailauth::remove_forged_results(message, &self.hostname);
        if removed > 0 {
            tracing::info!(removed, "removed forged Authentication-Results from a submitted message");
        }
        let signatures = self.signer.sign(&message, from_domain).await?;
        let mut signed = Vec::with_capacity(signatures.len() + message.len());
        signed.extend_from_slice(signatures.as_bytes());
        signed.extend_from_slice(&message);
        Ok(signed)
    }

    /// Checks a message that arrived from another server (`peer`, which said `helo` and gave
    /// the envelope sender `sender`): removes forged Authentication-Results fields, runs
    /// SPF, DKIM, DMARC and ARC, and prepends our Authentication-Results. Never fails; the
    /// checks run in their own task, so even a panic in them costs only the results.
    pub async fn authenticate_incoming(
        &self,
        message: Vec<u8>,
        peer: IpAddr,
        helo: &str,
        sender: &str,
    ) -> Incoming {
        let (message, removed) = mailauth::remove_forged_results(message, &self.hostname);
        if removed > 0 {
            tracing::info!(removed, %peer, "removed forged Authentication-Results");
        }
        let Some(verifier) = &self.verifier else {
            return Incoming { message, results: None };
        };
        let message = Arc::new(message);
        let task = {
            let (verifier, message) = (Arc::clone(verifier), Arc::clone(&message));
            let (helo, sender) = (helo.to_string(), sender.to_string());
            tokio::spawn(async move { verifier.verify(&message, peer, &helo, &sender).await })
        };
        let results = match task.await {
            Ok(results) => results,
            Err(e) => {
                tracing::error!(error = %e, "mail authentication failed; delivering with temperror");
                mailauth::AuthResults {
                    spf: vec![],
                    dkim: vec![],
                    dmarc: mailauth::DmarcCheck {
                        result: mailauth::Outcome::TempError,
                        from_domain: None,
                        policy: None,
                    },
                    arc: mailauth::Outcome::TempError,
                }
            }
        };
        let header = results.header(&self.hostname);
        let message = Arc::try_unwrap(message).unwrap_or_else(|shared| (*shared).clone());
        let mut out = Vec::with_capacity(header.len() + message.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&message);
        if results.dmarc.result != mailauth::Outcome::Pass && results.dmarc.result != mailauth::Outcome::None
        {
            tracing::info!(%peer, sender, from = ?results.dmarc.from_domain, dmarc = results.dmarc.result.as_str(),
                policy = ?results.dmarc.policy, "DMARC did not pass");
        }
        Incoming { message: out, results: Some(results) }
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Routes a recipient address. `postmaster` without a domain (RFC 5321 4.1.1.3) is the
    /// postmaster of our host name, or else of the first local domain that has one.
    pub async fn route(&self, address: &str) -> Result<Route, StoreError> {
        if !address.contains('@') {
            if !address.eq_ignore_ascii_case("postmaster") {
                return Ok(Route::UnknownLocal);
            }
            let mut candidates = vec![format!("postmaster@{}", self.hostname)];
            candidates
                .extend(self.store.list_domains().await?.into_iter().map(|d| format!("postmaster@{d}")));
            for candidate in candidates {
                if let Some(account) = self.store.resolve_address(&candidate).await? {
                    return Ok(Route::Local(account));
                }
            }
            return Ok(Route::UnknownLocal);
        }
        let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        if !self.store.is_local_domain(domain).await? {
            return Ok(Route::Remote);
        }
        Ok(match self.store.resolve_address(address).await? {
            Some(account) => Route::Local(account),
            None => Route::UnknownLocal,
        })
    }

    /// Whether `account` may use `address` as its sender (its own address, or an alias or
    /// catch-all of it).
    pub async fn may_send_as(&self, account: &Account, address: &str) -> Result<bool, StoreError> {
        Ok(self.store.resolve_address(address).await?.is_some_and(|a| a.id == account.id))
    }

    /// Stores and delivers a message: local copies into each account's INBOX (one per
    /// account, however many of its addresses were named), remote recipients into the
    /// outbound queue. Returns once everything is durable.
    pub async fn deliver(
        &self,
        env: &Envelope,
        trace: &Trace,
        message: &[u8],
    ) -> Result<Report, DeliveryError> {
        let id = headers::new_id();
        let single_rcpt = (env.recipients.len() == 1).then(|| env.recipients[0].address.as_str());
        let received = headers::received(trace, &self.hostname, &id, single_rcpt, now_unix());

        let mut seen = HashSet::new();
        let accounts: Vec<AccountId> = env
            .recipients
            .iter()
            .filter_map(|r| match r.target {
                Target::Local(a) => seen.insert(a).then_some(a),
                Target::Remote => None,
            })
            .collect();
        let mut seen = HashSet::new();
        let remote: Vec<QueueRecipient> = env
            .recipients
            .iter()
            .filter(|r| r.target == Target::Remote && seen.insert(r.address.to_lowercase()))
            .map(|r| QueueRecipient {
                address: r.address.clone(),
                notify: r.notify.clone(),
                orcpt: r.orcpt.clone(),
            })
            .collect();

        // Queued mail gets no Return-Path: the final delivery adds it (RFC 5321 4.4).
        let queued_body = if remote.is_empty() {
            None
        } else {
            let mut body = Vec::with_capacity(received.len() + message.len());
            body.extend_from_slice(received.as_bytes());
            body.extend_from_slice(message);
            Some(Arc::new(body))
        };
        let local_body = if accounts.is_empty() {
            None
        } else {
            let return_path = format!("Return-Path: <{}>\r\n", env.sender);
            let mut body = Vec::with_capacity(return_path.len() + received.len() + message.len());
            body.extend_from_slice(return_path.as_bytes());
            body.extend_from_slice(received.as_bytes());
            body.extend_from_slice(message);
            Some(Arc::new(body))
        };

        // All or nothing: SMTP has one reply for all recipients, and refusing the whole
        // message (the sender retries) loses nothing, where delivering to some would need a
        // bounce for the others.
        if let Some(body) = &local_body {
            for &account in &accounts {
                let room = self
                    .store
                    .account_by_id(account)
                    .await?
                    .is_none_or(|a| a.has_room_for(body.len() as u64));
                if !room {
                    return Err(DeliveryError::OverQuota(account));
                }
            }
        }

        // A blob can vanish between writing it and the transaction that references it (the
        // last message holding an identical body expunged meanwhile): write it again and retry.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result =
                self.try_deliver(env, &accounts, &remote, local_body.clone(), queued_body.clone()).await;
            match result {
                Err(StoreError::BlobMissing(blob)) if attempts < 3 => {
                    tracing::debug!(%blob, "blob collected during delivery; retrying");
                }
                Err(e) => return Err(e.into()),
                Ok((outcome, ids)) => {
                    let mut report = Report { id, delivered: vec![], failed: vec![], queued: outcome.queued };
                    for (account, result) in ids.into_iter().zip(outcome.results) {
                        match result {
                            Ok(_) => report.delivered.push(account),
                            Err(f) => report.failed.push((account, f)),
                        }
                    }
                    tracing::info!(id = %report.id, sender = %env.sender, local = report.delivered.len(),
                        refused = report.failed.len(), queued = ?report.queued, size = message.len(), "delivered");
                    return Ok(report);
                }
            }
        }
    }

    async fn try_deliver(
        &self,
        env: &Envelope,
        accounts: &[AccountId],
        remote: &[QueueRecipient],
        local_body: Option<Arc<Vec<u8>>>,
        queued_body: Option<Arc<Vec<u8>>>,
    ) -> Result<(postamt_store::DeliveryOutcome, Vec<AccountId>), StoreError> {
        let enqueue = match queued_body {
            Some(body) => {
                let size = body.len() as u64;
                let blob = self.store.put_blob(body).await?;
                Some(NewQueueEntry {
                    sender: env.sender.clone(),
                    recipients: remote.to_vec(),
                    blob,
                    size,
                    envid: env.envid.clone(),
                    ret: env.ret.clone(),
                    smtputf8: env.smtputf8,
                    body_8bit: env.body_8bit,
                })
            }
            None => None,
        };
        let (blob, size, info) = match local_body {
            Some(body) => {
                let size = body.len() as u64;
                // The summary IMAP answers FETCH ENVELOPE/BODYSTRUCTURE and header SEARCHes
                // from (`postamt_mime::Summary`), derived while the body is written, so even
                // the first read of new mail opens no message file for them.
                let copy = Arc::clone(&body);
                let summary = tokio::task::spawn_blocking(move || Summary::compute(&copy).encode());
                let blob = self.store.put_blob(body).await?;
                (blob, size, summary.await.ok())
            }
            None => match &enqueue {
                Some(e) => (e.blob.clone(), 0, None),
                None => (BlobId::of(b""), 0, None),
            },
        };
        let batch = DeliveryBatch {
            blob,
            size,
            internal_date: now_unix(),
            targets: accounts
                .iter()
                .map(|&account| DeliveryTarget { account, mailbox: None, flags: Flags::NONE })
                .collect(),
            enqueue,
            info,
        };
        let outcome = self.store.deliver(batch).await?;
        Ok((outcome, accounts.to_vec()))
    }
}
