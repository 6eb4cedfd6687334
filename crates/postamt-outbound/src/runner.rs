//! The queue runner: claims due queue entries, delivers each to the recipients' servers, and
//! records the outcome with its bounce in one store transaction.
//!
//! # One entry's attempt
//! 1. `Store::queue_claim` leases the entry (renewed every [`LEASE_RENEW`] while the attempt
//!    runs), so no other runner, in this process or another on the same database, delivers
//!    it at the same time.
//! 2. Its pending recipients are grouped by next hop: the smarthost (everything), a static
//!    route, or the recipient domain's MX hosts. Each group is one SMTP transaction on one
//!    connection, all groups of the entry at once, within the connection limits (in total
//!    and per destination).
//! 3. `Store::queue_update` records per recipient delivered / failed / still pending with the
//!    reply, and in the same transaction files the DSN for the failures (into the sender's
//!    INBOX when the sender is local, else as a new queue entry from `<>`), so a crash
//!    neither loses nor repeats a bounce. Pending recipients wait for the next interval of
//!    `[queue] retry` (the last one repeats); once the message is older than `[queue]
//!    lifetime` they fail too.
//!
//! A crash after the remote server accepted the message but before step 3 committed makes
//! the next attempt send it again: delivery is at least once, never lost; the remote server
//! sees the same message (same Message-ID) twice at worst.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postamt_config::{Config, HostPort, QueueConfig, RelayConfig};
use postamt_delivery::{Delivery, Route, now_unix};
use postamt_store::{
    DeliveryBatch, DeliveryTarget, Flags, NewQueueEntry, QueueClaim, QueueEntry, QueueRecipient,
    QueueRecipientState, QueueUpdate, RecipientOutcome, RecipientStatus, SharedStore, StoreError,
};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::{
    self, Diagnostic, Message, Rcpt, RecipientResult, SessionConfig, SessionOutcome, Verdict,
};
use crate::dns::{self, HickoryResolver, LookupError, MxPlan, Resolver, ResolverSetupError};
use crate::dsn::{self, Action, DiagnosticCode, Dsn, DsnRecipient, Event, Return};
use crate::reply::EnhancedStatus;

/// How often the queue is looked at when nothing wakes the runner: due retries, `queue
/// flush` from the command line, and mail queued by other processes are picked up within this.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long a claim holds without renewal. A crashed process delays its entries this long.
pub const LEASE: Duration = Duration::from_secs(60);
/// How often a running attempt renews its lease.
pub const LEASE_RENEW: Duration = Duration::from_secs(20);
/// Queue entries being delivered at once.
pub const MAX_ENTRIES_IN_FLIGHT: usize = 64;
/// Outgoing SMTP connections at once, in total.
pub const MAX_CONNECTIONS: usize = 20;
/// Outgoing SMTP connections at once to one destination (domain, route or smarthost).
pub const MAX_CONNECTIONS_PER_DESTINATION: usize = 4;
/// MX hosts tried per attempt, and connections (addresses) tried per attempt.
const MAX_HOSTS: usize = 5;
const MAX_CONNECTS: usize = 10;
/// Time deliveries get to finish after shutdown was asked for; then they are abandoned and
/// their leases released (less than the server's own grace period).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// The outbound part could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error(transparent)]
    Resolver(#[from] ResolverSetupError),
}

/// The queue runner.
pub struct Outbound {
    store: SharedStore,
    delivery: Arc<Delivery>,
    hostname: String,
    relay: RelayConfig,
    queue: QueueConfig,
    resolver: Arc<dyn Resolver>,
    tls: Arc<rustls::ClientConfig>,
    wake: Notify,
    connections: Arc<Semaphore>,
    destinations: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Where a group of recipients goes next.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum NextHop {
    Smarthost,
    Route(String, u16),
    Literal(std::net::IpAddr),
    Mx(String),
}

impl NextHop {
    fn key(&self) -> String {
        match self {
            NextHop::Smarthost => "smarthost".to_string(),
            NextHop::Route(host, port) => format!("route:{host}:{port}"),
            NextHop::Literal(ip) => format!("[{ip}]"),
            NextHop::Mx(domain) => domain.clone(),
        }
    }
}

impl Outbound {
    /// A runner for `config`, resolving with `[dns]`.
    pub fn new(
        config: &Config,
        store: SharedStore,
        delivery: Arc<Delivery>,
    ) -> Result<Arc<Outbound>, OutboundError> {
        let resolver = Arc::new(HickoryResolver::new(&config.dns)?);
        Ok(Outbound::with_resolver(config, store, delivery, resolver))
    }

