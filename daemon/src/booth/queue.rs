//! The render queue as data: the sessions waiting for their clip in order, the one rendering now
//! with its cancel flag, and the latest render times for estimates. One lock per part; the render
//! worker sleeps on the queue's condition variable until work, a change of the thermal state or
//! shutdown wakes it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// Render times kept for the estimate.
const TIMES_KEPT: usize = 10;

/// A lock was poisoned by a panic on another thread: the queue's contents are lost to it.
#[derive(Debug, thiserror::Error)]
#[error("the render queue's lock is poisoned")]
pub struct Poisoned;

impl<T> From<PoisonError<T>> for Poisoned {
    fn from(_: PoisonError<T>) -> Self {
        Poisoned
    }
}

#[derive(Default)]
pub struct RenderQueue {
    waiting: Mutex<VecDeque<String>>,
    wake: Condvar,
    current: Mutex<Option<(String, Arc<AtomicBool>)>>,
    times: Mutex<VecDeque<f64>>,
}

/// Why [`RenderQueue::push_within`] did not queue a session.
#[derive(Debug)]
pub enum Refused<E> {
    /// `limit` sessions wait already.
    Full,
    /// The admission step refused it.
    Admit(E),
    Poisoned,
}

impl RenderQueue {
    /// Queues `id` at the back when fewer than `limit` wait and `admit` agrees. `admit` runs under
    /// the queue's lock, so two couples cannot both take the last place, and a session it refuses
    /// is never queued. Wakes the worker.
    pub fn push_within<E>(
        &self,
        id: &str,
        limit: usize,
        admit: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), Refused<E>> {
        let mut q = self.waiting.lock().map_err(|_| Refused::Poisoned)?;
        if q.len() >= limit {
            return Err(Refused::Full);
        }
        admit().map_err(Refused::Admit)?;
        q.push_back(id.to_string());
        self.wake.notify_one();
        Ok(())
    }

    /// Queues `id` at the back whatever the limit (jobs recovered after a restart).
    pub fn push(&self, id: &str) -> Result<(), Poisoned> {
        self.waiting.lock()?.push_back(id.to_string());
        self.wake.notify_one();
        Ok(())
    }

    /// Takes `id` out of the queue; true when it was waiting.
    pub fn remove(&self, id: &str) -> Result<bool, Poisoned> {
        let mut q = self.waiting.lock()?;
        let before = q.len();
        q.retain(|x| x != id);
        Ok(q.len() != before)
    }

