//! `CredentialStore` and `AsyncCredentialStore`: the credential store in
//! process, the same engine, tables and fail-closed audit trail as
//! atom-server. Both wrap [`Engine`], which opens the store lazily in each
//! process: a store made before a `fork()` is opened anew in the child on
//! its first call (the parent's pool and tasks are left alone there).

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use atom_app::Settings;
use atom_credentials::{CredentialStore as Store, Provider, UserId};
use atom_crypto::{ExposeSecret as _, SecretString};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::{InvalidInput, from_app, from_store, no_runtime};
use crate::runtime::{AtomRuntime, ProcessRuntime, runtime};

/// The store of one process.
struct Opened {
    pid: u32,
    store: Store,
}

/// The settings a store is opened with, and the store of this process.
struct Engine {
    settings: Settings,
    opened: ArcSwapOption<Opened>,
}

impl Engine {
    fn new(settings: Settings) -> Engine {
        Engine {
            settings,
            opened: ArcSwapOption::const_empty(),
        }
    }

    /// This process's store, if it is open.
    fn cached(&self) -> (Option<Store>, Option<Arc<Opened>>) {
        let seen = self.opened.load_full();
        match &seen {
            Some(opened) if opened.pid == std::process::id() => (Some(opened.store.clone()), seen),
            _ => (None, seen),
        }
    }

    /// Makes `store`, just opened, this process's store unless another
    /// thread was first; the store to use, and one to close (ours, when we
    /// lost the race).
    fn install(&self, seen: Option<Arc<Opened>>, store: Store) -> (Store, Option<Store>) {
        let pid = std::process::id();
        let fresh = Arc::new(Opened {
            pid,
            store: store.clone(),
        });
        let before = self.opened.compare_and_swap(&seen, Some(fresh));
        let swapped = match (&*before, &seen) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if swapped {
            // The parent's store, after a fork: its pool and tasks lived
            // on threads this process does not have. Never dropped here.
            if let Some(parent) = seen {
                std::mem::forget(parent);
            }
            return (store, None);
        }
        match &*before {
            Some(theirs) if theirs.pid == pid => (theirs.store.clone(), Some(store)),
            _ => (store, None),
        }
    }

    /// This process's runtime and store, opening the store (migrating the
    /// database, as atom-server does at start-up) on first use in this
    /// process. Call without the GIL: opening waits for the database.
    fn current(&self) -> PyResult<(Arc<ProcessRuntime>, Store)> {
        let rt = runtime().map_err(no_runtime)?;
        let (cached, seen) = self.cached();
        if let Some(store) = cached {
            return Ok((rt, store));
        }
        let store = rt
            .block_on(self.settings.open_store(crate::actor()))
            .map_err(from_app)?;
        let (store, extra) = self.install(seen, store);
        if let Some(extra) = extra {
            rt.block_on(extra.close()).map_err(from_store)?;
        }
        Ok((rt, store))
    }

    /// [`Engine::current`] from a task of the runtime.
    async fn current_async(&self) -> PyResult<Store> {
        let (cached, seen) = self.cached();
        if let Some(store) = cached {
            return Ok(store);
        }
        let store = self
            .settings
            .open_store(crate::actor())
            .await
            .map_err(from_app)?;
        let (store, extra) = self.install(seen, store);
        if let Some(extra) = extra {
            extra.close().await.map_err(from_store)?;
        }
        Ok(store)
    }

    /// Flushes the audit trail and closes the pool of this process's store.
    async fn close(&self) -> PyResult<()> {
        let pid = std::process::id();
        let Some(opened) = self.opened.load_full().filter(|o| o.pid == pid) else {
            return Ok(());
        };
        self.opened.store(None);
        async {
            opened.store.auditor().flush().await?;
            opened.store.clone().close().await
        }
        .await
        .map_err(from_store)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // A store dropped without close(): its pool is closed on the
        // runtime, never waited for here (this may run inside Python's
        // garbage collector).
        if let Some(opened) = self.opened.swap(None)
            && opened.pid == std::process::id()
            && let Ok(rt) = runtime()
        {
            rt.handle().spawn(async move {
                let _ = opened.store.auditor().flush().await;
                let _ = opened.store.clone().close().await;
            });
        }
    }
}