    /// A runner with its own resolver (tests).
    pub fn with_resolver(
        config: &Config,
        store: SharedStore,
        delivery: Arc<Delivery>,
        resolver: Arc<dyn Resolver>,
    ) -> Arc<Outbound> {
        Arc::new(Outbound {
            store,
            delivery,
            hostname: config.hostname.clone(),
            relay: config.relay.clone(),
            queue: config.queue.clone(),
            resolver,
            tls: client::tls_config(),
            wake: Notify::new(),
            connections: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            destinations: Mutex::new(HashMap::new()),
        })
    }

    /// Looks at the queue now instead of at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs until `shutdown`, then lets running deliveries finish for [`SHUTDOWN_GRACE`];
    /// whatever still runs then is abandoned, its entries left pending for the next start.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let tasks = TaskTracker::new();
        let slots = Arc::new(Semaphore::new(MAX_ENTRIES_IN_FLIGHT));
        let abandon = CancellationToken::new();
        tracing::info!(
            smarthost = self.relay.smarthost.as_ref().map(|h| h.to_string()),
            routes = self.relay.routes.len(),
            "outbound queue runner started"
        );
        loop {
            let free = slots.available_permits();
            if free > 0 {
                let now = now_unix();
                match self.store.queue_claim(now, free, now + LEASE.as_secs() as i64).await {
                    Ok(claims) => {
                        for claim in claims {
                            let Ok(permit) = slots.clone().try_acquire_owned() else { break };
                            let this = self.clone();
                            let abandon = abandon.clone();
                            tasks.spawn(async move {
                                this.process(claim, abandon).await;
                                drop(permit);
                                this.wake();
                            });
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot claim queued mail"),
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
        tasks.close();
        if !tasks.is_empty() {
            tracing::info!(running = tasks.len(), "waiting for outgoing deliveries to finish");
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait()).await.is_err() {
            abandon.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), tasks.wait()).await;
        }
        tracing::info!("outbound queue runner stopped");
    }

    /// One attempt of one claimed entry, with its lease renewed meanwhile.
    async fn process(self: &Arc<Self>, claim: QueueClaim, abandon: CancellationToken) {
        let QueueClaim { entry, token, .. } = claim;
        let body = match self.store.read_blob(&entry.blob).await {
            Ok(body) => Some(Arc::new(body)),
            Err(e) => {
                tracing::error!(queue_id = %entry.id, error = %e, "cannot read a queued message");
                None
            }
        };
        let outcome = tokio::select! {
            outcome = self.attempt(&entry, &body) => Some(outcome),
            lost = self.keep_lease(&entry.id, &token) => {
                tracing::warn!(queue_id = %entry.id, error = %lost, "lease of a queue entry lost; leaving it to its new owner");
                return;
            }
            _ = abandon.cancelled() => None,
        };
        match outcome {
            Some(results) => {
                self.finish(&entry, &token, results, body.as_deref().map_or(&[][..], |b| b)).await
            }
            None => {
                // Shutting down: release the lease, the entry stays as it was.
                let release = QueueUpdate {
                    outcomes: Vec::new(),
                    attempts: entry.attempts,
                    next_attempt: entry.next_attempt,
                    notification: None,
                };
                if let Err(e) = self.store.queue_update(&entry.id, &token, release).await {
                    tracing::warn!(queue_id = %entry.id, error = %e, "cannot release the lease of an abandoned delivery");
                }
                tracing::info!(queue_id = %entry.id, "delivery abandoned at shutdown; it will be retried");
            }
        }
    }

    /// Renews the lease until that fails for good; returns why.
    async fn keep_lease(&self, id: &str, token: &str) -> StoreError {
        loop {
            tokio::time::sleep(LEASE_RENEW).await;
            let until = now_unix() + LEASE.as_secs() as i64;
            match self.store.queue_renew(id, token, until).await {
                Ok(()) => {}
                Err(e @ StoreError::NotFound { .. }) => return e,
                Err(e) => tracing::warn!(queue_id = %id, error = %e, "cannot renew a queue lease"),
            }
        }
    }

    /// Delivers the pending recipients of `entry`; a result for each.
    async fn attempt(
        self: &Arc<Self>,
        entry: &QueueEntry,
        body: &Option<Arc<Vec<u8>>>,
    ) -> Vec<(QueueRecipientState, RecipientResult)> {
        let pending: Vec<QueueRecipientState> =
            entry.recipients.iter().filter(|r| r.status == RecipientStatus::Pending).cloned().collect();
        let Some(body) = body else {
            let r = RecipientResult::local(
                Verdict::Deferred,
                EnhancedStatus::new(4, 3, 0),
                "local error: cannot read the queued message",
            );
            return pending.into_iter().map(|p| (p, r.clone())).collect();
        };

        let mut groups: BTreeMap<NextHop, Vec<QueueRecipientState>> = BTreeMap::new();
        let mut results = Vec::new();
        for rcpt in pending {
            match self.next_hop(&rcpt.recipient.address) {
                Some(hop) => groups.entry(hop).or_default().push(rcpt),
                None => {
                    let r = RecipientResult::local(
                        Verdict::Failed,
                        EnhancedStatus::new(5, 1, 3),
                        format!("bad recipient address syntax: {:?}", rcpt.recipient.address),
                    );
                    results.push((rcpt, r));
                }
            }
        }
        let entry = Arc::new(entry.clone());
        let mut set = JoinSet::new();
        for (hop, rcpts) in groups {
            let (this, entry, body) = (self.clone(), entry.clone(), body.clone());
            set.spawn(async move {
                let results = this.deliver_group(&entry, &hop, &rcpts, &body).await;
                rcpts.into_iter().zip(results).collect::<Vec<_>>()
            });
        }
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(group) => results.extend(group),
                Err(e) => tracing::error!(queue_id = %entry.id, error = %e, "a delivery task failed"),
            }
        }
        // A recipient whose task died is left pending (the next attempt tries again).
        results
    }

