//! Anonymous requests are counted, not logged one by one.
//!
//! A request without a valid session (401 `unauthenticated`), a login refused by the throttle
//! (429) and a device request that authenticates nobody (its signature does not verify, no device
//! holds its key, its enrollment token is not valid: 401) come from callers nobody has
//! authenticated: logging each as its own leaf let one client
//! grow the durable, never-shrinking Merkle log at its own request rate. Instead each process
//! counts them per window ([`WINDOW`]), per kind (action and reason) and per client network
//! ([`ClientNetwork`]: IPv4 /24, IPv6 /64), and writes one event per kind and network when the
//! window closes, carrying the count ([`AuditTarget::AnonymousRequests`]). At most
//! [`MAX_NETWORKS`] networks are kept apart in a window; requests from further ones are counted
//! together under [`ClientNetwork::Other`], so memory and events per window are bounded whatever
//! the client sends. Every decision about an authenticated caller stays its own leaf.
//!
//! Windows close on a timer and at graceful shutdown ([`AnonymousTally::flush`]). Several Command
//! processes on one database each count their own requests and write their own events: an
//! auditor adds the counts of one window's events up. A process killed without a graceful
//! shutdown loses the counts of its open window (at most [`WINDOW`] of them).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use enigm_types::{
    Actor, AuditAction, AuditEvent, AuditTarget, ClientNetwork, Clock, Outcome, ReasonCategory,
    Timestamp,
};

use crate::audit::AuditSink;

/// How long one window counts before its events are written.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Distinct (kind, network) buckets one window keeps apart; the rest share one bucket per kind.
pub const MAX_NETWORKS: usize = 1024;

/// Closed windows' events kept while the database cannot take them, beyond which the oldest are
/// dropped (and said so in the log): a database outage must not grow memory without bound.
const MAX_PENDING: usize = 4 * MAX_NETWORKS;

/// What one counted event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Bucket {
    action: AuditAction,
    reason: ReasonCategory,
    network: ClientNetwork,
}

/// The counts of one window: pure bookkeeping over an explicit time, no I/O.
#[derive(Debug)]
pub struct Tally {
    window: Duration,
    max_networks: usize,
    opened: Option<Timestamp>,
    /// Per bucket: when it was first counted in this window (an ordinal), and how often.
    counts: HashMap<Bucket, (usize, u64)>,
}

impl Tally {
    pub fn new(window: Duration, max_networks: usize) -> Self {
        Tally {
            window,
            max_networks,
            opened: None,
            counts: HashMap::new(),
        }
    }

    /// Counts one refused anonymous request at `now`. When the open window has run out, it is
    /// closed first and its events are returned.
    pub fn count(
        &mut self,
        now: Timestamp,
        action: AuditAction,
        reason: ReasonCategory,
        client: Option<IpAddr>,
    ) -> Vec<AuditEvent> {
        let closed = self.close_if_due(now);
        self.opened.get_or_insert(now);
        let mut bucket = Bucket {
            action,
            reason,
            network: ClientNetwork::of(client),
        };
        if !self.counts.contains_key(&bucket) && self.counts.len() >= self.max_networks {
            bucket.network = ClientNetwork::Other;
        }
        let first_seen = self.counts.len();
        let (_, count) = self.counts.entry(bucket).or_insert((first_seen, 0));
        *count = count.saturating_add(1);
        closed
    }

    /// Closes the open window if it has run out at `now`, returning its events.
    pub fn close_if_due(&mut self, now: Timestamp) -> Vec<AuditEvent> {
        let window = i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX);
        match self.opened {
            Some(opened) if now.unix_millis().saturating_sub(opened.unix_millis()) >= window => {
                self.close(now)
            }
            _ => Vec::new(),
        }
    }

    /// Closes the open window now, whatever its age, returning its events (one per bucket).
    pub fn close(&mut self, now: Timestamp) -> Vec<AuditEvent> {
        let Some(since) = self.opened.take() else {
            return Vec::new();
        };
        let mut buckets: Vec<(Bucket, (usize, u64))> = self.counts.drain().collect();
        // In the order the buckets were first counted: a window's events read alike in every
        // log, and as they began.
        buckets.sort_by_key(|(_, (first_seen, _))| *first_seen);
        buckets
            .into_iter()
            .map(|(bucket, (_, count))| {
                AuditEvent::new(
                    now,
                    Actor::Anonymous,
                    bucket.action,
                    AuditTarget::AnonymousRequests {
                        network: bucket.network,
                        count,
                        since,
                    },
                    Outcome::Denied,
                )
                .with_reason(bucket.reason)
            })
            .collect()
    }
}

/// The process's tally, written through the audit sink.
pub struct AnonymousTally {
    tally: Mutex<Tally>,
    pending: Mutex<Vec<AuditEvent>>,
    sink: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
}

impl AnonymousTally {
    pub fn new(sink: Arc<dyn AuditSink>, clock: Arc<dyn Clock>) -> Self {
        AnonymousTally {
            tally: Mutex::new(Tally::new(WINDOW, MAX_NETWORKS)),
            pending: Mutex::new(Vec::new()),
            sink,
            clock,
        }
    }

    /// Counts one refused anonymous request. Never waits for the database: a closed window's
    /// events are written by [`AnonymousTally::run`] or [`AnonymousTally::flush`].
    pub fn count(&self, action: AuditAction, reason: ReasonCategory, client: Option<IpAddr>) {
        let now = self.clock.now();
        let closed = match self.tally.lock() {
            Ok(mut tally) => tally.count(now, action, reason, client),
            // Another thread panicked while counting; the counts are plain numbers and stay
            // usable.
            Err(poisoned) => poisoned.into_inner().count(now, action, reason, client),
        };
        self.keep(closed);
    }

