//! Items made on a thread of their own and handed to the training thread over a bounded channel, in order.

use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

use anyhow::{anyhow, Context, Result};

/// The receiving end: iterate to get the items in the order they were made. The producing thread stops after
/// the first error (handed over as the last item) or when this end is dropped.
pub struct Handover<T> {
    rx: Receiver<Result<T>>,
    handle: Option<JoinHandle<()>>,
    thread: &'static str,
}

impl<T: Send + 'static> Handover<T> {
    /// Starts a thread named `thread` that runs `items` and keeps up to `depth` of them ready.
    pub fn spawn<I>(thread: &'static str, depth: usize, items: I) -> Result<Self>
    where
        I: Iterator<Item = Result<T>> + Send + 'static,
    {
        let (tx, rx) = sync_channel(depth);
        let handle = std::thread::Builder::new()
            .name(thread.into())
            .spawn(move || {
                for item in items {
                    let failed = item.is_err();
                    if tx.send(item).is_err() || failed {
                        return;
                    }
                }
            })
            .with_context(|| format!("starting the {thread} thread"))?;
        Ok(Self {
            rx,
            handle: Some(handle),
            thread,
        })
    }
}

impl<T> Iterator for Handover<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.rx.recv() {
            Ok(item) => Some(item),
            Err(_) => {
                if let Some(h) = self.handle.take() {
                    if h.join().is_err() {
                        return Some(Err(anyhow!("the {} thread panicked", self.thread)));
                    }
                }
                None
            }
        }
    }
}
