"""The Lua scripts of the Redis queue (``bot/queue/redis.py``) and the keys they use. Each step of
the queue is one script, so Redis runs it atomically; ``docs/redis.md`` explains the data model and
why each step is correct.

Keys (``P`` is the prefix, ``threadline:`` by default; ``Q`` a queue key ``team:channel``)::

    P job:{id}        hash    data (the job's JSON at enqueue), queue_key, thread_key,
                              status, tries, worker, enqueued_at
    P line:{Q}        list    ids of the channel's waiting jobs, the next to claim first
    P ready           zset    Q -> enqueued_at of its line's head (only channels with waiting jobs)
    P inflight:{Q}    zset    id -> lease deadline (ms) of the channel's jobs in progress
    P threads:{Q}     hash    thread_key -> id of the thread's job in progress
    P leases          zset    id -> lease deadline (ms) of every job in progress (to reap lapses)
    P waiting         set     ids of every waiting job, all channels (the bound ``max_total``)
    P wake            list    wake-up tokens for blocked ``claim`` calls (a few at most)
"""

from __future__ import annotations

from bot.redis import KEY_PREFIX, LUA_NOW_MS
from bot.redis import key as redis_key

DEFAULT_PREFIX = KEY_PREFIX
WAKE_TOKENS = 8  # the wake-up list is trimmed to this many tokens


def job_key(prefix: str, job_id: str) -> str:
    return redis_key(prefix, "job", job_id)


def line_key(prefix: str, queue_key: str) -> str:
    return redis_key(prefix, "line", queue_key)


def inflight_key(prefix: str, queue_key: str) -> str:
    return redis_key(prefix, "inflight", queue_key)


def threads_key(prefix: str, queue_key: str) -> str:
    return redis_key(prefix, "threads", queue_key)


def ready_key(prefix: str) -> str:
    return redis_key(prefix, "ready")


def leases_key(prefix: str) -> str:
    return redis_key(prefix, "leases")


def wake_key(prefix: str) -> str:
    return redis_key(prefix, "wake")


def waiting_key(prefix: str) -> str:
    return redis_key(prefix, "waiting")


# Shared by every script. ARGV[1] is the prefix; the key helpers mirror the Python ones above.
_PRELUDE = f"""
local P = ARGV[1]
local READY = P .. 'ready'
local LEASES = P .. 'leases'
local WAKE = P .. 'wake'
local WAITING = P .. 'waiting'
local function jkey(id) return P .. 'job:' .. id end
local function lkey(qk) return P .. 'line:' .. qk end
local function ikey(qk) return P .. 'inflight:' .. qk end
local function tkey(qk) return P .. 'threads:' .. qk end

{LUA_NOW_MS}
local function nowmilliseconds() return math.floor(now_ms()) end

-- The ready zset holds a channel iff its line is not empty, scored by its head's enqueue time.
local function fix_ready(qk)
  local head = redis.call('LINDEX', lkey(qk), 0)
  if head then
    redis.call('ZADD', READY, redis.call('HGET', jkey(head), 'enqueued_at'), qk)
  else
    redis.call('ZREM', READY, qk)
  end
end

local function wake(n)
  if n < 1 then return end
  for _ = 1, math.min(n, {WAKE_TOKENS}) do redis.call('LPUSH', WAKE, '1') end
  redis.call('LTRIM', WAKE, 0, {WAKE_TOKENS - 1})
end

-- Forget a job's lease everywhere (it is no longer in progress).
local function unlease(id, qk, tk)
  redis.call('ZREM', LEASES, id)
  redis.call('ZREM', ikey(qk), id)
  if tk and redis.call('HGET', tkey(qk), tk) == id then redis.call('HDEL', tkey(qk), tk) end
end

-- The lease of job id is held by (worker, tries) and has not lapsed. tries is the fencing token:
-- a worker name is shared by the claim loops of one process, tries changes at every claim.
local function holds(id, worker, tries, now)
  local f = redis.call('HMGET', jkey(id), 'status', 'worker', 'tries')
  if f[1] ~= 'in_progress' or f[2] ~= worker or f[3] ~= tries then return false end
  local deadline = redis.call('ZSCORE', LEASES, id)
  return deadline ~= false and tonumber(deadline) > now
end
"""

# ARGV: prefix, id, queue_key, thread_key, data, tries, max_waiting, max_total
# -> {1, ahead} already queued (idempotent) | {0, waiting} channel full | {3, waiting} all full
#    | {2, ahead} queued now
ENQUEUE_SCRIPT = (
    _PRELUDE
    + """
local id, qk, tk, data, tries = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local maxw, maxt = tonumber(ARGV[7]), tonumber(ARGV[8])
local busy = redis.call('ZCARD', ikey(qk))
local status = redis.call('HGET', jkey(id), 'status')
if status then
  local pos = redis.call('LPOS', lkey(qk), id)
  if pos then return {1, pos + busy} end
  return {1, busy}
end
local n = redis.call('LLEN', lkey(qk))
if n >= maxw then return {0, n} end
local total = redis.call('SCARD', WAITING)
if total >= maxt then return {3, total} end
local t = redis.call('TIME')
local enq = t[1] .. '.' .. string.rep('0', 6 - #t[2]) .. t[2]
redis.call('HSET', jkey(id), 'data', data, 'queue_key', qk, 'thread_key', tk,
           'status', 'queued', 'tries', tries, 'worker', '', 'enqueued_at', enq)
redis.call('RPUSH', lkey(qk), id)
redis.call('SADD', WAITING, id)
if n == 0 then redis.call('ZADD', READY, enq, qk) end
wake(1)
return {2, n + busy}
"""
)

