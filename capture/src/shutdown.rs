//! A small cancellation token for threads: [`Shutdown`].
//!
//! The daemon holds one for the whole process; every running part gets a
//! [`Shutdown::child`], so stopping one camera does not stop the rest while stopping the
//! process stops every camera.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

/// A cloneable "please stop" signal that threads can poll or sleep on.
///
/// Triggering wakes every [`Shutdown::wait_timeout`] at once, and triggers every child made
/// with [`Shutdown::child`]. Triggering a child does not trigger its parent.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    cond: Condvar,
}

#[derive(Default)]
struct State {
    triggered: bool,
    children: Vec<Weak<Inner>>,
    /// Run once when triggered, for waiters on other conditions.
    hooks: Vec<Box<dyn FnOnce() + Send>>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Shutdown {
    /// A signal that has not been triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks everything watching this signal (and its children) to stop. Idempotent.
    pub fn trigger(&self) {
        let (children, hooks) = {
            let mut state = self.inner.lock();
            if state.triggered {
                return;
            }
            state.triggered = true;
            (
                std::mem::take(&mut state.children),
                std::mem::take(&mut state.hooks),
            )
        };
        self.inner.cond.notify_all();
        for hook in hooks {
            hook();
        }
        for child in children.iter().filter_map(Weak::upgrade) {
            Shutdown { inner: child }.trigger();
        }
    }

    /// Whether [`Shutdown::trigger`] was called on this signal or one of its ancestors.
    pub fn is_triggered(&self) -> bool {
        self.inner.lock().triggered
    }

    /// Sleeps up to `timeout`, waking early when triggered. Returns whether it is triggered.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.inner.lock();
        while !state.triggered {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .inner
                .cond
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.triggered
    }

    /// Runs `hook` once when this signal is triggered (at once when it already is): for a
    /// thread that waits on a condition variable of its own, which the hook notifies.
    pub fn on_trigger(&self, hook: impl FnOnce() + Send + 'static) {
        let mut state = self.inner.lock();
        if state.triggered {
            drop(state);
            hook();
        } else {
            state.hooks.push(Box::new(hook));
        }
    }

    /// A new signal that is triggered with this one (or on its own).
    pub fn child(&self) -> Shutdown {
        let child = Shutdown::new();
        let mut state = self.inner.lock();
        if state.triggered {
            drop(state);
            child.trigger();
        } else {
            state.children.retain(|weak| weak.strong_count() > 0);
            state.children.push(Arc::downgrade(&child.inner));
        }
        child
    }
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_stops_with_its_parent_but_not_the_other_way() {
        let parent = Shutdown::new();
        let a = parent.child();
        let b = parent.child();
        a.trigger();
        assert!(a.is_triggered());
        assert!(!parent.is_triggered());
        assert!(!b.is_triggered());
        parent.trigger();
        assert!(b.is_triggered());
        assert!(parent.child().is_triggered());
    }

    #[test]
    fn hooks_run_once_when_triggered_or_at_once_after() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let parent = Shutdown::new();
        let child = parent.child();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        child.on_trigger(move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        parent.trigger();
        child.trigger();
        assert_eq!(runs.load(Ordering::SeqCst), 1, "once, through the parent");
        let r = runs.clone();
        child.on_trigger(move || {
            r.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(
            runs.load(Ordering::SeqCst),
            11,
            "at once when already triggered"
        );
    }

    #[test]
    fn trigger_wakes_a_sleeper_early() {
        let signal = Shutdown::new();
        let other = signal.clone();
        let started = Instant::now();
        let sleeper = std::thread::spawn(move || other.wait_timeout(Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(50));
        signal.trigger();
        assert!(sleeper.join().expect("sleeper thread"));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