    /// Writes the events of every closed window, and of the open one too when `close_open`
    /// (graceful shutdown). Events the sink refuses are kept for the next try.
    pub async fn flush(&self, close_open: bool) {
        let now = self.clock.now();
        let closed = {
            let mut tally = match self.tally.lock() {
                Ok(tally) => tally,
                Err(poisoned) => poisoned.into_inner(),
            };
            if close_open {
                tally.close(now)
            } else {
                tally.close_if_due(now)
            }
        };
        self.keep(closed);
        let events = std::mem::take(&mut *self.pending_lock());
        if events.is_empty() {
            return;
        }
        if let Err(error) = self.sink.record(&events).await {
            tracing::error!(
                error = %error,
                events = events.len(),
                "counted anonymous requests not recorded yet; retrying"
            );
            let mut pending = self.pending_lock();
            let later = std::mem::replace(&mut *pending, events);
            pending.extend(later);
            Self::bound(&mut pending);
        }
    }

    /// Closes windows as they run out, until the runtime stops.
    pub async fn run(self: Arc<Self>) {
        // Often enough that a window is written soon after it closes; the check is a lock and a
        // comparison.
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.flush(false).await;
        }
    }

    fn keep(&self, closed: Vec<AuditEvent>) {
        if closed.is_empty() {
            return;
        }
        let mut pending = self.pending_lock();
        pending.extend(closed);
        Self::bound(&mut pending);
    }

    fn bound(pending: &mut Vec<AuditEvent>) {
        if pending.len() > MAX_PENDING {
            let dropped = pending.len() - MAX_PENDING;
            pending.drain(..dropped);
            tracing::error!(
                dropped,
                "counted anonymous requests dropped: the database has not taken them"
            );
        }
    }

    fn pending_lock(&self) -> std::sync::MutexGuard<'_, Vec<AuditEvent>> {
        match self.pending.lock() {
            Ok(pending) => pending,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests"
)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_795_305_600_000 + seconds * 1000)
    }

    fn counts(events: &[AuditEvent]) -> Vec<(String, u64)> {
        events
            .iter()
            .map(|event| match event.target {
                AuditTarget::AnonymousRequests { network, count, .. } => {
                    (network.to_string(), count)
                }
                _ => panic!("not a counted event: {event:?}"),
            })
            .collect()
    }

    #[test]
    fn requests_are_counted_per_network_and_window() {
        let mut tally = Tally::new(WINDOW, 8);
        let session = (AuditAction::AuthSession, ReasonCategory::Unauthenticated);
        for host in 0..200u8 {
            let ip = IpAddr::from([203, 0, 113, host]);
            assert!(
                tally
                    .count(at(1), session.0, session.1, Some(ip))
                    .is_empty()
            );
        }
        tally.count(
            at(2),
            session.0,
            session.1,
            Some("2001:db8:1:2:3::9".parse().unwrap()),
        );
        tally.count(
            at(3),
            session.0,
            session.1,
            Some("2001:db8:1:2:ffff::1".parse().unwrap()),
        );
        tally.count(
            at(3),
            session.0,
            session.1,
            Some("::ffff:198.51.100.7".parse().unwrap()),
        );
        tally.count(at(4), session.0, session.1, None);
        tally.count(
            at(5),
            AuditAction::AuthLogin,
            ReasonCategory::Throttled,
            Some(IpAddr::from([203, 0, 113, 1])),
        );
        assert!(tally.close_if_due(at(59)).is_empty());
        // The next request after the window closes it.
        let closed = tally.count(at(61), session.0, session.1, None);
        let mut got = counts(&closed);
        got.sort();
        assert_eq!(
            got,
            vec![
                ("198.51.100.0/24".to_owned(), 1),
                ("2001:db8:1:2::/64".to_owned(), 2),
                ("203.0.113.0/24".to_owned(), 1),
                ("203.0.113.0/24".to_owned(), 200),
                ("unknown".to_owned(), 1),
            ]
        );
        for event in &closed {
            assert_eq!(event.actor, Actor::Anonymous);
            assert_eq!(event.outcome, Outcome::Denied);
            assert_eq!(event.time, at(61));
            assert!(matches!(
                event.target,
                AuditTarget::AnonymousRequests { since, .. } if since == at(1)
            ));
        }
        let throttled: Vec<_> = closed
            .iter()
            .filter(|event| event.reason == Some(ReasonCategory::Throttled))
            .collect();
        assert_eq!(throttled.len(), 1);
        assert_eq!(throttled[0].action, AuditAction::AuthLogin);
        // The request that closed the window opened the next one.
        assert_eq!(
            counts(&tally.close(at(62))),
            vec![("unknown".to_owned(), 1)]
        );
        assert!(tally.close(at(63)).is_empty());
    }

    #[test]
    fn networks_past_the_bound_are_counted_together() {
        let mut tally = Tally::new(WINDOW, 4);
        let mut total = 0u64;
        for net in 0..100u8 {
            for host in 0..3u8 {
                tally.count(
                    at(1),
                    AuditAction::AuthSession,
                    ReasonCategory::Unauthenticated,
                    Some(IpAddr::from([10, net, 0, host])),
                );
                total += 1;
            }
        }
        let events = tally.close(at(2));
        assert_eq!(events.len(), 5, "four networks and the rest");
        let got = counts(&events);
        assert_eq!(got.iter().map(|(_, count)| count).sum::<u64>(), total);
        assert_eq!(
            got.iter()
                .find(|(network, _)| network == "other")
                .map(|(_, count)| *count),
            Some(total - 4 * 3)
        );
    }
}