# ARGV: prefix, worker, lease_ms, channel_concurrency
# -> {1, HGETALL of the claimed job} | {0, ms until the next lease lapses, or -1 if none}
CLAIM_SCRIPT = (
    _PRELUDE
    + """
local worker, lease_ms, conc = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local now = nowmilliseconds()

-- 1. Lapsed leases: their jobs go back to the front of their line, oldest first.
local lapsed = redis.call('ZRANGEBYSCORE', LEASES, '-inf', now)
if #lapsed > 0 then
  local back = {}
  for _, id in ipairs(lapsed) do
    local f = redis.call('HMGET', jkey(id), 'queue_key', 'thread_key', 'enqueued_at')
    redis.call('ZREM', LEASES, id)
    if f[1] then
      unlease(id, f[1], f[2])
      redis.call('HSET', jkey(id), 'status', 'queued', 'worker', '')
      back[f[1]] = back[f[1]] or {}
      table.insert(back[f[1]], {tonumber(f[3]), id})
    end
  end
  for qk, jobs in pairs(back) do
    table.sort(jobs, function(a, b)
      if a[1] ~= b[1] then return a[1] > b[1] end
      return a[2] > b[2]
    end)
    for _, j in ipairs(jobs) do
      redis.call('LPUSH', lkey(qk), j[2])
      redis.call('SADD', WAITING, j[2])
    end
    fix_ready(qk)
  end
  wake(#lapsed)  -- other waiters may take what this claim does not
end

-- 2. The oldest-head channel with a free slot, its first job whose thread is not in progress.
for _, qk in ipairs(redis.call('ZRANGE', READY, 0, -1)) do
  if redis.call('ZCARD', ikey(qk)) < conc then
    for _, id in ipairs(redis.call('LRANGE', lkey(qk), 0, -1)) do
      local tk = redis.call('HGET', jkey(id), 'thread_key')
      if not tk then
        redis.call('LREM', lkey(qk), 0, id)  -- no job behind this id: drop the stray entry
        redis.call('SREM', WAITING, id)
        fix_ready(qk)
      elseif redis.call('HEXISTS', tkey(qk), tk) == 0 then
        local deadline = now + lease_ms
        redis.call('LREM', lkey(qk), 1, id)
        redis.call('SREM', WAITING, id)
        fix_ready(qk)
        redis.call('ZADD', ikey(qk), deadline, id)
        redis.call('ZADD', LEASES, deadline, id)
        redis.call('HSET', tkey(qk), tk, id)
        redis.call('HINCRBY', jkey(id), 'tries', 1)
        redis.call('HSET', jkey(id), 'status', 'in_progress', 'worker', worker)
        return {1, redis.call('HGETALL', jkey(id))}
      end
    end
  end
end

local nxt = redis.call('ZRANGE', LEASES, 0, 0, 'WITHSCORES')
if #nxt == 0 then return {0, -1} end
return {0, math.max(0, tonumber(nxt[2]) - now)}
"""
)

# ARGV: prefix, id, worker, tries, lease_ms -> 1 renewed | 0 lease not held
HEARTBEAT_SCRIPT = (
    _PRELUDE
    + """
local id, worker, tries, lease_ms = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local now = nowmilliseconds()
if not holds(id, worker, tries, now) then return 0 end
local qk = redis.call('HGET', jkey(id), 'queue_key')
local deadline = now + lease_ms
redis.call('ZADD', LEASES, 'XX', deadline, id)
redis.call('ZADD', ikey(qk), 'XX', deadline, id)
return 1
"""
)

# ARGV: prefix, id, worker, tries -> 1 done | 0 lease not held
COMPLETE_SCRIPT = (
    _PRELUDE
    + """
local id, worker, tries = ARGV[2], ARGV[3], ARGV[4]
if not holds(id, worker, tries, nowmilliseconds()) then return 0 end
local f = redis.call('HMGET', jkey(id), 'queue_key', 'thread_key')
unlease(id, f[1], f[2])
redis.call('DEL', jkey(id))
wake(1)
return 1
"""
)

# ARGV: prefix, id, worker, tries, unclaim -> 1 handed back | 0 lease not held
# unclaim = '1': the claim never reached its worker (cancelled): the try it counted is taken back.
RELEASE_SCRIPT = (
    _PRELUDE
    + """
local id, worker, tries, unclaim = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not holds(id, worker, tries, nowmilliseconds()) then return 0 end
local f = redis.call('HMGET', jkey(id), 'queue_key', 'thread_key')
unlease(id, f[1], f[2])
redis.call('HSET', jkey(id), 'status', 'queued', 'worker', '')
if unclaim == '1' then redis.call('HINCRBY', jkey(id), 'tries', -1) end
redis.call('LPUSH', lkey(f[1]), id)
redis.call('SADD', WAITING, id)
fix_ready(f[1])
wake(1)
return 1
"""
)

# ARGV: prefix, queue_key -> a list of HGETALL replies, in line order (a consistent snapshot)
WAITING_SCRIPT = (
    _PRELUDE
    + """
local out = {}
for _, id in ipairs(redis.call('LRANGE', lkey(ARGV[2]), 0, -1)) do
  local h = redis.call('HGETALL', jkey(id))
  if #h > 0 then table.insert(out, h) end
end
return out
"""
)