    /// The connection limit of one destination.
    fn destination_limit(&self, key: &str) -> Arc<Semaphore> {
        let mut map = self.destinations.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 1000 {
            // Forget the limits nobody holds.
            map.retain(|_, s| Arc::strong_count(s) > 1);
        }
        map.entry(key.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(MAX_CONNECTIONS_PER_DESTINATION)))
            .clone()
    }

    /// One SMTP transaction for the recipients of one next hop, trying its hosts in turn;
    /// a result per recipient in order.
    async fn deliver_group(
        &self,
        entry: &QueueEntry,
        hop: &NextHop,
        rcpts: &[QueueRecipientState],
        body: &[u8],
    ) -> Vec<RecipientResult> {
        let all = |r: RecipientResult| vec![r; rcpts.len()];
        let hosts = match self.hosts(hop).await {
            Ok(hosts) => hosts,
            Err(r) => {
                tracing::info!(queue_id = %entry.id, destination = %hop.key(), recipients = rcpts.len(), reply = %r.summary(), "delivery attempt");
                return all(r);
            }
        };
        // The destination's limit first: waiting for a busy destination must not hold one of
        // the connections every destination shares.
        let _destination = self.destination_limit(&hop.key()).acquire_owned().await;
        let _total = self.connections.clone().acquire_owned().await;

        let list: Vec<Rcpt> = rcpts
            .iter()
            .map(|r| Rcpt {
                address: r.recipient.address.clone(),
                notify: r.recipient.notify.clone(),
                orcpt: r.recipient.orcpt.clone(),
            })
            .collect();
        let header = dsn::header_section(body);
        let needs_smtputf8 = entry.smtputf8
            && (!entry.sender.is_ascii() || list.iter().any(|r| !r.address.is_ascii()) || !header.is_ascii());
        let msg = Message {
            sender: &entry.sender,
            rcpts: &list,
            envid: entry.envid.as_deref(),
            ret: entry.ret.as_deref(),
            smtputf8: entry.smtputf8,
            needs_smtputf8,
            eight_bit: entry.body_8bit || !body.is_ascii(),
            body,
        };
        let smarthost = *hop == NextHop::Smarthost;
        let config = SessionConfig {
            helo_name: self.hostname.clone(),
            tls: self.tls.clone(),
            auth: if smarthost { self.relay.smarthost_auth.clone() } else { None },
            implicit_tls: smarthost && self.relay.smarthost.as_ref().is_some_and(|h| h.port == 465),
            starttls: true,
        };

        let mut last: Option<RecipientResult> = None;
        let mut dns_trouble: Option<RecipientResult> = None;
        let mut connects = 0;
        'hosts: for (host, port) in hosts.iter().take(MAX_HOSTS) {
            let addrs = match dns::host_addresses(self.resolver.as_ref(), host, *port).await {
                Ok(addrs) => addrs,
                Err(e) => {
                    let temporary = matches!(e, LookupError::Temporary(_));
                    let r = RecipientResult::local(
                        Verdict::Deferred,
                        EnhancedStatus::new(4, 4, if temporary { 3 } else { 4 }),
                        format!("cannot find the address of {host}: {e}"),
                    );
                    tracing::debug!(queue_id = %entry.id, host = %host, error = %e, "host address lookup failed");
                    if temporary || dns_trouble.is_none() {
                        dns_trouble = Some(r);
                    }
                    continue;
                }
            };
            for addr in addrs {
                if connects >= MAX_CONNECTS {
                    break 'hosts;
                }
                connects += 1;
                let mut outcome = client::deliver(&config, host, addr, &msg).await;
                if let SessionOutcome::TlsFailed(r) = &outcome {
                    // Opportunistic TLS: a broken handshake must not block delivery. Again
                    // without STARTTLS (never for the smarthost, which gets a password).
                    tracing::info!(queue_id = %entry.id, host = %host, addr = %addr, reply = %r.summary(), "STARTTLS failed; trying again without TLS");
                    if config.auth.is_none() {
                        let plain = SessionConfig { starttls: false, ..config.clone() };
                        outcome = client::deliver(&plain, host, addr, &msg).await;
                    }
                }
                match outcome {
                    SessionOutcome::Done(results) => {
                        log_attempt(&entry.id, hop, &results);
                        return results;
                    }
                    SessionOutcome::NextHost(r) | SessionOutcome::TlsFailed(r) => {
                        tracing::info!(queue_id = %entry.id, destination = %hop.key(), host = %host, addr = %addr, reply = %r.summary(), "host unusable; trying the next one");
                        last = Some(r);
                    }
                }
            }
        }
        let result = match (last, dns_trouble) {
            (Some(r), _) => r,
            (None, Some(r)) if r.status.detail == 4 => {
                // RFC 5321 5.1: MX hosts exist but none has an address: an error, reported.
                RecipientResult { verdict: Verdict::Failed, status: EnhancedStatus::new(5, 4, 4), ..r }
            }
            (None, Some(r)) => r,
            (None, None) => RecipientResult::local(
                Verdict::Deferred,
                EnhancedStatus::new(4, 4, 0),
                "no host to deliver to",
            ),
        };
        tracing::info!(queue_id = %entry.id, destination = %hop.key(), recipients = rcpts.len(), reply = %result.summary(), "delivery attempt");
        all(result)
    }

    /// The hosts (name or address, port) to try for a next hop, in order, or the result for
    /// all its recipients when there is none.
    async fn hosts(&self, hop: &NextHop) -> Result<Vec<(String, u16)>, RecipientResult> {
        let port = self.relay.port;
        match hop {
            NextHop::Smarthost => {
                let smarthost = self.relay.smarthost.as_ref().map(|h| (h.host.clone(), h.port));
                Ok(smarthost.into_iter().collect())
            }
            NextHop::Route(host, port) => Ok(vec![(host.clone(), *port)]),
            NextHop::Literal(ip) => Ok(vec![(ip.to_string(), port)]),
            NextHop::Mx(domain) => {
                let records = match self.resolver.mx(domain).await {
                    Ok(records) => records,
                    Err(LookupError::NoRecords) => Vec::new(),
                    Err(LookupError::NxDomain) => {
                        return Err(RecipientResult::local(
                            Verdict::Failed,
                            EnhancedStatus::new(5, 1, 2),
                            format!("domain {domain} does not exist (DNS: NXDOMAIN)"),
                        ));
                    }
                    Err(LookupError::Temporary(e)) => {
                        return Err(RecipientResult::local(
                            Verdict::Deferred,
                            EnhancedStatus::new(4, 4, 3),
                            format!("MX lookup of {domain} failed: {e}"),
                        ));
                    }
                };
                let plan = dns::plan_mx(&records, &self.hostname, &mut rand::rng());
                match plan {
                    MxPlan::Hosts(hosts) => Ok(hosts.into_iter().map(|h| (h, port)).collect()),
                    MxPlan::Implicit => Ok(vec![(domain.clone(), port)]),
                    // RFC 7505 section 4.1: 5.1.10 "Recipient address has null MX".
                    MxPlan::NullMx => Err(RecipientResult::local(
                        Verdict::Failed,
                        EnhancedStatus::new(5, 1, 10),
                        format!("domain {domain} accepts no mail (null MX, RFC 7505)"),
                    )),
                    MxPlan::Loop => Err(RecipientResult::local(
                        Verdict::Failed,
                        EnhancedStatus::new(5, 4, 6),
                        format!("mail for {domain} loops back to myself ({})", self.hostname),
                    )),
                }
            }
        }
    }

    /// The next hop for a recipient; `None` for an address without a domain.
    fn next_hop(&self, address: &str) -> Option<NextHop> {
        let (local, domain) = address.rsplit_once('@')?;
        if local.is_empty() || domain.is_empty() {
            return None;
        }
        if self.relay.smarthost.is_some() {
            return Some(NextHop::Smarthost);
        }
        if let Some(ip) = dns::domain_literal(domain) {
            return Some(NextHop::Literal(ip));
        }
        let domain = domain.to_lowercase();
        if let Some(HostPort { host, port }) = self.relay.routes.get(&domain) {
            return Some(NextHop::Route(host.clone(), *port));
        }
        Some(NextHop::Mx(domain))
    }

    /// Records the attempt: recipient states, the bounce, the next attempt.
    async fn finish(
        &self,
        entry: &QueueEntry,
        token: &str,
        results: Vec<(QueueRecipientState, RecipientResult)>,
        original: &[u8],
    ) {
        let now = now_unix();
        let attempts = entry.attempts.saturating_add(1);
        let expires = entry.created.saturating_add(self.queue.lifetime.as_secs() as i64);
        let expired = now >= expires;

        let mut outcomes = Vec::with_capacity(results.len());
        let mut report = Vec::new();
        let (mut delivered, mut failed, mut deferred) = (0, 0, 0);
        for (state, result) in &results {
            let address = state.recipient.address.clone();
            let summary = result.summary();
            let (status, action) = match result.verdict {
                Verdict::Delivered => {
                    delivered += 1;
                    let relayed = !result.remote_dsn
                        && dsn::notify_allows(state.recipient.notify.as_deref(), Event::Success);
                    (RecipientStatus::Delivered, relayed.then_some(Action::Relayed))
                }
                Verdict::Failed => {
                    failed += 1;
                    let notify = dsn::notify_allows(state.recipient.notify.as_deref(), Event::Failure);
                    (RecipientStatus::Failed, notify.then_some(Action::Failed))
                }
                Verdict::Deferred if expired => {
                    failed += 1;
                    let notify = dsn::notify_allows(state.recipient.notify.as_deref(), Event::Failure);
                    (RecipientStatus::Failed, notify.then_some(Action::Failed))
                }
                Verdict::Deferred => {
                    deferred += 1;
                    (RecipientStatus::Pending, None)
                }
            };
            let last_reply = if expired && result.verdict == Verdict::Deferred {
                format!("gave up after {attempts} attempts (queue lifetime expired): {summary}")
            } else {
                summary.clone()
            };
            outcomes.push(RecipientOutcome {
                address: address.clone(),
                status,
                last_reply: Some(last_reply.clone()),
            });
            if let Some(action) = action {
                report.push(dsn_recipient(state, result, action, &last_reply, now));
            }
        }

        // Never a DSN about a DSN (or anything else from the null sender): RFC 5321 4.5.5.
        let notification = if entry.sender.is_empty() || report.is_empty() {
            if entry.sender.is_empty() && failed > 0 {
                tracing::info!(queue_id = %entry.id, failed, "failed recipients of a message from <>: no bounce");
            }
            None
        } else {
            self.notification(entry, &report, now, original).await
        };
        let next_attempt = self.next_attempt(entry.created, attempts, now);

        let notification_body = notification;
        let notification = notification_body.as_ref().map(|(batch, _)| batch.clone());
        let mut update = QueueUpdate { outcomes, attempts, next_attempt, notification };
        let mut tries = 0;
        loop {
            tries += 1;
            match self.store.queue_update(&entry.id, token, update.clone()).await {
                Ok(done) => {
                    let queued_dsn = done.notification.as_ref().and_then(|n| n.queued.clone());
                    let filed =
                        done.notification.as_ref().map(|n| n.results.iter().filter(|r| r.is_ok()).count());
                    if let Some(n) = &done.notification
                        && n.results.iter().any(|r| r.is_err())
                    {
                        tracing::warn!(queue_id = %entry.id, sender = %entry.sender, results = ?n.results, "the delivery status notification could not be filed locally");
                    }
                    tracing::info!(
                        queue_id = %entry.id,
                        attempt = attempts,
                        delivered,
                        failed,
                        deferred,
                        dsn_queued = ?queued_dsn,
                        dsn_filed = ?filed,
                        next_attempt = (!done.completed).then_some(next_attempt),
                        "{}",
                        if done.completed { "queue entry done" } else { "queue entry deferred" }
                    );
                    if queued_dsn.is_some() {
                        self.wake();
                    }
                    return;
                }
                Err(StoreError::BlobMissing(_)) if tries < 3 => {
                    // The DSN's body vanished between writing and referencing it: write it
                    // again (same content, same id) and retry.
                    if let Some((_, body)) = &notification_body
                        && let Err(e) = self.store.put_blob(body.clone()).await
                    {
                        tracing::error!(queue_id = %entry.id, error = %e, "cannot store a delivery status notification");
                        update.notification = None;
                    }
                }
                Err(e @ StoreError::NotFound { .. }) => {
                    tracing::warn!(queue_id = %entry.id, error = %e, "queue entry deleted or taken over during delivery; outcome discarded");
                    return;
                }
                Err(e) => {
                    tracing::error!(queue_id = %entry.id, error = %e, "cannot record a delivery attempt; it will be repeated after the lease expires");
                    return;
                }
            }
        }
    }

    /// When to try again after attempt number `attempts`: the schedule's interval (the last
    /// one repeating), but no later than the end of the lifetime, so that the message bounces
    /// on time.
    fn next_attempt(&self, created: i64, attempts: u32, now: i64) -> i64 {
        next_attempt(&self.queue, created, attempts, now)
    }

    /// The DSN for `report`, routed to the envelope sender: into a local INBOX or queued.
    async fn notification(
        &self,
        entry: &QueueEntry,
        report: &[DsnRecipient],
        now: i64,
        original: &[u8],
    ) -> Option<(DeliveryBatch, Arc<Vec<u8>>)> {
        let unique = format!("{}.{}", entry.id, now);
        let message = dsn::build(&Dsn {
            hostname: &self.hostname,
            to: &entry.sender,
            envid: entry.envid.as_deref(),
            arrival: entry.created,
            now,
            returned: Return::choose(entry.ret.as_deref(), entry.size as usize),
            original,
            recipients: report,
            unique: &unique,
        });
        let route = match self.delivery.route(&entry.sender).await {
            Ok(route) => route,
            Err(e) => {
                tracing::error!(queue_id = %entry.id, error = %e, "cannot route a delivery status notification; it is dropped");
                return None;
            }
        };
        let batch = match route {
            Route::Local(account) => {
                let mut body = b"Return-Path: <>\r\n".to_vec();
                body.extend_from_slice(&message);
                let size = body.len() as u64;
                let body = Arc::new(body);
                let blob = self.put(entry, body.clone()).await?;
                let batch = DeliveryBatch {
                    blob,
                    size,
                    internal_date: now,
                    targets: vec![DeliveryTarget { account: account.id, mailbox: None, flags: Flags::NONE }],
                    enqueue: None,
                    // Bounces are rare: IMAP derives their summary on first read.
                    info: None,
                };
                (batch, body)
            }
            Route::Remote => {
                let size = message.len() as u64;
                let eight_bit = message.iter().any(|&b| b >= 0x80);
                let smtputf8 = !entry.sender.is_ascii() || (eight_bit && entry.smtputf8);
                let body = Arc::new(message);
                let blob = self.put(entry, body.clone()).await?;
                let batch = DeliveryBatch {
                    blob: blob.clone(),
                    size,
                    internal_date: now,
                    targets: Vec::new(),
                    info: None,
                    enqueue: Some(NewQueueEntry {
                        sender: String::new(),
                        recipients: vec![QueueRecipient {
                            address: entry.sender.clone(),
                            notify: None,
                            orcpt: None,
                        }],
                        blob,
                        size,
                        envid: None,
                        ret: None,
                        smtputf8,
                        body_8bit: eight_bit,
                    }),
                };
                (batch, body)
            }
            Route::UnknownLocal => {
                tracing::warn!(queue_id = %entry.id, sender = %entry.sender, "the sender is no local address any more; bounce dropped");
                return None;
            }
        };
        Some(batch)
    }

    /// Stores a notification's body.
    async fn put(&self, entry: &QueueEntry, body: Arc<Vec<u8>>) -> Option<postamt_store::BlobId> {
        match self.store.put_blob(body).await {
            Ok(blob) => Some(blob),
            Err(e) => {
                tracing::error!(queue_id = %entry.id, error = %e, "cannot store a delivery status notification; it is dropped");
                None
            }
        }
    }
}

