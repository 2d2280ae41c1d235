//! Which provider [`Account`] a campaign's calls go through: the config file's account of
//! its provider, or one of its workspace's own accounts (`/api/v1/provider-accounts`,
//! issue 13). A workspace account is built on first use from its stored row and secrets
//! (by the server's [`AccountFactory`]: the engine does not know how each provider's
//! client is configured) and kept, with its rate limiter and circuit breaker, for as long
//! as the row is unchanged. The row is looked at again at most every [`RECHECK`]: an
//! update made through another node (new secrets, a new limit, disabled) reaches this one
//! within that time, and at once on the node that made it ([`Accounts::forget`]).

use crate::Account;
use dialtone_core::{ProviderAccountId, ProviderKind, WorkspaceId};
use dialtone_store::{ProviderAccount, Store};
use jiff::{SignedDuration, Timestamp};
use secrecy::SecretString;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// How long a workspace account's row is trusted before it is read again.
pub const RECHECK: SignedDuration = SignedDuration::from_secs(5);

/// Which account: the config's account of a provider (`id: None`), or a workspace's own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountKey {
    pub provider: ProviderKind,
    pub id: Option<ProviderAccountId>,
}

impl AccountKey {
    /// The config file's account of `provider`.
    pub fn config(provider: ProviderKind) -> Self {
        Self { provider, id: None }
    }
}

/// Builds the engine's [`Account`] (client, rate limiter, circuit breaker) for a
/// workspace's stored provider account and its decrypted secrets. Implemented by the
/// server, which knows each provider's settings.
pub trait AccountFactory: Send + Sync + 'static {
    /// Errors: a message saying what is wrong with the stored settings (the account is
    /// then treated as unusable until its row changes).
    fn build(&self, account: &ProviderAccount, secrets: &BTreeMap<String, SecretString>) -> Result<Arc<Account>, String>;
}

struct Cached {
    /// `None`: gone, disabled, of another provider, or its settings do not build.
    account: Option<Arc<Account>>,
    /// The row's `updated_at` the account was built from.
    updated_at: Option<Timestamp>,
    checked_at: Timestamp,
}

/// The config accounts and the workspace accounts built so far.
pub struct Accounts {
    config: HashMap<ProviderKind, Arc<Account>>,
    workspace: Mutex<HashMap<ProviderAccountId, Cached>>,
    factory: std::sync::OnceLock<Arc<dyn AccountFactory>>,
}

impl Accounts {
    pub fn new(config: HashMap<ProviderKind, Arc<Account>>) -> Self {
        Self { config, workspace: Mutex::default(), factory: std::sync::OnceLock::new() }
    }

    /// Sets how workspace accounts are built; only the first one set is kept. Without a
    /// factory, campaigns on workspace accounts wait (their claims are given back).
    pub fn set_factory(&self, factory: Arc<dyn AccountFactory>) -> bool {
        self.factory.set(factory).is_ok()
    }

    /// The config file's account of `kind`.
    pub fn config(&self, kind: ProviderKind) -> Option<&Arc<Account>> {
        self.config.get(&kind)
    }

    /// Every config account, for the metrics gauges.
    pub fn config_accounts(&self) -> impl Iterator<Item = (&ProviderKind, &Arc<Account>)> {
        self.config.iter()
    }

    /// The account `key` of workspace `ws`, built or re-read as needed; `None` when there
    /// is none to use (not configured, gone, disabled, another workspace's, another
    /// provider's, or unreadable: logged).
    pub async fn get(&self, store: &Arc<dyn Store>, ws: &WorkspaceId, key: &AccountKey, now: Timestamp) -> Option<Arc<Account>> {
        let Some(id) = &key.id else { return self.config.get(&key.provider).cloned() };
        let stale_since = {
            let cache = self.workspace.lock().unwrap();
            match cache.get(id) {
                Some(c) if now < c.checked_at + RECHECK => return c.account.clone(),
                Some(c) => Some(c.updated_at),
                None => None,
            }
        };
        let row = match store.get_provider_account(ws, id.as_str()).await {
            Ok(row) => row.filter(|a| a.disabled_at.is_none() && a.provider == key.provider),
            Err(e) => {
                tracing::warn!(account_id = %id, error = %e, "could not read a provider account; its calls wait");
                return None;
            }
        };
        let updated_at = row.as_ref().map(|a| a.updated_at);
        if stale_since == Some(updated_at) {
            // Unchanged: keep the account (and its limiter's and breaker's state).
            if let Some(c) = self.workspace.lock().unwrap().get_mut(id) {
                c.checked_at = now;
                return c.account.clone();
            }
        }
        let account = match (row, self.factory.get()) {
            (Some(row), Some(factory)) => self.build(store, factory.as_ref(), &row).await,
            _ => None,
        };
        self.workspace.lock().unwrap().insert(id.clone(), Cached { account: account.clone(), updated_at, checked_at: now });
        account
    }

    async fn build(&self, store: &Arc<dyn Store>, factory: &dyn AccountFactory, row: &ProviderAccount) -> Option<Arc<Account>> {
        let secrets = match store.provider_account_secrets(row.id.as_str()).await {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(account_id = %row.id, error = %e, "could not open a provider account's secrets; its calls wait");
                return None;
            }
        };
        match factory.build(row, &secrets) {
            Ok(account) => Some(account),
            Err(e) => {
                tracing::warn!(account_id = %row.id, error = %e, "a provider account's settings do not make a client; its calls wait");
                None
            }
        }
    }

    /// The account `key` as last built, without reading the store: `Some(None)` when it is
    /// known to be unusable, `None` when it was never built or its check is stale.
    pub fn cached(&self, key: &AccountKey, now: Timestamp) -> Option<Option<Arc<Account>>> {
        let Some(id) = &key.id else { return Some(self.config.get(&key.provider).cloned()) };
        let cache = self.workspace.lock().unwrap();
        cache.get(id).filter(|c| now < c.checked_at + RECHECK).map(|c| c.account.clone())
    }

    /// Drops what is known of workspace account `id` (it was just changed here): the next
    /// use reads it again.
    pub fn forget(&self, id: &ProviderAccountId) {
        self.workspace.lock().unwrap().remove(id);
    }
}
