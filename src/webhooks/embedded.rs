//! The single-node webhook outbox, in a redb file: pure Rust, ACID, crash-safe by default, and every
//! commit is fsynced, so a delivery that `append` returned survives a crash or kill -9.
//! Pending deliveries are keyed by (target, id) so each target's oldest delivery is one range lookup.

use std::{path::Path, sync::Arc};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::store::{Delivery, DeliveryState, DeliveryStore, NewDelivery, StoreError, StoreStats};

const PENDING: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("pending");
const DEAD: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("dead");
/// Targets with pending deliveries.
const TARGETS: TableDefinition<&str, u64> = TableDefinition::new("targets");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const NEXT_ID: &str = "next_id";

pub struct EmbeddedStore {
    db: Arc<Database>,
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

fn encode(delivery: &Delivery) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(delivery).map_err(backend)
}

fn decode(bytes: &[u8]) -> Result<Delivery, StoreError> {
    serde_json::from_slice(bytes).map_err(backend)
}

/// Removes `target` from the target set once it has no pending delivery left.
fn drop_target_if_idle(
    txn: &redb::WriteTransaction,
    pending: &redb::Table<(&str, u64), &[u8]>,
    target: &str,
) -> Result<(), StoreError> {
    let idle = pending
        .range((target, 0)..=(target, u64::MAX))
        .map_err(backend)?
        .next()
        .is_none();
    if idle {
        txn.open_table(TARGETS)
            .map_err(backend)?
            .remove(target)
            .map_err(backend)?;
    }
    Ok(())
}

impl EmbeddedStore {
    /// Opens (or creates) the store file, creating its directory.
    pub fn open(path: &Path) -> Result<EmbeddedStore, StoreError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| backend(format!("{}: {e}", dir.display())))?;
        }
        let db = Database::create(path).map_err(|e| backend(format!("{}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(backend)?;
        txn.open_table(PENDING).map_err(backend)?;
        txn.open_table(DEAD).map_err(backend)?;
        txn.open_table(TARGETS).map_err(backend)?;
        txn.open_table(META).map_err(backend)?;
        txn.commit().map_err(backend)?;
        Ok(EmbeddedStore { db: Arc::new(db) })
    }

    /// Runs blocking database work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(backend)?
    }
}

