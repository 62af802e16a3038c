//! The webhook outbox in Redis, for clusters: a delivery survives the node that produced it, and any
//! node may send it. Each target's deliveries form a list sent strictly in order by whichever node
//! holds the target's lease; a dead node's leases expire and another node carries on.
//! Durability is Redis's: run it with `appendonly yes` (see docs/webhooks.md).

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use redis::{AsyncCommands, Script};

use super::backend::Backend;
use crate::{
    app::Apps,
    webhooks::store::{
        Delivery, DeliveryState, DeliveryStore, NewDelivery, StoreError, StoreStats,
    },
};

pub struct RedisOutbox {
    backend: Backend,
    node_id: String,
    /// How long a node holds a target before others may take it over; renewed on every pass, and longer
    /// than any request, so two nodes never send the same target at once.
    lease: Duration,
    /// `{prefix:webhooks}:`, one hash slot for the whole outbox so scripts see every key.
    base: String,
    apps: Apps,
    heads: Script,
}

fn backend_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

impl RedisOutbox {
    pub(super) fn new(
        backend: Backend,
        node_id: String,
        prefix: &str,
        apps: Apps,
        lease: Duration,
    ) -> Arc<RedisOutbox> {
        Arc::new(RedisOutbox {
            backend,
            node_id,
            lease,
            base: format!("{{{prefix}:webhooks}}:"),
            apps,
            heads: Script::new(
                r#"
local base = ARGV[1]
local heads = {}
for _, target in ipairs(redis.call('SMEMBERS', base .. 'targets')) do
  local lease = redis.call('GET', base .. 'lease:' .. target)
  if not lease or lease == ARGV[2] then
    local id = redis.call('LINDEX', base .. 't:' .. target, 0)
    if id then
      redis.call('SET', base .. 'lease:' .. target, ARGV[2], 'PX', ARGV[3])
      local delivery = redis.call('GET', base .. 'd:' .. id)
      if delivery then table.insert(heads, delivery) else redis.call('LPOP', base .. 't:' .. target) end
    else
      redis.call('SREM', base .. 'targets', target)
    end
  end
end
return heads
"#,
            ),
        })
    }

    fn delivery_key(&self, id: u64) -> String {
        format!("{}d:{id}", self.base)
    }
    fn target_key(&self, target: &str) -> String {
        format!("{}t:{target}", self.base)
    }
    fn targets_key(&self) -> String {
        format!("{}targets", self.base)
    }
    fn dead_key(&self, app_id: &str) -> String {
        format!("{}dead:{app_id}", self.base)
    }

    fn connection(&self) -> Backend {
        self.backend.clone()
    }

    async fn load(&self, ids: &[u64]) -> Result<Vec<Delivery>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.delivery_key(*id)).collect();
        let found: Vec<Option<String>> =
            self.connection().mget(keys).await.map_err(backend_error)?;
        found
            .into_iter()
            .flatten()
            .map(|json| serde_json::from_str(&json).map_err(backend_error))
            .collect()
    }

    /// Removes `id` from its target's list, and the target from the set once its list is empty.
    fn unlink(&self, pipe: &mut redis::Pipeline, target: &str, id: u64) {
        pipe.lrem(self.target_key(target), 1, id).ignore();
    }
}

fn encode(delivery: &Delivery) -> Result<String, StoreError> {
    serde_json::to_string(delivery).map_err(backend_error)
}

