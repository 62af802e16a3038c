//! Key names and the Lua scripts that change cluster-wide state atomically. Every key of an app shares
//! the hash tag `{prefix:app}`, so one script sees one slot even on a Redis Cluster.
//! State is owned by node: each node's share of a count sits in its own hash field, so a dead node's
//! share can be removed exactly once, however many survivors race to do it.

use redis::Script;

/// The keys of one app.
pub(super) struct AppKeys {
    /// `{prefix:app}:`, the start of every key of the app.
    pub base: String,
}

impl AppKeys {
    pub fn new(prefix: &str, app_id: &str) -> AppKeys {
        AppKeys {
            base: format!("{{{prefix}:{app_id}}}:"),
        }
    }

    /// Channels with at least one subscription somewhere.
    pub fn channels(&self) -> String {
        format!("{}channels", self.base)
    }
    /// Hash: node → subscriptions on that node.
    pub fn subscriptions(&self, channel: &str) -> String {
        format!("{}ch:{channel}", self.base)
    }
    /// Hash: user → sockets in the presence channel, cluster-wide.
    pub fn presence_users(&self, channel: &str) -> String {
        format!("{}pu:{channel}", self.base)
    }
    /// Hash: user → `user_info` JSON of its first socket.
    pub fn presence_info(&self, channel: &str) -> String {
        format!("{}pi:{channel}", self.base)
    }
    /// Hash: "node\nuser" → sockets of that user on that node.
    pub fn presence_nodes(&self, channel: &str) -> String {
        format!("{}pn:{channel}", self.base)
    }
    /// Set: channels where `node` has subscriptions.
    pub fn node(&self, node: &str) -> String {
        format!("{}node:{node}", self.base)
    }
    /// Hash: user → signed-in sockets, cluster-wide.
    pub fn users(&self) -> String {
        format!("{}users", self.base)
    }
    /// Hash: "node\nuser" → signed-in sockets of that user on that node.
    pub fn user_nodes(&self) -> String {
        format!("{}un", self.base)
    }
    /// Set while a channel's vacate (no `user`) or a member's removal (with `user`) waits out the
    /// webhook grace window, so a return on any node cancels it.
    pub fn grace(&self, channel: &str, user: Option<&str>) -> String {
        match user {
            Some(user) => format!("{}grace:{channel}\n{user}", self.base),
            None => format!("{}grace:{channel}", self.base),
        }
    }
    pub fn cache(&self, channel: &str) -> String {
        format!("{}cache:{channel}", self.base)
    }
    pub fn seen(&self, key: &str) -> String {
        format!("{}seen:{key}", self.base)
    }
    /// The pub/sub channel every node of the cluster listens on for this app.
    pub fn events(&self) -> String {
        format!("{}events", self.base)
    }
}

