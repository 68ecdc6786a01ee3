//! [`Durable`]: the handle a store change returns, resolved once its row
//! is fsynced (or committed to the lease database); the engine sends an
//! ACK only after it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use crate::leases::error::{LeaseError, Result};

/// Resolves once a change is on disk (fsynced), or with the error that
/// prevented it. Await it (`store.upsert(l).await?`) or call
/// [`Durable::wait_blocking`] outside async code.
#[must_use = "a change is only durable once its Durable resolves: do not ACK before"]
#[derive(Debug)]
pub struct Durable<T = ()> {
    value: Option<T>,
    wait: Wait,
}

#[derive(Debug)]
enum Wait {
    Done(Option<Result<()>>),
    Pending(oneshot::Receiver<Result<()>>),
}

impl<T> Durable<T> {
    pub(super) fn ready(value: T) -> Self {
        Durable { value: Some(value), wait: Wait::Done(Some(Ok(()))) }
    }

    pub(super) fn failed(error: LeaseError) -> Self {
        Durable { value: None, wait: Wait::Done(Some(Err(error))) }
    }

    pub(super) fn pending(value: T, rx: Option<oneshot::Receiver<Result<()>>>) -> Self {
        match rx {
            Some(rx) => Durable { value: Some(value), wait: Wait::Pending(rx) },
            None => Durable::ready(value),
        }
    }

    /// The change's result, readable before it is durable (for example the
    /// lease that [`LeaseStore::reclaim`] changed).
    pub fn peek(&self) -> Option<&T> {
        self.value.as_ref()
    }

    /// Waits without an async runtime. Must not be called from async code.
    pub fn wait_blocking(mut self) -> Result<T> {
        let result = match std::mem::replace(&mut self.wait, Wait::Done(None)) {
            Wait::Done(r) => r.unwrap_or(Err(LeaseError::WriterStopped)),
            Wait::Pending(rx) => rx.blocking_recv().unwrap_or(Err(LeaseError::WriterStopped)),
        };
        result.map(|()| self.value.take().expect("value present until completion"))
    }

    /// Async form of waiting; the same as awaiting the handle itself.
    pub async fn wait(self) -> Result<T>
    where
        T: Unpin,
    {
        self.await
    }
}

impl<T: Unpin> Future for Durable<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.get_mut();
        let result = match &mut this.wait {
            Wait::Done(r) => r.take().expect("Durable polled after completion"),
            Wait::Pending(rx) => match Pin::new(rx).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r.unwrap_or(Err(LeaseError::WriterStopped)),
            },
        };
        this.wait = Wait::Done(None);
        Poll::Ready(result.map(|()| this.value.take().expect("value present until completion")))
    }
}