#[async_trait]
impl DeliveryStore for RedisOutbox {
    async fn append(&self, deliveries: Vec<NewDelivery>) -> Result<(), StoreError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut connection = self.connection();
        let last: u64 = connection
            .incr(format!("{}next", self.base), deliveries.len() as u64)
            .await
            .map_err(backend_error)?;
        let first = last + 1 - deliveries.len() as u64;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (id, request) in (first..).zip(deliveries) {
            let target = request.target();
            let delivery = Delivery {
                id,
                next_attempt_ms: request.created_ms,
                request,
                state: DeliveryState::Pending,
                n_attempts: 0,
                attempts: Vec::new(),
            };
            pipe.set(self.delivery_key(id), encode(&delivery)?).ignore();
            pipe.rpush(self.target_key(&target), id).ignore();
            pipe.sadd(self.targets_key(), &target).ignore();
        }
        pipe.exec_async(&mut connection)
            .await
            .map_err(backend_error)
    }

    async fn heads(&self) -> Result<Vec<Delivery>, StoreError> {
        let found: Vec<String> = self
            .heads
            .arg(&self.base)
            .arg(&self.node_id)
            .arg(self.lease.as_millis() as u64)
            .invoke_async(&mut self.connection())
            .await
            .map_err(backend_error)?;
        found
            .iter()
            .map(|json| serde_json::from_str(json).map_err(backend_error))
            .collect()
    }

    async fn delivered(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.unlink(&mut pipe, &delivery.request.target(), delivery.id);
        pipe.del(self.delivery_key(delivery.id)).ignore();
        pipe.exec_async(&mut self.connection())
            .await
            .map_err(backend_error)
    }

    async fn failed(
        &self,
        delivery: &Delivery,
        next_attempt_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut delivery = delivery.clone();
        let mut pipe = redis::pipe();
        pipe.atomic();
        match next_attempt_ms {
            Some(next) => delivery.next_attempt_ms = next,
            None => {
                delivery.state = DeliveryState::Dead;
                self.unlink(&mut pipe, &delivery.request.target(), delivery.id);
                pipe.zadd(
                    self.dead_key(&delivery.request.app_id),
                    delivery.id,
                    delivery.id as f64,
                )
                .ignore();
            }
        }
        pipe.set(self.delivery_key(delivery.id), encode(&delivery)?)
            .ignore();
        pipe.exec_async(&mut self.connection())
            .await
            .map_err(backend_error)
    }

    async fn list(
        &self,
        app_id: &str,
        state: DeliveryState,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut connection = self.connection();
        let ids: Vec<u64> = match state {
            DeliveryState::Dead => connection
                .zrange(self.dead_key(app_id), 0, limit as isize - 1)
                .await
                .map_err(backend_error)?,
            DeliveryState::Pending => {
                let targets: Vec<String> = connection
                    .smembers(self.targets_key())
                    .await
                    .map_err(backend_error)?;
                let mut ids = Vec::new();
                for target in targets
                    .iter()
                    .filter(|target| target.starts_with(&format!("{app_id} ")))
                {
                    let listed: Vec<u64> = connection
                        .lrange(self.target_key(target), 0, limit as isize - 1)
                        .await
                        .map_err(backend_error)?;
                    ids.extend(listed);
                }
                ids.sort_unstable();
                ids.truncate(limit);
                ids
            }
        };
        self.load(&ids).await
    }

    async fn retry(&self, app_id: &str, id: Option<u64>, now_ms: u64) -> Result<usize, StoreError> {
        let mut connection = self.connection();
        let ids: Vec<u64> = match id {
            Some(id) => {
                let score: Option<f64> = connection
                    .zscore(self.dead_key(app_id), id)
                    .await
                    .map_err(backend_error)?;
                score.map(|_| vec![id]).unwrap_or_default()
            }
            None => connection
                .zrange(self.dead_key(app_id), 0, -1)
                .await
                .map_err(backend_error)?,
        };
        let deliveries = self.load(&ids).await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        // Back to the head of their lists, lowest id first, as they were when they died.
        for mut delivery in deliveries.iter().rev().cloned() {
            delivery.state = DeliveryState::Pending;
            delivery.next_attempt_ms = now_ms;
            delivery.request.created_ms = now_ms;
            let target = delivery.request.target();
            pipe.zrem(self.dead_key(app_id), delivery.id).ignore();
            pipe.set(self.delivery_key(delivery.id), encode(&delivery)?)
                .ignore();
            pipe.lpush(self.target_key(&target), delivery.id).ignore();
            pipe.sadd(self.targets_key(), &target).ignore();
        }
        pipe.exec_async(&mut connection)
            .await
            .map_err(backend_error)?;
        Ok(deliveries.len())
    }

    async fn drop_delivery(&self, app_id: &str, id: u64) -> Result<bool, StoreError> {
        let Some(delivery) = self.load(&[id]).await?.pop() else {
            return Ok(false);
        };
        if delivery.request.app_id != app_id {
            return Ok(false);
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.unlink(&mut pipe, &delivery.request.target(), id);
        pipe.zrem(self.dead_key(app_id), id).ignore();
        pipe.del(self.delivery_key(id)).ignore();
        pipe.exec_async(&mut self.connection())
            .await
            .map_err(backend_error)?;
        Ok(true)
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut connection = self.connection();
        let targets: Vec<String> = connection
            .smembers(self.targets_key())
            .await
            .map_err(backend_error)?;
        let mut stats = StoreStats::default();
        for target in &targets {
            let length: u64 = connection
                .llen(self.target_key(target))
                .await
                .map_err(backend_error)?;
            stats.pending += length;
            let head: Option<u64> = connection
                .lindex(self.target_key(target), 0)
                .await
                .map_err(backend_error)?;
            if let Some(delivery) = self
                .load(&head.into_iter().collect::<Vec<_>>())
                .await?
                .pop()
            {
                let created = delivery.request.created_ms;
                stats.oldest_pending_ms =
                    Some(stats.oldest_pending_ms.map_or(created, |o| o.min(created)));
            }
        }
        for app in self.apps.iter() {
            let dead: u64 = connection
                .zcard(self.dead_key(app.id.as_str()))
                .await
                .map_err(backend_error)?;
            stats.dead += dead;
        }
        Ok(stats)
    }
}