/// KEYS: channels, subscriptions, node, presence_users, presence_info, presence_nodes, channel grace,
/// member grace. ARGV: node, channel, is_presence, user, user_info, max_members.
/// Returns {occupied, member_added, total, {user, info, …}, member_resumed} or {-1} when the presence
/// channel is full. A join that ends a pending vacate (or removal) reports occupied 0 (resumed 1).
pub(super) fn join() -> Script {
    Script::new(
        r#"
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do total = total + tonumber(v) end
local member_added = 0
local members = {}
if ARGV[3] == '1' then
  local user = ARGV[4]
  if redis.call('HEXISTS', KEYS[4], user) == 0 then
    if redis.call('HLEN', KEYS[4]) >= tonumber(ARGV[6]) then return {-1} end
    member_added = 1
    redis.call('HSET', KEYS[5], user, ARGV[5])
  end
  redis.call('HINCRBY', KEYS[4], user, 1)
  redis.call('HINCRBY', KEYS[6], ARGV[1] .. '\n' .. user, 1)
  members = redis.call('HGETALL', KEYS[5])
end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('SADD', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
local occupied = 0
if total == 0 and redis.call('DEL', KEYS[7]) == 0 then occupied = 1 end
local resumed = 0
if member_added == 1 and redis.call('DEL', KEYS[8]) == 1 then resumed = 1 end
return {occupied, member_added, total + 1, members, resumed}
"#,
    )
}

/// KEYS: as `join`. ARGV: node, channel, is_presence, user, grace key lifetime in ms (0: no grace).
/// Returns {vacated, member_removed, total}; total is -1 when this node had no such subscription.
pub(super) fn leave() -> Script {
    Script::new(
        r#"
local mine = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if mine <= 0 then return {0, 0, -1} end
if mine == 1 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('SREM', KEYS[3], ARGV[2])
else
  redis.call('HINCRBY', KEYS[2], ARGV[1], -1)
end
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do total = total + tonumber(v) end
local vacated = 0
if total == 0 then
  redis.call('SREM', KEYS[1], ARGV[2])
  vacated = 1
end
local member_removed = 0
if ARGV[3] == '1' then
  local field = ARGV[1] .. '\n' .. ARGV[4]
  local n = tonumber(redis.call('HGET', KEYS[6], field) or '0')
  if n > 0 then
    if n == 1 then redis.call('HDEL', KEYS[6], field) else redis.call('HINCRBY', KEYS[6], field, -1) end
    if redis.call('HINCRBY', KEYS[4], ARGV[4], -1) <= 0 then
      redis.call('HDEL', KEYS[4], ARGV[4])
      redis.call('HDEL', KEYS[5], ARGV[4])
      member_removed = 1
    end
  end
end
if tonumber(ARGV[5]) > 0 then
  if vacated == 1 then redis.call('SET', KEYS[7], '1', 'PX', ARGV[5]) end
  if member_removed == 1 then redis.call('SET', KEYS[8], '1', 'PX', ARGV[5]) end
end
return {vacated, member_removed, total}
"#,
    )
}

/// KEYS: users, user_nodes. ARGV: node, user. Returns 1 when the user just came online.
pub(super) fn sign_in() -> Script {
    Script::new(
        r#"
redis.call('HINCRBY', KEYS[2], ARGV[1] .. '\n' .. ARGV[2], 1)
if redis.call('HINCRBY', KEYS[1], ARGV[2], 1) == 1 then return 1 end
return 0
"#,
    )
}

/// KEYS: users, user_nodes. ARGV: node, user. Returns 1 when the user just went offline.
pub(super) fn sign_out() -> Script {
    Script::new(
        r#"
local field = ARGV[1] .. '\n' .. ARGV[2]
local n = tonumber(redis.call('HGET', KEYS[2], field) or '0')
if n <= 0 then return 0 end
if n == 1 then redis.call('HDEL', KEYS[2], field) else redis.call('HINCRBY', KEYS[2], field, -1) end
if redis.call('HINCRBY', KEYS[1], ARGV[2], -1) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[2])
  return 1
end
return 0
"#,
    )
}

/// Removes everything a node owns in one app.
/// KEYS: channels, node, users, user_nodes. ARGV: node, the app's key base.
/// Returns {{{channel, vacated, {removed users…}}, …}, {users now offline…}}.
pub(super) fn remove_node() -> Script {
    Script::new(
        r#"
local node = ARGV[1]
local base = ARGV[2]
local prefix = node .. '\n'
local effects = {}
for _, chan in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local subs = base .. 'ch:' .. chan
  redis.call('HDEL', subs, node)
  local pn = base .. 'pn:' .. chan
  local pu = base .. 'pu:' .. chan
  local pi = base .. 'pi:' .. chan
  local removed = {}
  local fields = redis.call('HGETALL', pn)
  for i = 1, #fields, 2 do
    local field = fields[i]
    if string.sub(field, 1, #prefix) == prefix then
      local user = string.sub(field, #prefix + 1)
      redis.call('HDEL', pn, field)
      if redis.call('HINCRBY', pu, user, -tonumber(fields[i + 1])) <= 0 then
        redis.call('HDEL', pu, user)
        redis.call('HDEL', pi, user)
        table.insert(removed, user)
      end
    end
  end
  local total = 0
  for _, v in ipairs(redis.call('HVALS', subs)) do total = total + tonumber(v) end
  local vacated = 0
  if total == 0 then
    redis.call('SREM', KEYS[1], chan)
    vacated = 1
  end
  table.insert(effects, {chan, vacated, removed})
end
redis.call('DEL', KEYS[2])
local offline = {}
local fields = redis.call('HGETALL', KEYS[4])
for i = 1, #fields, 2 do
  local field = fields[i]
  if string.sub(field, 1, #prefix) == prefix then
    local user = string.sub(field, #prefix + 1)
    redis.call('HDEL', KEYS[4], field)
    if redis.call('HINCRBY', KEYS[3], user, -tonumber(fields[i + 1])) <= 0 then
      redis.call('HDEL', KEYS[3], user)
      table.insert(offline, user)
    end
  end
end
return {effects, offline}
"#,
    )
}

/// Sums the integer values of a hash field listing.
pub(super) fn sum(values: &[i64]) -> usize {
    values.iter().copied().filter(|v| *v > 0).sum::<i64>() as usize
}
