//! [`Dispatch::Pool`]: the oldest live instance with room takes the request, else a new one.

use super::*;

// ---------------------------------------------------------------------------------------
// Dispatch::Pool

type Reply = oneshot::Sender<wasmtime::Result<http::Response<WasiBody>>>;

pub(super) struct Job {
    pub(super) request: http::Request<WasiBody>,
    pub(super) reply: Reply,
}

/// A live instance the pool may give requests to.
pub(super) struct Slot {
    id: usize,
    jobs: mpsc::UnboundedSender<Job>,
    /// Requests given that have no answer yet.
    open: usize,
    /// Requests given in all.
    total: usize,
}

pub(super) struct Pool {
    pub(super) inner: Arc<Inner>,
    pub(super) slots: Mutex<Vec<Slot>>,
}

impl Pool {
    fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Gives `job` to the oldest live instance with room, else to a new one.
    pub(super) fn dispatch(self: &Arc<Self>, mut job: Job) {
        let (max_concurrent, max_requests) = (
            self.inner.options.max_concurrent.max(1),
            self.inner.options.max_requests.max(1),
        );
        let mut slots = self.slots();
        while let Some(at) = slots
            .iter()
            .position(|s| s.open < max_concurrent && s.total < max_requests)
        {
            let Some(slot) = slots.get_mut(at) else {
                break;
            };
            match slot.jobs.send(job) {
                Ok(()) => {
                    slot.open += 1;
                    slot.total += 1;
                    if slot.total >= max_requests {
                        // Its last request: the instance finishes what it has, then exits.
                        slots.remove(at);
                    }
                    return;
                }
                Err(mpsc::error::SendError(back)) => {
                    // The instance is gone (a trap): forget it, try the next.
                    job = back;
                    slots.remove(at);
                }
            }
        }
        let (jobs, queue) = mpsc::unbounded_channel();
        let (id, store) = self.inner.new_store();
        if let Err(mpsc::error::SendError(job)) = jobs.send(job) {
            let _ = job.reply.send(Err(wasmtime::format_err!("no instance")));
            return;
        }
        if max_requests > 1 {
            slots.push(Slot {
                id,
                jobs,
                open: 1,
                total: 1,
            });
        }
        drop(slots);
        tokio::spawn(self.clone().run(id, store, queue));
    }

    fn answered(&self, id: usize) {
        if let Some(slot) = self.slots().iter_mut().find(|s| s.id == id) {
            slot.open = slot.open.saturating_sub(1);
        }
        self.inner.request_answered(id);
    }

    fn forget(&self, id: usize) {
        self.slots().retain(|s| s.id != id);
    }

    /// One instance's life: takes its requests until the pool forgets it, then finishes
    /// every task it has (bodies still streaming, work after answering) and exits.
    async fn run(
        self: Arc<Self>,
        id: usize,
        mut store: Store<P3State>,
        mut queue: mpsc::UnboundedReceiver<Job>,
    ) {
        let service = match self.inner.service.pre.instantiate_async(&mut store).await {
            Ok(service) => Arc::new(service),
            Err(e) => {
                self.forget(id);
                let why = format!("instantiating: {e:?}");
                while let Ok(job) = queue.try_recv() {
                    self.inner.request_started(id);
                    self.answered(id);
                    let _ = job.reply.send(Err(wasmtime::format_err!("{why}")));
                }
                self.inner.retired(id, Err(wasmtime::format_err!("{why}")));
                return;
            }
        };
        let pool = self.clone();
        let result = store
            .run_concurrent(async move |accessor| {
                let mut calls = Vec::new();
                while let Some(job) = queue.recv().await {
                    pool.inner.request_started(id);
                    calls.push(accessor.spawn(Call {
                        pool: pool.clone(),
                        id,
                        service: service.clone(),
                        job,
                    })?);
                }
                // No more requests will come: wait for every call to be answered (a call that
                // has not entered the guest yet is no guest task), then for every guest task
                // to exit (bodies still streaming, work after answering).
                for call in calls {
                    call.await;
                }
                std::future::poll_fn(|cx| accessor.poll_no_interesting_tasks(cx)).await;
                wasmtime::Result::<()>::Ok(())
            })
            .await
            .and_then(|r| r);
        self.forget(id);
        self.inner.retired(id, result);
    }
}

/// One request in an instance's event loop.
struct Call {
    pool: Arc<Pool>,
    id: usize,
    service: Arc<Service>,
    job: Job,
}

impl AccessorTask<P3State> for Call {
    async fn run(self, accessor: &Accessor<P3State>) -> wasmtime::Result<()> {
        let Call {
            pool,
            id,
            service,
            job: Job { request, reply },
        } = self;
        // The hooks only filter the forbidden headers out of the incoming request: the
        // default filter, as the instance's own hooks have it unless a test's replace them.
        let (request, io) = wasmtime_wasi_http::p3::Request::from_http(
            wasmtime_wasi_http::default_hooks(),
            request,
        );
        let answer = match service.handle(accessor, request).await {
            Ok(Ok(response)) => accessor.with(|mut store| response.into_http(&mut store, io)),
            Ok(Err(code)) => Err(wasmtime::format_err!("the component answered {code:?}")),
            Err(trap) => {
                pool.answered(id);
                let _ = reply.send(Err(wasmtime::format_err!("the instance failed: {trap:?}")));
                return Err(trap);
            }
        };
        pool.answered(id);
        let _ = reply.send(answer);
        Ok(())
    }
}
