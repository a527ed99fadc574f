//! Recent events in a sliding window, by peer and in all: failed admin logins, wrong short
//! codes. Each limiter keeps its own rules; the forgetting is the same.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Each peer's recent events, oldest first.
pub type ByPeer = HashMap<IpAddr, VecDeque<Instant>>;

/// Forgets the events older than `window` (in `all` and each peer's), and the peers left with
/// none.
pub fn prune(by_peer: &mut ByPeer, all: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    let old = |q: &mut VecDeque<Instant>| {
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
    };
    old(all);
    by_peer.retain(|_, q| {
        old(q);
        !q.is_empty()
    });
}
