//! `Tenants`: the named API keys a server accepts, each a tenant with a weight in the lanes'
//! fair share and an optional token rate (`[[api_keys]]`); the single `api_key` is one tenant
//! named `default`, and no key at all lets everyone in as `default`.

use std::num::NonZeroU32;

use aki_core::{EmbedError, Result, Tenant};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use serde::{Deserialize, Serialize};

use crate::auth::ApiKey;

/// One `[[api_keys]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantKey {
    /// The tenant's name, as metrics label it (`tenant="search"`).
    pub name: String,
    /// The key its requests present as `Authorization: Bearer <key>`.
    pub key: ApiKey,
    /// Its share of each lane against other tenants with work there (default 1).
    #[serde(default = "one")]
    pub weight: u32,
    /// Tokens it may have embedded per minute, as a burst of that size refilled evenly;
    /// beyond it requests are refused with 429 and `Retry-After`. Unset: no limit.
    #[serde(default)]
    pub tokens_per_minute: Option<u32>,
}

fn one() -> u32 {
    1
}

/// A tenant as the service keeps it.
struct Entry {
    key: Option<ApiKey>,
    tenant: Tenant,
    rate: Option<(DefaultDirectRateLimiter, u32)>,
}

/// The tenants a server accepts.
pub struct Tenants {
    entries: Vec<Entry>,
    clock: DefaultClock,
}

impl Tenants {
    /// No key: every request is the `default` tenant's.
    pub fn open() -> Self {
        let entry = Entry { key: None, tenant: Tenant::default(), rate: None };
        Self { entries: vec![entry], clock: DefaultClock::default() }
    }

    /// The tenants of the configuration: the single `key` as `default`, and the named `keys`.
    ///
    /// # Errors
    /// A message for a blank key, a name or key given twice, or a zero weight or rate.
    pub fn new(key: Option<ApiKey>, keys: &[TenantKey]) -> std::result::Result<Self, String> {
        if key.is_none() && keys.is_empty() {
            return Ok(Self::open());
        }
        let single = key.map(|key| TenantKey { name: "default".into(), key, weight: 1, tokens_per_minute: None });
        let all: Vec<TenantKey> = single.into_iter().chain(keys.iter().cloned()).collect();
        let mut entries: Vec<Entry> = Vec::new();
        for entry in &all {
            if entry.key.is_blank() {
                return Err(format!("the API key of tenant `{}` is empty", entry.name));
            }
            if entry.weight == 0 {
                return Err(format!("tenant `{}` has weight 0; weights start at 1", entry.name));
            }
            if entries.iter().any(|e| e.tenant.name.as_ref() == entry.name) {
                return Err(format!("tenant `{}` is named twice", entry.name));
            }
            if entries.iter().any(|e| e.key.as_ref().is_some_and(|k| k.0 == entry.key.0)) {
                return Err(format!("tenant `{}` has another tenant's key", entry.name));
            }
            let rate = match entry.tokens_per_minute {
                None => None,
                Some(n) => {
                    let n =
                        NonZeroU32::new(n).ok_or_else(|| format!("tenant `{}`: tokens_per_minute is 0", entry.name))?;
                    Some((DefaultDirectRateLimiter::direct(Quota::per_minute(n)), n.get()))
                }
            };
            entries.push(Entry { key: Some(entry.key.clone()), tenant: Tenant::new(&entry.name, entry.weight), rate });
        }
        Ok(Self { entries, clock: DefaultClock::default() })
    }

    /// Whether requests must present a key.
    pub fn guarded(&self) -> bool {
        self.entries.iter().any(|e| e.key.is_some())
    }

    /// The tenant whose key `presented` is (every key is compared, in constant time each), or
    /// the `default` tenant when the server takes no key.
    ///
    /// # Errors
    /// [`EmbedError::Unauthorized`] when keys are configured and `presented` is none of them.
    pub fn identify(&self, presented: Option<&str>) -> Result<Tenant> {
        let mut found = None;
        for entry in &self.entries {
            let matches = entry.key.as_ref().is_none_or(|key| key.matches(presented));
            if matches && found.is_none() {
                found = Some(entry.tenant.clone());
            }
        }
        found.ok_or(EmbedError::Unauthorized)
    }