    /// Empties the queue and asks the render in progress to stop (end of event).
    pub fn clear_and_cancel(&self) -> Result<(), Poisoned> {
        self.waiting.lock()?.clear();
        if let Some((_, flag)) = self.current.lock()?.as_ref() {
            flag.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The sessions waiting, first in line first.
    pub fn waiting(&self) -> Vec<String> {
        self.waiting
            .lock()
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.waiting.lock().map(|q| q.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many wait ahead of `id` (0: next), or `None` when it is not waiting.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.waiting
            .lock()
            .ok()
            .and_then(|q| q.iter().position(|x| x == id))
    }

    /// Wakes the worker to look again (the thermal state changed, or shutdown). Under the
    /// queue's lock, so a worker between its check and its wait cannot miss it.
    pub fn wake(&self) {
        let _q = self.waiting.lock();
        self.wake.notify_all();
    }

    /// Blocks until a session may start and takes it from the front, or returns `None` once
    /// `stop()` holds. While `hold()` holds (the booth is too hot) sessions stay queued. Both are
    /// checked on every wake: a caller that changes them calls [`RenderQueue::wake`].
    pub fn next(&self, stop: impl Fn() -> bool, hold: impl Fn() -> bool) -> Option<String> {
        let mut q = self.waiting.lock().ok()?;
        loop {
            if stop() {
                return None;
            }
            if !hold()
                && let Some(id) = q.pop_front()
            {
                return Some(id);
            }
            q = self.wake.wait(q).ok()?;
        }
    }

    /// Marks `id` as rendering; the returned flag turns true when it is cancelled.
    pub fn start(&self, id: &str) -> Result<Arc<AtomicBool>, Poisoned> {
        let cancel = Arc::new(AtomicBool::new(false));
        *self.current.lock()? = Some((id.to_string(), cancel.clone()));
        Ok(cancel)
    }

    /// Nothing renders now.
    pub fn finish(&self) {
        if let Ok(mut c) = self.current.lock() {
            *c = None;
        }
    }

    /// The session rendering now.
    pub fn current(&self) -> Option<String> {
        self.current
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|(id, _)| id.clone()))
    }

    /// Asks the render of `id` to stop when it is the one in progress; true when it was.
    pub fn cancel_current(&self, id: &str) -> Result<bool, Poisoned> {
        Ok(match self.current.lock()?.as_ref() {
            Some((cur, flag)) if cur == id => {
                flag.store(true, Ordering::Relaxed);
                true
            }
            _ => false,
        })
    }

    /// Records how long a finished render took.
    pub fn record(&self, seconds: f64) {
        if let Ok(mut t) = self.times.lock() {
            t.push_back(seconds);
            while t.len() > TIMES_KEPT {
                t.pop_front();
            }
        }
    }

    /// The latest render times in seconds, oldest first.
    pub fn times(&self) -> Vec<f64> {
        self.times
            .lock()
            .map(|t| t.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The mean of the latest render times, when there are any.
    pub fn mean_time(&self) -> Option<f64> {
        let t = self.times();
        (!t.is_empty()).then(|| t.iter().sum::<f64>() / t.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_full_queue_refuses_and_an_admission_failure_queues_nothing() {
        let q = RenderQueue::default();
        assert!(matches!(q.push_within("a", 2, || Ok::<_, ()>(())), Ok(())));
        assert!(matches!(
            q.push_within("b", 2, || Err("no job")),
            Err(Refused::Admit("no job"))
        ));
        assert!(matches!(q.push_within("b", 2, || Ok::<_, ()>(())), Ok(())));
        let mut admitted = false;
        let full = q.push_within("c", 2, || {
            admitted = true;
            Ok::<_, ()>(())
        });
        assert!(matches!(full, Err(Refused::Full)));
        assert!(!admitted, "a full queue ran the admission step");
        assert_eq!(q.waiting(), ["a", "b"]);
        assert_eq!(q.position("b"), Some(1));
        assert_eq!(q.position("c"), None);
        assert!(q.remove("a").unwrap());
        assert!(!q.remove("a").unwrap());
        assert_eq!(q.position("b"), Some(0));
    }

    #[test]
    fn the_worker_waits_while_held_and_starts_when_woken() {
        let q = Arc::new(RenderQueue::default());
        let hot = Arc::new(AtomicBool::new(true));
        q.push("a").unwrap();
        let (q2, hot2) = (q.clone(), hot.clone());
        let worker = std::thread::spawn(move || q2.next(|| false, || hot2.load(Ordering::Relaxed)));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!worker.is_finished(), "a held queue gave out work");
        assert_eq!(q.len(), 1);
        hot.store(false, Ordering::Relaxed);
        q.wake();
        assert_eq!(worker.join().unwrap().as_deref(), Some("a"));
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn a_stopped_queue_returns_nothing_and_only_the_current_render_is_cancelled() {
        let q = Arc::new(RenderQueue::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (q2, stop2) = (q.clone(), stop.clone());
        let worker =
            std::thread::spawn(move || q2.next(|| stop2.load(Ordering::Relaxed), || false));
        stop.store(true, Ordering::Relaxed);
        q.wake();
        assert_eq!(worker.join().unwrap(), None);

        let flag = q.start("a").unwrap();
        assert_eq!(q.current().as_deref(), Some("a"));
        assert!(!q.cancel_current("b").unwrap());
        assert!(!flag.load(Ordering::Relaxed));
        assert!(q.cancel_current("a").unwrap());
        assert!(flag.load(Ordering::Relaxed));
        q.finish();
        assert_eq!(q.current(), None);
    }

    #[test]
    fn the_estimate_uses_the_last_ten_render_times() {
        let q = RenderQueue::default();
        assert_eq!(q.mean_time(), None);
        for s in 1..=12 {
            q.record(f64::from(s));
        }
        assert_eq!(q.times(), (3..=12).map(f64::from).collect::<Vec<_>>());
        assert_eq!(q.mean_time(), Some(7.5));
    }
}
