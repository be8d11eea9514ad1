//! An in-memory [`ShadowStore`] with AWS's update semantics (the `shadow-doc` algebra): version
//! check, merge, version +1. For tests and benchmarks that must control interleavings exactly.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;
use shadow_doc::{ShadowDocument, ShadowLimits, UpdateRequest, apply_update};

use crate::store::{ShadowStore, StoreError, StoredShadow};

type Key = (String, Option<String>);

#[derive(Default)]
pub struct MemoryStore {
    shadows: Mutex<HashMap<Key, ShadowDocument>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn key(thing: &str, shadow: Option<&str>) -> Key {
        (thing.to_owned(), shadow.map(str::to_owned))
    }

    /// The stored document, as GetThingShadow would return it.
    pub fn document(&self, thing: &str, shadow: Option<&str>) -> Option<Value> {
        let shadows = self.shadows.lock().ok()?;
        shadows
            .get(&Self::key(thing, shadow))
            .and_then(|d| serde_json::to_value(d).ok())
    }
}

impl ShadowStore for MemoryStore {
    async fn get(
        &self,
        thing: &str,
        shadow: Option<&str>,
    ) -> Result<Option<StoredShadow>, StoreError> {
        Ok(self.document(thing, shadow).map(|document| StoredShadow {
            version: document.get("version").and_then(Value::as_u64).unwrap_or(0),
            document,
        }))
    }

    async fn update(
        &self,
        thing: &str,
        shadow: Option<&str>,
        request: &Value,
    ) -> Result<u64, StoreError> {
        let request =
            UpdateRequest::from_json(request.clone(), &ShadowLimits::default()).map_err(|e| {
                StoreError::Service {
                    operation: "UpdateThingShadow",
                    message: e.message.clone(),
                }
            })?;
        let mut shadows = self.shadows.lock().map_err(|_| StoreError::Service {
            operation: "UpdateThingShadow",
            message: "store poisoned".into(),
        })?;
        let key = Self::key(thing, shadow);
        match apply_update(shadows.get(&key), &request, 1_764_000_000) {
            Ok(outcome) => {
                let version = outcome.document.version;
                shadows.insert(key, outcome.document);
                Ok(version)
            }
            Err(e) if e.code == 409 => Err(StoreError::Conflict),
            Err(e) => Err(StoreError::Service {
                operation: "UpdateThingShadow",
                message: format!("{} {}", e.code, e.message),
            }),
        }
    }
}

/// Instances of the reconciler share one store in tests, as Lambda instances share one service.
impl<S: ShadowStore> ShadowStore for std::sync::Arc<S> {
    async fn get(
        &self,
        thing: &str,
        shadow: Option<&str>,
    ) -> Result<Option<StoredShadow>, StoreError> {
        self.as_ref().get(thing, shadow).await
    }

    async fn update(
        &self,
        thing: &str,
        shadow: Option<&str>,
        request: &Value,
    ) -> Result<u64, StoreError> {
        self.as_ref().update(thing, shadow, request).await
    }
}