/// The retry schedule: see [`Outbound::next_attempt`].
pub fn next_attempt(queue: &QueueConfig, created: i64, attempts: u32, now: i64) -> i64 {
    let index = (attempts.max(1) as usize - 1).min(queue.retry.len().saturating_sub(1));
    let interval = queue.retry.get(index).map_or(60, |d| d.as_secs().max(1) as i64);
    let expires = created.saturating_add(queue.lifetime.as_secs() as i64);
    now.saturating_add(interval).min(expires.max(now + 1))
}

/// The log line of one delivery attempt to one destination.
fn log_attempt(queue_id: &str, hop: &NextHop, results: &[RecipientResult]) {
    let count = |v| results.iter().filter(|r| r.verdict == v).count();
    let remote = results.iter().find_map(|r| r.remote.as_ref()).map(|r| r.to_string()).unwrap_or_default();
    // The most telling reply: a refusal if there is one, else the acceptance.
    let reply = results
        .iter()
        .find(|r| r.verdict != Verdict::Delivered)
        .or(results.first())
        .map(|r| match &r.diagnostic {
            Diagnostic::Smtp { reply, after } => format!("{} (in reply to {after})", reply.one_line()),
            Diagnostic::Local(text) => text.clone(),
        })
        .unwrap_or_default();
    tracing::info!(
        queue_id,
        destination = %hop.key(),
        host = %remote,
        recipients = results.len(),
        delivered = count(Verdict::Delivered),
        deferred = count(Verdict::Deferred),
        failed = count(Verdict::Failed),
        reply = %reply,
        "delivery attempt"
    );
}

