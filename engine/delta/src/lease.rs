//! The fold's lock in an object store: a lease object created with a conditional put.
//!
//! Folds must not interleave (two folds adding one new key would both keep it). A local lake
//! uses a file lock; a lake in S3 uses `_fold.lock`, created only if absent (`If-None-Match:
//! *`). It records its holder and when it expires: a holder that died (a Lambda past its
//! deadline, a killed job) is replaced once its lease expired, by a put conditional on the
//! dead holder's ETag (`If-Match`), so of two processes taking an expired lease over, one wins.

use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion};
use serde_json::json;

use crate::error::Error;

/// The lease's key under the lake root.
pub const LEASE_OBJECT: &str = "_fold.lock";

/// How long a lease holds unless renewed. The fold renews it at every step (each run, each
/// commit), so it must outlast one step, not one fold; a dead holder's lease blocks other
/// folds this long at most.
pub const LEASE_TTL: Duration = Duration::from_secs(10 * 60);

/// How often a waiting process looks at the lease again.
const POLL: Duration = Duration::from_millis(500);

/// A held lease; [`Lease::release`] deletes it.
pub(crate) struct Lease {
    store: Arc<dyn ObjectStore>,
    holder: String,
    ttl: Duration,
    /// The lease object's version as we last wrote it.
    version: UpdateVersion,
}

/// The lease object's body: who holds it, until when.
fn body(holder: &str, ttl: Duration) -> Vec<u8> {
    let expires = chrono::Utc::now() + chrono::Duration::from_std(ttl).expect("a short TTL");
    json!({"holder": holder, "expires_at": expires.to_rfc3339()})
        .to_string()
        .into_bytes()
}

fn version_of(put: object_store::PutResult) -> UpdateVersion {
    UpdateVersion {
        e_tag: put.e_tag,
        version: put.version,
    }
}

impl Lease {
    /// Takes the lease, waiting up to `wait` for its holder to release it or for it to expire.
    /// `None` when it is still held after `wait`.
    pub(crate) async fn acquire(
        store: Arc<dyn ObjectStore>,
        wait: Duration,
        ttl: Duration,
    ) -> Result<Option<Lease>, Error> {
        let path = StorePath::from(LEASE_OBJECT);
        let holder = format!(
            "{}-{:08x}",
            std::process::id(),
            crate::files::attempt_nonce()
        );
        let started = std::time::Instant::now();
        loop {
            let now = chrono::Utc::now();
            let created = store
                .put_opts(&path, body(&holder, ttl).into(), PutMode::Create.into())
                .await;
            match created {
                Ok(put) => return Ok(Some(Lease::held(store, holder, ttl, put))),
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(lease_error("create", e)),
            }
            // Held: take it over if its holder's time is up.
            match store.get(&path).await {
                Ok(current) => {
                    let version = UpdateVersion {
                        e_tag: current.meta.e_tag.clone(),
                        version: current.meta.version.clone(),
                    };
                    let bytes = current.bytes().await.map_err(|e| lease_error("get", e))?;
                    if expired(&bytes, now) {
                        let options = PutOptions::from(PutMode::Update(version));
                        match store
                            .put_opts(&path, body(&holder, ttl).into(), options)
                            .await
                        {
                            Ok(put) => {
                                tracing::warn!(
                                    previous = %String::from_utf8_lossy(&bytes),
                                    "took over an expired fold lease"
                                );
                                return Ok(Some(Lease::held(store, holder, ttl, put)));
                            }
                            Err(
                                object_store::Error::Precondition { .. }
                                | object_store::Error::NotFound { .. },
                            ) => continue,
                            Err(e) => return Err(lease_error("take over", e)),
                        }
                    }
                }
                // Released between the two calls.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(lease_error("get", e)),
            }
            if started.elapsed() >= wait {
                return Ok(None);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn held(
        store: Arc<dyn ObjectStore>,
        holder: String,
        ttl: Duration,
        put: object_store::PutResult,
    ) -> Lease {
        Lease {
            store,
            holder,
            ttl,
            version: version_of(put),
        }
    }

    /// Extends the lease by its TTL from now. Fails if another process took it over (this
    /// one overran its lease): the caller must then stop before committing anything.
    pub(crate) async fn renew(&mut self) -> Result<(), Error> {
        let options = PutOptions::from(PutMode::Update(self.version.clone()));
        let path = StorePath::from(LEASE_OBJECT);
        match self
            .store
            .put_opts(&path, body(&self.holder, self.ttl).into(), options)
            .await
        {
            Ok(put) => {
                self.version = version_of(put);
                Ok(())
            }
            Err(
                object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. },
            ) => Err(Error::Invalid(format!(
                "the fold lease ({LEASE_OBJECT}) expired and another process took it over; \
                     this fold stops before committing (run `duff lake fold` again)"
            ))),
            Err(e) => Err(lease_error("renew", e)),
        }
    }

    /// Gives the lease back.
    pub(crate) async fn release(self) -> Result<(), Error> {
        let path = StorePath::from(LEASE_OBJECT);
        // Only our own: a lease we overran and another process took over stays theirs.
        let ours = match self.store.get(&path).await {
            Ok(current) => current
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|v| v["holder"] == self.holder.as_str()),
            Err(_) => false,
        };
        if ours {
            self.store
                .delete(&path)
                .await
                .map_err(|e| lease_error("delete", e))?;
        } else {
            tracing::warn!(
                holder = self.holder,
                "the fold lease expired while held and was taken over"
            );
        }
        Ok(())
    }
}

/// Whether a lease's body says it expired before `now`; an unreadable lease counts as expired
/// (nothing this version writes).
fn expired(body: &[u8], now: chrono::DateTime<chrono::Utc>) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["expires_at"].as_str().map(str::to_string))
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok())
        .is_none_or(|at| at < now)
}

