//! `ApiKey`: the configured secret, compared in constant time and never shown.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The API key requests must present. Shown as `***` in `Debug` output and logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiKey(pub String);

impl ApiKey {
    /// Whether `presented` (the token of a `Bearer` credential, as the adapter extracted it) is
    /// this key. Both are hashed first and the digests compared in constant time, so neither
    /// the position of the first difference nor the key's length shows in the timing.
    pub fn matches(&self, presented: Option<&str>) -> bool {
        let Some(presented) = presented else { return false };
        let (want, got) = (Sha256::digest(self.0.as_bytes()), Sha256::digest(presented.as_bytes()));
        bool::from(want.as_slice().ct_eq(got.as_slice()))
    }

    /// Whether the key is usable: an empty or blank key would let anyone in who sends
    /// `Bearer ` with nothing after it.
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_key_matches() {
        let key = ApiKey("s3cret".into());
        assert!(key.matches(Some("s3cret")));
        for wrong in [None, Some(""), Some("s3cre"), Some("s3cret2"), Some("S3cret")] {
            assert!(!key.matches(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn the_key_is_redacted_and_blank_keys_are_recognised() {
        assert_eq!(format!("{:?}", ApiKey("hunter2".into())), "***");
        assert!(ApiKey(" ".into()).is_blank() && !ApiKey("k".into()).is_blank());
    }
}