/// The report block of one recipient.
fn dsn_recipient(
    state: &QueueRecipientState,
    result: &RecipientResult,
    action: Action,
    explanation: &str,
    now: i64,
) -> DsnRecipient {
    let diagnostic = match &result.diagnostic {
        Diagnostic::Smtp { reply, .. } => {
            DiagnosticCode::Smtp { code: reply.code, lines: reply.lines.clone() }
        }
        Diagnostic::Local(text) => DiagnosticCode::Local(text.clone()),
    };
    DsnRecipient {
        final_recipient: state.recipient.address.clone(),
        orcpt: state.recipient.orcpt.clone(),
        action,
        status: result.status,
        remote_mta: result.remote.as_ref().map(|r| r.name.clone()),
        diagnostic: Some(diagnostic),
        last_attempt: now,
        explanation: explanation.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_schedule_repeats_its_last_interval_and_ends_at_the_lifetime() {
        let queue = QueueConfig {
            retry: vec![Duration::from_secs(60), Duration::from_secs(300)],
            lifetime: Duration::from_secs(3600),
        };
        let created = 1_000_000;
        assert_eq!(next_attempt(&queue, created, 1, created), created + 60);
        assert_eq!(next_attempt(&queue, created, 2, created + 60), created + 360);
        assert_eq!(
            next_attempt(&queue, created, 3, created + 360),
            created + 660,
            "the last interval repeats"
        );
        assert_eq!(next_attempt(&queue, created, 9, created + 3500), created + 3600, "not past the lifetime");
        assert_eq!(next_attempt(&queue, created, 10, created + 3600), created + 3601, "always in the future");
        assert_eq!(next_attempt(&queue, created, 0, created), created + 60);
    }
}