/// The settings of the environment (`DATABASE_URL`, `ATOM_AUDIT_*`,
/// `ATOM_ENVELOPE_ENCRYPTION`, `ATOM_KEYSTORE_URL`, KMS...), with the
/// keyword arguments over them.
#[allow(clippy::too_many_arguments)]
fn settings(
    database_url: Option<String>,
    audit_sink: Option<&str>,
    audit_log: Option<std::path::PathBuf>,
    data_dir: Option<std::path::PathBuf>,
    envelope: Option<bool>,
    keystore_url: Option<String>,
    require_encryption: Option<bool>,
) -> PyResult<Settings> {
    let mut settings = Settings::from_env().map_err(from_app)?;
    if let Some(url) = database_url {
        settings.database_url = Some(url);
    }
    if let Some(sink) = audit_sink {
        settings.audit_sink = match sink {
            "file" => atom_app::AuditSinkKind::File,
            "database" => atom_app::AuditSinkKind::Database,
            other => {
                return Err(InvalidInput::new_err(format!(
                    "audit_sink {other:?} is not a sink; use \"file\" (the log at audit_log) or \"database\" (the credential database's audit_events table)"
                )));
            }
        };
    }
    if let Some(log) = audit_log {
        settings.audit_log = Some(log);
    }
    if let Some(dir) = data_dir {
        settings.data_dir = dir;
    }
    settings.envelope = envelope;
    settings.keystore_url = keystore_url;
    if let Some(required) = require_encryption {
        settings.require_encryption = required;
    }
    // Resolved now: a service that changes folder later keeps its store.
    settings.anchored().map_err(from_app)
}

fn ids(user_id: &str, provider: &str) -> PyResult<(UserId, Provider)> {
    Ok((
        UserId::parse(user_id).map_err(from_store)?,
        Provider::parse(provider).map_err(from_store)?,
    ))
}

fn token(access_token: String) -> PyResult<SecretString> {
    if access_token.is_empty() {
        return Err(InvalidInput::new_err("the token is empty"));
    }
    Ok(SecretString::from(access_token))
}

fn listing<'py>(
    py: Python<'py>,
    items: &[atom_credentials::CredentialInfo],
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for info in items {
        list.append(crate::convert::credential_info(py, info)?)?;
    }
    Ok(list)
}

/// The seed's message for a missing credential, kept for callers that
/// match it; the engine's names the user too.
fn not_found(err: atom_credentials::CredentialError, provider: &str) -> PyErr {
    match err {
        atom_credentials::CredentialError::NotFound { .. } => {
            crate::errors::CredentialNotFound::new_err(format!(
                "Credential not found for {provider}"
            ))
        }
        other => from_store(other),
    }
}

/// Per-user encrypted tokens in the credential database, in process.
///
/// Opens the database of ``DATABASE_URL`` (default: the SQLite file
/// ``.atom/atom.db``), migrating it as atom-server does, on the first call
/// in each process; the audit trail, envelope encryption, key store and
/// KMS come from the same variables as the binaries (``ATOM_AUDIT_*``,
/// ``ATOM_ENVELOPE_ENCRYPTION``, ``ATOM_KEYSTORE_URL``,
/// ``ATOM_KMS_KEYS_FILE``), and keyword arguments override them. Every
/// call releases the GIL while it waits, and is audited (fail-closed) as
/// atom-server's are, so a Python service and atom-server can share one
/// database and one trail.
#[pyclass(frozen, module = "atom_protect")]
pub(crate) struct CredentialStore {
    engine: Engine,
}

