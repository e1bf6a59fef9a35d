//! Whether a request went out on a connection opened for it, so that the resend-once rule for a
//! kept-alive connection the server closed under a request applies only to reused connections.
//!
//! reqwest does not say which connection a failed request used. Its pool (hyper-util's legacy
//! client) races an idle-connection checkout against a new connect, polled inside the request's
//! own task: when the connect wins, the request uses that new connection; when the checkout
//! wins, an unfinished connect goes on in a background task. So a connector layer that marks a
//! task-local flag when a connect completes *inside the request's task* says "this request got
//! a new connection"; a connect finished in the background has no flag to set. (In one narrow
//! window, an idle connection arriving while a new one completes its handshake, a reused
//! connection is taken for new: the request then fails instead of being resent, never the
//! other way round.) `closed_before_response` says whether a failure was such a close.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

tokio::task_local! {
    static FRESH: Cell<bool>;
}

/// Runs a send, and says whether it opened a new connection for itself.
pub(super) async fn watch<F: Future>(send: F) -> (F::Output, bool) {
    FRESH
        .scope(Cell::new(false), async move {
            let out = send.await;
            (out, FRESH.with(Cell::get))
        })
        .await
}

/// The connector layer that marks `FRESH` when a connect completes in the watched task.
#[derive(Clone, Copy, Debug)]
pub(super) struct MarkFresh;

impl<S> tower_layer::Layer<S> for MarkFresh {
    type Service = MarkFreshService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MarkFreshService(inner)
    }
}

#[derive(Clone, Debug)]
pub(super) struct MarkFreshService<S>(S);

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, R> tower_service::Service<R> for MarkFreshService<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let connect = self.0.call(req);
        Box::pin(async move {
            let conn = connect.await;
            if conn.is_ok() {
                // Absent in a background task: that connection goes to the pool, not to us.
                let _ = FRESH.try_with(|f| f.set(true));
            }
            conn
        })
    }
}

/// The connection closed before any response byte arrived (hyper's "incomplete message"): what
/// a server does when it drops an idle keep-alive connection as a request is written to it.
pub(super) fn closed_before_response(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return h.is_incomplete_message();
        }
        source = s.source();
    }
    false
}
