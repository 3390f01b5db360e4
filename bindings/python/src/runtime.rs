//! The tokio runtime of this process: made on first use, and made anew
//! when the process id changes (a `fork()` after import, as gunicorn and
//! uvicorn workers do). A forked child has only the thread that forked, so
//! the parent's runtime is left alone there: never used, never dropped
//! (dropping it would wait for worker threads that do not exist).
//!
//! No lock is taken on the way: a lock held by another thread at the
//! instant of the fork stays held for ever in the child. `ArcSwapOption`
//! loads are lock-free. Work runs through the runtime's handle; the
//! runtime itself sits behind a mutex that only [`shut_down`] takes.
//!
//! At interpreter exit (`atexit`, registered by the package) the runtime
//! is shut down with the GIL released, so that no worker thread completes
//! a Python future while the interpreter finalizes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use pyo3_async_runtimes::TaskLocals;
use pyo3_async_runtimes::generic::{ContextExt, Runtime};

/// A runtime and the process it was made in.
pub(crate) struct ProcessRuntime {
    pid: u32,
    handle: tokio::runtime::Handle,
    /// Taken only by [`shut_down`].
    runtime: std::sync::Mutex<Option<tokio::runtime::Runtime>>,
}

impl ProcessRuntime {
    /// Runs `work` to completion on this runtime, from a thread that is not
    /// one of its workers (a Python thread, with the GIL released).
    pub(crate) fn block_on<F: Future>(&self, work: F) -> F::Output {
        self.handle.block_on(work)
    }

    /// The runtime's handle.
    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

static CURRENT: ArcSwapOption<ProcessRuntime> = ArcSwapOption::const_empty();
/// Set at interpreter exit: no runtime is made any more.
static SHUT_DOWN: AtomicBool = AtomicBool::new(false);

/// Shuts this process's runtime down, waiting up to `grace` for its tasks'
/// threads (call with the GIL released: a worker may be waiting for it to
/// complete a Python future). Later calls find no runtime.
pub(crate) fn shut_down(grace: Duration) {
    SHUT_DOWN.store(true, Ordering::SeqCst);
    let Some(current) = CURRENT.swap(None) else {
        return;
    };
    if current.pid != std::process::id() {
        // The parent's, in a forked child: its threads do not exist here.
        std::mem::forget(current);
        return;
    }
    let taken = match current.runtime.try_lock() {
        Ok(mut slot) => slot.take(),
        Err(_) => None,
    };
    if let Some(runtime) = taken {
        runtime.shutdown_timeout(grace);
    }
}

/// The runtime of this process, made now if this process has none yet.
pub(crate) fn runtime() -> std::io::Result<Arc<ProcessRuntime>> {
    if SHUT_DOWN.load(Ordering::SeqCst) {
        return Err(std::io::Error::other(
            "the interpreter is exiting and atom_protect's runtime was shut down",
        ));
    }
    let pid = std::process::id();
    let seen = CURRENT.load_full();
    if let Some(current) = &seen
        && current.pid == pid
    {
        return Ok(Arc::clone(current));
    }
    let built = tokio::runtime::Builder::new_multi_thread()
        // Two cores are the common case; the work is I/O and small Fernet
        // operations.
        .worker_threads(2)
        .thread_name("atom-protect")
        .enable_all()
        .build()?;
    let fresh = Arc::new(ProcessRuntime {
        pid,
        handle: built.handle().clone(),
        runtime: std::sync::Mutex::new(Some(built)),
    });
    let before = CURRENT.compare_and_swap(&seen, Some(Arc::clone(&fresh)));
    let swapped = match (&*before, &seen) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    };
    if swapped {
        // The parent's runtime, if any: its threads are gone in this
        // process. Kept alive for ever, so that it is never dropped here.
        if let Some(parent) = seen {
            std::mem::forget(parent);
        }
        return Ok(fresh);
    }
    // Another thread of this process made one first: use it. Ours has
    // live threads and is dropped normally.
    match &*before {
        Some(theirs) if theirs.pid == pid => Ok(Arc::clone(theirs)),
        _ => runtime(),
    }
}

/// pyo3-async-runtimes' view of [`runtime`]: Python awaitables are driven
/// by futures spawned on this process's runtime.
pub(crate) struct AtomRuntime;

tokio::task_local! {
    static TASK_LOCALS: std::cell::OnceCell<TaskLocals>;
}

/// The handle futures are spawned on. Invariant: every caller of
/// `future_into_py` obtained [`runtime`] first in the same call, so this
/// process's runtime exists; should making it fail here after all, the
/// spawn cannot happen and the panic is turned into a Python exception by
/// pyo3-async-runtimes.
fn spawn_handle() -> tokio::runtime::Handle {
    match runtime() {
        Ok(rt) => rt.handle().clone(),
        #[allow(clippy::panic)]
        Err(e) => panic!("the async runtime cannot be started: {e}"),
    }
}

impl Runtime for AtomRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle = tokio::task::JoinHandle<()>;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        spawn_handle().spawn(fut)
    }

    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        spawn_handle().spawn_blocking(f)
    }
}

impl ContextExt for AtomRuntime {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        let cell = std::cell::OnceCell::new();
        // A new cell: setting it cannot find a value there.
        let _ = cell.set(locals);
        Box::pin(TASK_LOCALS.scope(cell, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS
            .try_with(|cell| cell.get().cloned())
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn one_runtime_per_process_and_it_runs_work() {
        let a = runtime().unwrap();
        let b = runtime().unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.block_on(async { 40 + 2 }), 42);
    }
}