#[async_trait]
impl DeliveryStore for EmbeddedStore {
    async fn append(&self, deliveries: Vec<NewDelivery>) -> Result<(), StoreError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            {
                let mut meta = txn.open_table(META).map_err(backend)?;
                let mut next_id = meta.get(NEXT_ID).map_err(backend)?.map_or(1, |v| v.value());
                let mut pending = txn.open_table(PENDING).map_err(backend)?;
                let mut targets = txn.open_table(TARGETS).map_err(backend)?;
                for request in deliveries {
                    let target = request.target();
                    let delivery = Delivery {
                        id: next_id,
                        next_attempt_ms: request.created_ms,
                        request,
                        state: DeliveryState::Pending,
                        n_attempts: 0,
                        attempts: Vec::new(),
                    };
                    pending
                        .insert((target.as_str(), next_id), encode(&delivery)?.as_slice())
                        .map_err(backend)?;
                    targets.insert(target.as_str(), 0).map_err(backend)?;
                    next_id += 1;
                }
                meta.insert(NEXT_ID, next_id).map_err(backend)?;
            }
            txn.commit().map_err(backend)
        })
        .await
    }

    async fn heads(&self) -> Result<Vec<Delivery>, StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(backend)?;
            let targets = txn.open_table(TARGETS).map_err(backend)?;
            let pending = txn.open_table(PENDING).map_err(backend)?;
            let mut heads = Vec::new();
            for entry in targets.iter().map_err(backend)? {
                let (target, _) = entry.map_err(backend)?;
                let target = target.value();
                let mut range = pending
                    .range((target, 0)..=(target, u64::MAX))
                    .map_err(backend)?;
                if let Some(first) = range.next() {
                    let (_, value) = first.map_err(backend)?;
                    heads.push(decode(value.value())?);
                }
            }
            Ok(heads)
        })
        .await
    }

    async fn delivered(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let target = delivery.request.target();
        let id = delivery.id;
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            {
                let mut pending = txn.open_table(PENDING).map_err(backend)?;
                pending.remove((target.as_str(), id)).map_err(backend)?;
                drop_target_if_idle(&txn, &pending, &target)?;
            }
            txn.commit().map_err(backend)
        })
        .await
    }

    async fn failed(
        &self,
        delivery: &Delivery,
        next_attempt_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut delivery = delivery.clone();
        self.blocking(move |db| {
            let target = delivery.request.target();
            let txn = db.begin_write().map_err(backend)?;
            {
                let mut pending = txn.open_table(PENDING).map_err(backend)?;
                match next_attempt_ms {
                    Some(next) => {
                        delivery.next_attempt_ms = next;
                        pending
                            .insert(
                                (target.as_str(), delivery.id),
                                encode(&delivery)?.as_slice(),
                            )
                            .map_err(backend)?;
                    }
                    None => {
                        pending
                            .remove((target.as_str(), delivery.id))
                            .map_err(backend)?;
                        delivery.state = DeliveryState::Dead;
                        let mut dead = txn.open_table(DEAD).map_err(backend)?;
                        dead.insert(
                            (delivery.request.app_id.as_str(), delivery.id),
                            encode(&delivery)?.as_slice(),
                        )
                        .map_err(backend)?;
                        drop_target_if_idle(&txn, &pending, &target)?;
                    }
                }
            }
            txn.commit().map_err(backend)
        })
        .await
    }

    async fn list(
        &self,
        app_id: &str,
        state: DeliveryState,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let app_id = app_id.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let mut found = Vec::new();
            match state {
                DeliveryState::Dead => {
                    let dead = txn.open_table(DEAD).map_err(backend)?;
                    for entry in dead
                        .range((app_id.as_str(), 0)..=(app_id.as_str(), u64::MAX))
                        .map_err(backend)?
                        .take(limit)
                    {
                        found.push(decode(entry.map_err(backend)?.1.value())?);
                    }
                }
                DeliveryState::Pending => {
                    let pending = txn.open_table(PENDING).map_err(backend)?;
                    for entry in pending.iter().map_err(backend)? {
                        let delivery = decode(entry.map_err(backend)?.1.value())?;
                        if delivery.request.app_id == app_id {
                            found.push(delivery);
                        }
                    }
                    found.sort_by_key(|delivery| delivery.id);
                    found.truncate(limit);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn retry(&self, app_id: &str, id: Option<u64>, now_ms: u64) -> Result<usize, StoreError> {
        let app_id = app_id.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            let moved;
            {
                let mut dead = txn.open_table(DEAD).map_err(backend)?;
                let mut chosen = Vec::new();
                let range = match id {
                    Some(id) => (app_id.as_str(), id)..=(app_id.as_str(), id),
                    None => (app_id.as_str(), 0)..=(app_id.as_str(), u64::MAX),
                };
                for entry in dead.range(range).map_err(backend)? {
                    chosen.push(decode(entry.map_err(backend)?.1.value())?);
                }
                let mut pending = txn.open_table(PENDING).map_err(backend)?;
                let mut targets = txn.open_table(TARGETS).map_err(backend)?;
                for mut delivery in chosen.iter().cloned() {
                    dead.remove((app_id.as_str(), delivery.id))
                        .map_err(backend)?;
                    delivery.state = DeliveryState::Pending;
                    delivery.next_attempt_ms = now_ms;
                    // A retried delivery gets a fresh maximum age.
                    delivery.request.created_ms = now_ms;
                    let target = delivery.request.target();
                    pending
                        .insert(
                            (target.as_str(), delivery.id),
                            encode(&delivery)?.as_slice(),
                        )
                        .map_err(backend)?;
                    targets.insert(target.as_str(), 0).map_err(backend)?;
                }
                moved = chosen.len();
            }
            txn.commit().map_err(backend)?;
            Ok(moved)
        })
        .await
    }

    async fn drop_delivery(&self, app_id: &str, id: u64) -> Result<bool, StoreError> {
        let app_id = app_id.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            let mut removed = txn
                .open_table(DEAD)
                .map_err(backend)?
                .remove((app_id.as_str(), id))
                .map_err(backend)?
                .is_some();
            if !removed {
                let mut pending = txn.open_table(PENDING).map_err(backend)?;
                let mut key = None;
                for entry in pending.iter().map_err(backend)? {
                    let (stored_key, value) = entry.map_err(backend)?;
                    let (target, stored_id) = stored_key.value();
                    if stored_id == id && decode(value.value())?.request.app_id == app_id {
                        key = Some(target.to_owned());
                        break;
                    }
                }
                if let Some(target) = key {
                    pending.remove((target.as_str(), id)).map_err(backend)?;
                    removed = true;
                    drop_target_if_idle(&txn, &pending, &target)?;
                }
            }
            txn.commit().map_err(backend)?;
            Ok(removed)
        })
        .await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(backend)?;
            let pending = txn.open_table(PENDING).map_err(backend)?;
            let dead = txn.open_table(DEAD).map_err(backend)?;
            let targets = txn.open_table(TARGETS).map_err(backend)?;
            let mut oldest: Option<u64> = None;
            for entry in targets.iter().map_err(backend)? {
                let (target, _) = entry.map_err(backend)?;
                let target = target.value();
                if let Some(first) = pending
                    .range((target, 0)..=(target, u64::MAX))
                    .map_err(backend)?
                    .next()
                {
                    let created = decode(first.map_err(backend)?.1.value())?
                        .request
                        .created_ms;
                    oldest = Some(oldest.map_or(created, |o| o.min(created)));
                }
            }
            Ok(StoreStats {
                pending: pending.len().map_err(backend)?,
                dead: dead.len().map_err(backend)?,
                oldest_pending_ms: oldest,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, body: &str) -> NewDelivery {
        NewDelivery {
            app_id: "1".into(),
            url: url.into(),
            headers: Vec::new(),
            body: body.into(),
            created_ms: 1000,
        }
    }

    #[tokio::test]
    async fn deliveries_survive_reopening_and_keep_their_order_per_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.redb");
        {
            let store = EmbeddedStore::open(&path).unwrap();
            store
                .append(vec![
                    request("http://a", "1"),
                    request("http://b", "x"),
                    request("http://a", "2"),
                ])
                .await
                .unwrap();
        }
        let store = EmbeddedStore::open(&path).unwrap();
        let mut heads = store.heads().await.unwrap();
        heads.sort_by(|a, b| a.request.url.cmp(&b.request.url));
        let bodies: Vec<_> = heads.iter().map(|d| d.request.body.as_str()).collect();
        assert_eq!(bodies, ["1", "x"]);
        store.delivered(&heads[0]).await.unwrap();
        let next = store.heads().await.unwrap();
        assert!(next.iter().any(|d| d.request.body == "2"));
        assert_eq!(store.stats().await.unwrap().pending, 2);
    }

    #[tokio::test]
    async fn failed_deliveries_retry_then_die_and_can_be_revived_or_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("outbox.redb")).unwrap();
        store
            .append(vec![request("http://a", "1"), request("http://a", "2")])
            .await
            .unwrap();
        let mut head = store.heads().await.unwrap().remove(0);
        head.record(super::super::store::Attempt {
            at_ms: 1,
            status: Some(500),
            latency_ms: 3,
            error: None,
        });
        store.failed(&head, Some(5000)).await.unwrap();
        let again = store.heads().await.unwrap().remove(0);
        assert_eq!(
            (again.id, again.n_attempts, again.next_attempt_ms),
            (head.id, 1, 5000)
        );
        store.failed(&again, None).await.unwrap();
        let dead = store.list("1", DeliveryState::Dead, 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].attempts[0].status, Some(500));
        // The next delivery of the target is now its head.
        assert_eq!(store.heads().await.unwrap()[0].request.body, "2");
        assert_eq!(store.retry("1", Some(dead[0].id), 9000).await.unwrap(), 1);
        assert_eq!(store.heads().await.unwrap()[0].request.body, "1");
        assert!(store.drop_delivery("1", dead[0].id).await.unwrap());
        assert!(!store.drop_delivery("1", dead[0].id).await.unwrap());
        assert_eq!(
            store.stats().await.unwrap(),
            StoreStats {
                pending: 1,
                dead: 0,
                oldest_pending_ms: Some(1000)
            }
        );
    }
}
