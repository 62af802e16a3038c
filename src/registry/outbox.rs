//! A connection's bounded outbound queue: frames wait here until the session writes them.
//! Publishers only ever push and never wait; a socket whose queue overflows is closed (slow-consumer policy).

use std::{
    collections::VecDeque,
    future::poll_fn,
    sync::Mutex,
    task::{Poll, Waker},
};

use bytestring::ByteString;

use crate::protocol::SocketError;

/// What a push did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// The queue was over its byte limit: it was emptied and the socket is to close as a slow consumer.
    Overflowed,
    /// The socket is already closing; the frame was dropped.
    Closing,
}

/// The bounded queue of one connection. Frames are shared bytes, so queueing one costs a reference count.
/// The session's waker sits under the same lock as the frames, and is woken only when the queue goes
/// from empty to not empty: a fan-out to a socket that already has frames waiting costs no wake-up.
pub struct Outbox {
    state: Mutex<Queue>,
    limit_bytes: usize,
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<ByteString>,
    bytes: usize,
    close: Option<SocketError>,
    /// The session waiting for frames or a close.
    waker: Option<Waker>,
}

/// Everything waiting for the session, taken in one go.
#[derive(Default)]
pub struct Batch {
    pub frames: VecDeque<ByteString>,
    /// Set once the socket must close, after `frames` are written.
    pub close: Option<SocketError>,
}

impl Outbox {
    /// An empty queue that holds at most `limit_bytes` of frames.
    pub fn new(limit_bytes: usize) -> Outbox {
        Outbox {
            state: Mutex::new(Queue::default()),
            limit_bytes,
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding this lock leaves only a queue of frames behind; keep using it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a frame without waiting. Over the limit, the queue is dropped and the socket marked to close.
    pub fn push(&self, frame: ByteString) -> Pushed {
        let mut queue = self.queue();
        if queue.close.is_some() {
            return Pushed::Closing;
        }
        if queue.bytes + frame.len() > self.limit_bytes {
            queue.frames.clear();
            queue.bytes = 0;
            queue.close = Some(SocketError::SlowConsumer);
            let waker = queue.waker.take();
            drop(queue);
            if let Some(waker) = waker {
                waker.wake();
            }
            return Pushed::Overflowed;
        }
        queue.bytes += frame.len();
        queue.frames.push_back(frame);
        let waker = if queue.frames.len() == 1 {
            queue.waker.take()
        } else {
            None
        };
        drop(queue);
        if let Some(waker) = waker {
            waker.wake();
        }
        Pushed::Queued
    }

    /// Asks the session to close with `reason` after the frames already queued. The first reason wins.
    pub fn close(&self, reason: SocketError) {
        let mut queue = self.queue();
        if queue.close.is_none() {
            queue.close = Some(reason);
        }
        let waker = queue.waker.take();
        drop(queue);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Takes everything queued so far.
    pub fn take(&self) -> Batch {
        let mut queue = self.queue();
        queue.bytes = 0;
        Batch {
            frames: std::mem::take(&mut queue.frames),
            close: queue.close.clone(),
        }
    }

    /// Resolves once frames are queued or a close was requested.
    pub async fn ready(&self) {
        self.wait(|queue| !queue.frames.is_empty() || queue.close.is_some())
            .await;
    }

    /// Resolves once a close has been requested.
    pub async fn closing(&self) {
        self.wait(|queue| queue.close.is_some()).await;
    }

    async fn wait(&self, done: impl Fn(&Queue) -> bool) {
        poll_fn(|cx| {
            let mut queue = self.queue();
            if done(&queue) {
                return Poll::Ready(());
            }
            match &queue.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => queue.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_queue_until_the_byte_limit_then_overflow() {
        let outbox = Outbox::new(10);
        assert_eq!(outbox.push("12345".into()), Pushed::Queued);
        assert_eq!(outbox.push("12345".into()), Pushed::Queued);
        assert_eq!(outbox.push("1".into()), Pushed::Overflowed);
        assert_eq!(outbox.push("1".into()), Pushed::Closing);
        let batch = outbox.take();
        assert!(batch.frames.is_empty());
        assert_eq!(batch.close, Some(SocketError::SlowConsumer));
    }

    #[test]
    fn taking_frees_room() {
        let outbox = Outbox::new(10);
        assert_eq!(outbox.push("1234567890".into()), Pushed::Queued);
        assert_eq!(outbox.take().frames.len(), 1);
        assert_eq!(outbox.push("1234567890".into()), Pushed::Queued);
    }

    #[test]
    fn close_keeps_earlier_frames_and_the_first_reason() {
        let outbox = Outbox::new(10);
        outbox.push("a".into());
        outbox.close(SocketError::TerminatedByApp);
        outbox.close(SocketError::ShuttingDown);
        assert_eq!(outbox.push("b".into()), Pushed::Closing);
        let batch = outbox.take();
        assert_eq!(batch.frames, ["a"]);
        assert_eq!(batch.close, Some(SocketError::TerminatedByApp));
    }

    #[tokio::test]
    async fn ready_resolves_after_a_push() {
        let outbox = Outbox::new(10);
        outbox.push("a".into());
        outbox.ready().await;
        assert_eq!(outbox.take().frames.len(), 1);
    }
}