fn lease_error(operation: &'static str, source: object_store::Error) -> Error {
    Error::ObjectStore {
        path: LEASE_OBJECT.to_string(),
        operation,
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_expires_at_its_time_and_garbage_counts_as_expired() {
        let now = chrono::Utc::now();
        let lease = |at: chrono::DateTime<chrono::Utc>| {
            json!({"holder": "x", "expires_at": at.to_rfc3339()})
                .to_string()
                .into_bytes()
        };
        assert!(!expired(&lease(now + chrono::Duration::seconds(5)), now));
        assert!(expired(&lease(now - chrono::Duration::seconds(5)), now));
        assert!(expired(b"not json", now));
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_held_lease_excludes_others_until_released() {
        runtime().block_on(async {
            let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
            let ttl = Duration::from_secs(600);
            let first = Lease::acquire(store.clone(), Duration::ZERO, ttl)
                .await
                .unwrap();
            let first = first.expect("a free lease is taken");
            let second = Lease::acquire(store.clone(), Duration::from_millis(600), ttl).await;
            assert!(
                second.unwrap().is_none(),
                "held: the second waits, then gives up"
            );
            first.release().await.unwrap();
            let third = Lease::acquire(store.clone(), Duration::ZERO, ttl)
                .await
                .unwrap();
            assert!(third.is_some(), "released: free again");
        });
    }

    #[test]
    fn an_expired_lease_is_taken_over_and_its_late_holder_leaves_it_alone() {
        runtime().block_on(async {
            let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
            let dead = Lease::acquire(store.clone(), Duration::ZERO, Duration::ZERO)
                .await
                .unwrap()
                .expect("free");
            let alive = Lease::acquire(store.clone(), Duration::ZERO, Duration::from_secs(600))
                .await
                .unwrap()
                .expect("an expired lease is taken over");
            // The holder that overran its lease can neither renew nor release it.
            let mut dead = dead;
            assert!(dead.renew().await.is_err(), "a lost lease is not renewed");
            dead.release().await.unwrap();
            let other = Lease::acquire(store.clone(), Duration::ZERO, Duration::from_secs(600));
            assert!(other.await.unwrap().is_none());
            alive.release().await.unwrap();
            assert!(store.head(&StorePath::from(LEASE_OBJECT)).await.is_err());
        });
    }
}
