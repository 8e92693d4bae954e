//! Tasks to wake on an event, each registered once for its lifetime.
//!
//! Sessions wait on rare events (shutdown, a server demoted) around every statement. A
//! `tokio::sync::Notify` future joins and leaves the waiter list under a mutex per wait, and
//! locks it again on every poll; here a session joins once, and a wait is a lock-free waker
//! registration ([`WakerSlot::register`]) followed by a check of the event's own state.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

use atomic_waker::AtomicWaker;

/// The slots of the tasks that wait on one kind of event.
#[derive(Default)]
pub struct WakerSet {
    next_id: AtomicU64,
    slots: Mutex<HashMap<u64, Arc<AtomicWaker>>>,
}

impl WakerSet {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A slot woken by every [`WakerSet::wake_all`] until it is dropped.
    pub fn join(self: &Arc<Self>) -> WakerSlot {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let waker = Arc::new(AtomicWaker::new());
        if let Ok(mut slots) = self.slots.lock() {
            slots.insert(id, waker.clone());
        }
        WakerSlot {
            set: self.clone(),
            id,
            waker,
        }
    }

    /// Wakes every registered task. Call it after changing the state the tasks check.
    pub fn wake_all(&self) {
        let wakers: Vec<_> = match self.slots.lock() {
            Ok(slots) => slots.values().cloned().collect(),
            Err(_) => return,
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Slots that have joined and not yet been dropped.
    pub fn len(&self) -> usize {
        self.slots.lock().map_or(0, |s| s.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One task's membership of a [`WakerSet`]; leaves it when dropped.
pub struct WakerSlot {
    set: Arc<WakerSet>,
    id: u64,
    waker: Arc<AtomicWaker>,
}

impl WakerSlot {
    /// Wake `waker` at the next event. Register first, then check the event's state: a
    /// `wake_all` after the state changed then either finds this waker or happened before the
    /// registration, whose check sees the change.
    pub fn register(&self, waker: &Waker) {
        self.waker.register(waker);
    }
}

impl Drop for WakerSlot {
    fn drop(&mut self) {
        if let Ok(mut slots) = self.set.slots.lock() {
            slots.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::task::Poll;
    use std::time::Duration;

    #[tokio::test]
    async fn wake_all_reaches_a_waiting_task_and_dropped_slots_leave() {
        let set = WakerSet::new();
        let flag = Arc::new(AtomicBool::new(false));
        let waiting = tokio::spawn({
            let (set, flag) = (set.clone(), flag.clone());
            async move {
                let slot = set.join();
                std::future::poll_fn(|cx| {
                    slot.register(cx.waker());
                    if flag.load(Ordering::SeqCst) {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                })
                .await;
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        assert_eq!(set.len(), 1);
        flag.store(true, Ordering::SeqCst);
        set.wake_all();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .unwrap();
        assert!(set.is_empty(), "the finished task's slot left the set");
    }
}
