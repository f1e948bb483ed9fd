//! [`Dispatch::WasmtimeServe`]: wasmtime-wasi-http's own `handler::ProxyHandler`, as
//! `wasmtime serve` runs it.

use super::*;

// ---------------------------------------------------------------------------------------
// Dispatch::WasmtimeServe

#[derive(Clone)]
pub(super) struct ServeState(pub(super) Arc<Inner>);

/// Instances never expire on time: no test waits on a clock.
pub(super) struct NeverExpires;

impl handler::WorkerExpiration for NeverExpires {
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>, _: WorkerStatus, _: Instant) -> Poll<()> {
        Poll::Pending
    }
}

pub(super) struct ServeWorker {
    inner: Arc<Inner>,
    id: usize,
}

impl handler::WorkerState for ServeWorker {
    type StoreData = P3State;
    type RequestData = ();

    /// As `wasmtime serve`: never again after `max_requests`, not now at `max_concurrent`.
    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.inner.options.max_requests {
            ShouldAccept::Never
        } else if concurrent >= self.inner.options.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _: StoreContextMut<'_, P3State>,
        _: (),
        _: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        self.inner.request_started(self.id);
        // The handler drops this future when the request is answered.
        let answered = Answered {
            inner: self.inner.clone(),
            id: self.id,
        };
        Box::pin(async move {
            let _answered = answered;
            std::future::pending::<()>().await;
        })
    }

    fn drop(&self, _: Store<P3State>, result: wasmtime::Result<()>) {
        self.inner.retired(self.id, result);
    }
}

/// Counts its request as answered when dropped.
struct Answered {
    inner: Arc<Inner>,
    id: usize,
}

impl Drop for Answered {
    fn drop(&mut self) {
        self.inner.request_answered(self.id);
    }
}

impl handler::HandlerState for ServeState {
    type StoreData = P3State;
    type WorkerExpiration = NeverExpires;
    type WorkerState = ServeWorker;

    fn instantiate(
        &self,
    ) -> impl Future<
        Output = wasmtime::Result<handler::Instance<P3State, NeverExpires, ServeWorker>>,
    > + Send {
        let inner = self.0.clone();
        async move {
            let (id, instance) = inner.instantiate().await;
            let (store, service) = match instance {
                Ok(instance) => instance,
                Err(e) => {
                    inner.retired(id, Err(wasmtime::format_err!("instantiating: {e:?}")));
                    return Err(e);
                }
            };
            Ok(handler::Instance {
                store,
                proxy: handler::Proxy::P3(service),
                view: <P3State as WasiHttpView>::http,
                expiration: NeverExpires,
                state: ServeWorker { inner, id },
            })
        }
    }
}