#[pymethods]
impl CredentialStore {
    #[new]
    #[pyo3(signature = (database_url = None, *, audit_sink = None, audit_log = None, data_dir = None, envelope = None, keystore_url = None, require_encryption = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        database_url: Option<String>,
        audit_sink: Option<&str>,
        audit_log: Option<std::path::PathBuf>,
        data_dir: Option<std::path::PathBuf>,
        envelope: Option<bool>,
        keystore_url: Option<String>,
        require_encryption: Option<bool>,
    ) -> PyResult<CredentialStore> {
        Ok(CredentialStore {
            engine: Engine::new(settings(
                database_url,
                audit_sink,
                audit_log,
                data_dir,
                envelope,
                keystore_url,
                require_encryption,
            )?),
        })
    }

    /// Opens the store now (it is opened on the first call otherwise), so
    /// that a bad setting or an unreachable database shows at start-up.
    fn open(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.engine.current().map(|_| ()))
    }

    /// Stores ``access_token`` for ``user_id`` and ``provider`` (replacing
    /// any earlier one), sealed under its user's context (and data key,
    /// with envelope encryption); committed with its audit event.
    fn store_user_credential(
        &self,
        py: Python<'_>,
        user_id: &str,
        provider: &str,
        access_token: String,
    ) -> PyResult<()> {
        let (user, provider) = ids(user_id, provider)?;
        let token = token(access_token)?;
        py.detach(|| {
            let (rt, store) = self.engine.current()?;
            rt.block_on(store.put(&user, &provider, &token))
                .map_err(from_store)
        })
    }

    /// The token of ``user_id`` for ``provider``, as the seed's
    /// ``get_user_credential`` returns it. Raises ``CredentialNotFound`` (a
    /// ``ValueError``) when there is none, ``CannotOpen`` when the stored
    /// value does not open. The read is audited before the token is
    /// returned.
    fn get_user_credential(
        &self,
        py: Python<'_>,
        user_id: &str,
        provider: &str,
    ) -> PyResult<String> {
        let (user, parsed) = ids(user_id, provider)?;
        let secret = py.detach(|| {
            let (rt, store) = self.engine.current()?;
            rt.block_on(store.get(&user, &parsed))
                .map_err(|e| not_found(e, provider))
        })?;
        Ok(secret.expose_secret().to_owned())
    }

    /// The providers ``user_id`` has a credential for, with key ids and
    /// times (never tokens).
    fn list<'py>(&self, py: Python<'py>, user_id: &str) -> PyResult<Bound<'py, PyList>> {
        let user = UserId::parse(user_id).map_err(from_store)?;
        let items = py.detach(|| {
            let (rt, store) = self.engine.current()?;
            rt.block_on(store.list(&user)).map_err(from_store)
        })?;
        listing(py, &items)
    }

    /// Deletes ``user_id``'s credential for ``provider``; whether there was
    /// one.
    fn delete(&self, py: Python<'_>, user_id: &str, provider: &str) -> PyResult<bool> {
        let (user, provider) = ids(user_id, provider)?;
        py.detach(|| {
            let (rt, store) = self.engine.current()?;
            rt.block_on(store.delete(&user, &provider))
                .map_err(from_store)
        })
    }

    /// Erases every credential of ``user_id`` (archived rows and, with
    /// envelope encryption, their data key too: restored backups of the
    /// rows no longer open). What was erased.
    fn erase_user<'py>(&self, py: Python<'py>, user_id: &str) -> PyResult<Bound<'py, PyDict>> {
        let user = UserId::parse(user_id).map_err(from_store)?;
        let report = py.detach(|| {
            let (rt, store) = self.engine.current()?;
            rt.block_on(store.erase_user(&user)).map_err(from_store)
        })?;
        crate::convert::erasure(py, &report)
    }

    /// Flushes the audit trail and closes the database pool of this
    /// process. A later call opens them again.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| {
            let rt = runtime().map_err(no_runtime)?;
            rt.block_on(self.engine.close())
        })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "CredentialStore(database={})",
            atom_credentials::redact_url(&self.engine.settings.database_url())
        )
    }
}

/// :class:`CredentialStore` for asyncio (FastAPI): the same calls, as
/// awaitables driven by the engine's own runtime, so the event loop never
/// waits on the database.
#[pyclass(frozen, module = "atom_protect")]
pub(crate) struct AsyncCredentialStore {
    engine: Arc<Engine>,
}

/// Python's `None`, what an awaited call that returns nothing resolves to
/// (a Rust `()` would become an empty tuple).
fn none() -> PyResult<Py<PyAny>> {
    Ok(Python::attach(|py| py.None()))
}

