//! Dependencies injected into automation handlers: outside services (mailers, payment
//! gateways, clocks) that the app provides once and handlers look up by type.
//!
//! ```ignore
//! let app = fairway::App::open(&config)?.provide(Mailer::new(smtp));
//! // in a handler:
//! let mailer = ctx.dependency::<Mailer>()?;
//! ```

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// A shared map from type to one value of that type. Cloning shares the map, so values
/// provided after the runtimes were bound are still seen by them.
#[derive(Clone, Default)]
pub struct Dependencies {
    values: Arc<RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>>,
}

/// A handler asked for a dependency the app never provided.
#[derive(Debug, thiserror::Error)]
#[error("no dependency of type {0} was provided to the app (call `App::provide`)")]
pub struct MissingDependency(pub &'static str);

impl Dependencies {
    /// An empty map.
    pub fn new() -> Self {
        Dependencies::default()
    }

    /// Provides `value`, replacing an earlier value of the same type.
    pub fn provide<T: Send + Sync + 'static>(&self, value: T) {
        self.values.write().expect("dependencies lock").insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`.
    pub fn get<T: Send + Sync + 'static>(&self) -> Result<Arc<T>, MissingDependency> {
        let value = self.values.read().expect("dependencies lock").get(&TypeId::of::<T>()).cloned();
        value.and_then(|v| v.downcast::<T>().ok()).ok_or(MissingDependency(type_name::<T>()))
    }
}

impl std::fmt::Debug for Dependencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.values.read().map(|v| v.len()).unwrap_or_default();
        f.debug_struct("Dependencies").field("count", &count).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provided_values_are_found_by_type_and_missing_ones_are_named() {
        let deps = Dependencies::new();
        let seen_later = deps.clone();
        deps.provide(41_u32);
        deps.provide(42_u32);
        deps.provide(String::from("smtp://mail"));
        assert_eq!(*seen_later.get::<u32>().unwrap(), 42);
        assert_eq!(seen_later.get::<String>().unwrap().as_str(), "smtp://mail");
        let missing = seen_later.get::<u64>().unwrap_err();
        assert!(missing.to_string().contains("u64"), "{missing}");
    }
}
