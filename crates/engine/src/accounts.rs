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

    /// The account a campaign's calls go through.
    pub fn of_campaign(campaign: &dialtone_store::Campaign) -> Self {
        Self { provider: campaign.provider, id: campaign.account_id.clone() }
    }

    /// The account a claimed call is to be placed on.
    pub fn of_dial(dial: &dialtone_store::Dial) -> Self {
        Self { provider: dial.provider, id: dial.account_id.clone() }
    }

    /// The account a call was placed on.
    pub fn of_call(call: &dialtone_store::Call) -> Self {
        Self { provider: call.provider, id: call.account_id.clone() }
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

#[derive(Clone)]
struct Cached {
    /// What the row said when last read; `None` when there is no such row.
    row: Option<Facts>,
    /// Built from the row, also while it is disabled (its calls under way still report on
    /// its webhook route); `None`: gone, or its settings do not build, or no factory.
    account: Option<Arc<Account>>,
    checked_at: Timestamp,
}

/// What a stored account's row says that decides who may use the built account.
#[derive(Clone, PartialEq)]
struct Facts {
    workspace_id: WorkspaceId,
    provider: ProviderKind,
    disabled: bool,
    /// The row's `updated_at`: the account is rebuilt when it changes.
    updated_at: Timestamp,
}

impl Cached {
    /// The account for dialling on `key` (of workspace `ws` when given): only while the
    /// row is enabled, of `key`'s provider (and `ws`'s).
    fn usable(&self, ws: Option<&WorkspaceId>, provider: ProviderKind) -> Option<Arc<Account>> {
        let row = self.row.as_ref()?;
        let mine = ws.is_none_or(|ws| *ws == row.workspace_id);
        (mine && row.provider == provider && !row.disabled).then(|| self.account.clone()).flatten()
    }
}

/// The config accounts and the workspace accounts built so far, by account id.
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

    /// The account `key` of workspace `ws` to dial on, built or re-read as needed; `None`
    /// when there is none to use (not configured, gone, disabled, another workspace's,
    /// another provider's, or unreadable: logged).
    pub async fn get(&self, store: &Arc<dyn Store>, ws: &WorkspaceId, key: &AccountKey, now: Timestamp) -> Option<Arc<Account>> {
        let Some(id) = &key.id else { return self.config.get(&key.provider).cloned() };
        match self.refresh(store, id, now).await {
            Ok(cached) => cached.usable(Some(ws), key.provider),
            Err(e) => {
                tracing::warn!(account_id = %id, error = %e, "could not read a provider account; its calls wait");
                None
            }
        }
    }

    /// Workspace account `id` of provider `kind` for the calls already placed on it: their
    /// webhooks (route `/webhooks/{kind}/{id}`) and hang-ups. Of any workspace (a webhook
    /// route names only the account) and also while disabled (its calls under way still
    /// report and can be hung up); from the cache while its check is fresh, so a webhook
    /// costs no read. `Ok(None)`: no such account, or one of another provider.
    ///
    /// Errors: the row or its secrets could not be read, or its settings do not make a
    /// client (the provider should retry later).
    pub async fn for_live_calls(
        &self,
        store: &Arc<dyn Store>,
        kind: ProviderKind,
        id: &ProviderAccountId,
        now: Timestamp,
    ) -> Result<Option<Arc<Account>>, String> {
        let cached = self.refresh(store, id, now).await.map_err(|e| e.to_string())?;
        match &cached.row {
            Some(row) if row.provider == kind => {
                cached.account.map(Some).ok_or_else(|| format!("{kind} account {id} cannot be used (its settings do not make a client)"))
            }
            _ => Ok(None),
        }
    }

    /// The cache's entry for `id`, read again from the store when older than [`RECHECK`]
    /// and rebuilt when the row changed.
    async fn refresh(&self, store: &Arc<dyn Store>, id: &ProviderAccountId, now: Timestamp) -> Result<Cached, dialtone_store::StoreError> {
        let known = {
            let cache = self.workspace.lock().unwrap();
            match cache.get(id) {
                Some(c) if now < c.checked_at + RECHECK => return Ok(c.clone()),
                Some(c) => c.row.clone(),
                None => None,
            }
        };
        let row = store.find_provider_account(id.as_str()).await?;
        let facts = row.as_ref().map(|a| Facts {
            workspace_id: a.workspace_id.clone(),
            provider: a.provider,
            disabled: a.disabled_at.is_some(),
            updated_at: a.updated_at,
        });
        if facts.is_some() && known == facts {
            // Unchanged: keep the account (and its limiter's and breaker's state).
            if let Some(c) = self.workspace.lock().unwrap().get_mut(id) {
                c.checked_at = now;
                return Ok(c.clone());
            }
        }
        let account = match (row, self.factory.get()) {
            (Some(row), Some(factory)) => self.build(store, factory.as_ref(), &row).await,
            _ => None,
        };
        let cached = Cached { row: facts, account, checked_at: now };
        self.workspace.lock().unwrap().insert(id.clone(), cached.clone());
        Ok(cached)
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

    /// The account `key` to dial on as last built, without reading the store: `Some(None)`
    /// when it is known to be unusable, `None` when it was never built or its check is stale.
    pub fn cached(&self, key: &AccountKey, now: Timestamp) -> Option<Option<Arc<Account>>> {
        let Some(id) = &key.id else { return Some(self.config.get(&key.provider).cloned()) };
        let cache = self.workspace.lock().unwrap();
        cache.get(id).filter(|c| now < c.checked_at + RECHECK).map(|c| c.usable(None, key.provider))
    }

    /// Drops what is known of workspace account `id` (it was just changed here): the next
    /// use reads it again.
    pub fn forget(&self, id: &ProviderAccountId) {
        self.workspace.lock().unwrap().remove(id);
    }
}