/// Runs `work` with this process's store, as a Python awaitable.
fn awaitable<'py, T, F, Fut>(
    py: Python<'py>,
    engine: &Arc<Engine>,
    work: F,
) -> PyResult<Bound<'py, PyAny>>
where
    T: for<'a> IntoPyObject<'a> + Send + 'static,
    F: FnOnce(Store) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = PyResult<T>> + Send + 'static,
{
    // The runtime exists before anything is scheduled on it.
    runtime().map_err(no_runtime)?;
    let engine = Arc::clone(engine);
    pyo3_async_runtimes::generic::future_into_py::<AtomRuntime, _, T>(py, async move {
        let store = engine.current_async().await?;
        work(store).await
    })
}

#[pymethods]
impl AsyncCredentialStore {
    #[new]
    #[pyo3(signature = (database_url = None, *, audit_sink = None, audit_log = None, data_dir = None, envelope = None, keystore_url = None, require_encryption = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        database_url: Option<String>,
        audit_sink: Option<&str>,
        audit_log: Option<std::path::PathBuf>,
        data_dir: Option<std::path::PathBuf>,
        envelope: Option<bool>,
        keystore_url: Option<String>,
        require_encryption: Option<bool>,
    ) -> PyResult<AsyncCredentialStore> {
        Ok(AsyncCredentialStore {
            engine: Arc::new(Engine::new(settings(
                database_url,
                audit_sink,
                audit_log,
                data_dir,
                envelope,
                keystore_url,
                require_encryption,
            )?)),
        })
    }

    /// Opens the store now (awaitable).
    fn open<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, &self.engine, |_| async { none() })
    }

    /// See :meth:`CredentialStore.store_user_credential` (awaitable).
    fn store_user_credential<'py>(
        &self,
        py: Python<'py>,
        user_id: &str,
        provider: &str,
        access_token: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (user, provider) = ids(user_id, provider)?;
        let token = token(access_token)?;
        awaitable(py, &self.engine, move |store| async move {
            store
                .put(&user, &provider, &token)
                .await
                .map_err(from_store)?;
            none()
        })
    }

    /// See :meth:`CredentialStore.get_user_credential` (awaitable).
    fn get_user_credential<'py>(
        &self,
        py: Python<'py>,
        user_id: &str,
        provider: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (user, parsed) = ids(user_id, provider)?;
        let name = provider.to_owned();
        awaitable(py, &self.engine, move |store| async move {
            let secret = store
                .get(&user, &parsed)
                .await
                .map_err(|e| not_found(e, &name))?;
            Ok(secret.expose_secret().to_owned())
        })
    }

    /// See :meth:`CredentialStore.list` (awaitable).
    fn list<'py>(&self, py: Python<'py>, user_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let user = UserId::parse(user_id).map_err(from_store)?;
        awaitable(py, &self.engine, move |store| async move {
            let items = store.list(&user).await.map_err(from_store)?;
            Python::attach(|py| listing(py, &items).map(Bound::unbind))
        })
    }

    /// See :meth:`CredentialStore.delete` (awaitable).
    fn delete<'py>(
        &self,
        py: Python<'py>,
        user_id: &str,
        provider: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (user, provider) = ids(user_id, provider)?;
        awaitable(py, &self.engine, move |store| async move {
            store.delete(&user, &provider).await.map_err(from_store)
        })
    }

    /// See :meth:`CredentialStore.erase_user` (awaitable).
    fn erase_user<'py>(&self, py: Python<'py>, user_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let user = UserId::parse(user_id).map_err(from_store)?;
        awaitable(py, &self.engine, move |store| async move {
            let report = store.erase_user(&user).await.map_err(from_store)?;
            Python::attach(|py| crate::convert::erasure(py, &report).map(Bound::unbind))
        })
    }

    /// Flushes the audit trail and closes the pool (awaitable).
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        runtime().map_err(no_runtime)?;
        let engine = Arc::clone(&self.engine);
        pyo3_async_runtimes::generic::future_into_py::<AtomRuntime, _, _>(py, async move {
            engine.close().await?;
            none()
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "AsyncCredentialStore(database={})",
            atom_credentials::redact_url(&self.engine.settings.database_url())
        )
    }
}