    /// Takes `tokens` from `tenant`'s rate, when it has one.
    ///
    /// # Errors
    /// [`EmbedError::Busy`] with the wait until the tokens are available again, or when one
    /// request holds more tokens than a minute allows.
    pub fn charge(&self, tenant: &Tenant, tokens: usize) -> Result<()> {
        let Some(entry) = self.entries.iter().find(|e| e.tenant == *tenant) else { return Ok(()) };
        let (Some((limiter, per_minute)), Some(n)) =
            (&entry.rate, NonZeroU32::new(u32::try_from(tokens).unwrap_or(u32::MAX)))
        else {
            return Ok(());
        };
        match limiter.check_n(n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(EmbedError::busy(
                format!("tenant `{}` has used its {per_minute} tokens per minute", tenant.name),
                not_until.wait_time_from(self.clock.now()),
            )),
            Err(_) => Err(EmbedError::Validation(format!(
                "the request holds {tokens} tokens, more than tenant `{}` may send in a minute ({per_minute})",
                tenant.name
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, key: &str, weight: u32, tokens_per_minute: Option<u32>) -> TenantKey {
        TenantKey { name: name.into(), key: ApiKey(key.into()), weight, tokens_per_minute }
    }

    #[test]
    fn each_key_is_its_tenant_and_unknown_keys_are_refused() {
        let tenants =
            Tenants::new(Some(ApiKey("old".into())), &[key("search", "s3", 3, None), key("index", "i1", 1, None)])
                .expect("valid");
        assert!(tenants.guarded());
        assert_eq!(tenants.identify(Some("old")).map(|t| t.name.to_string()), Ok("default".into()));
        assert_eq!(tenants.identify(Some("s3")), Ok(Tenant::new("search", 3)));
        assert_eq!(tenants.identify(Some("i1")).map(|t| t.weight), Ok(1));
        assert_eq!(tenants.identify(Some("nope")), Err(EmbedError::Unauthorized));
        assert_eq!(tenants.identify(None), Err(EmbedError::Unauthorized));
        let open = Tenants::open();
        assert_eq!((open.guarded(), open.identify(None)), (false, Ok(Tenant::default())));
    }

    #[test]
    fn bad_tenant_lists_are_refused() {
        for (keys, says) in [
            (vec![key("a", "k", 1, None), key("a", "j", 1, None)], "named twice"),
            (vec![key("a", "k", 1, None), key("b", "k", 1, None)], "another tenant's key"),
            (vec![key("a", " ", 1, None)], "empty"),
            (vec![key("a", "k", 0, None)], "weight 0"),
            (vec![key("a", "k", 1, Some(0))], "tokens_per_minute is 0"),
        ] {
            let error = Tenants::new(None, &keys).err().expect("refused");
            assert!(error.contains(says), "{error}");
        }
    }

    #[test]
    fn a_tenant_over_its_token_rate_is_told_when_to_retry() {
        let tenants = Tenants::new(None, &[key("a", "k", 1, Some(600)), key("b", "j", 1, None)]).expect("valid");
        let (a, b) = (Tenant::new("a", 1), Tenant::new("b", 1));
        assert!(tenants.charge(&a, 500).is_ok());
        let refused = tenants.charge(&a, 200).expect_err("over the rate");
        // 100 tokens short at 10 tokens/s: about 10 s.
        let wait = refused.retry_after().expect("a retry time");
        assert!((9..=11).contains(&wait.as_secs()), "{wait:?}");
        assert!(refused.to_string().contains("600 tokens per minute"), "{refused}");
        assert!(matches!(tenants.charge(&a, 601), Err(EmbedError::Validation(_))));
        assert!(tenants.charge(&b, 1_000_000).is_ok(), "b has no limit");
    }
}
