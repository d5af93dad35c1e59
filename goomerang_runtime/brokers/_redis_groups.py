"""Queue groups on Redis: the script that publishes and picks each group's member, and the registry's layout.

Redis pub/sub has no queue groups, so the choice is made where every
publication passes anyway: one Lua script publishes the envelope to its
topic's channel and, in the same atomic step, picks for each queue group
whose members match the topic one replica, weighted by its members, in
strict rotation (a counter per group), and publishes the envelope to that
replica's own channel. A replica nobody listens to any more (PUBLISH
reaches no one) is skipped and its registry entries are removed: it is
gone, or reconnecting, and a reconnecting replica registers afresh.

The registry: ``{prefix}:q:l:<topic>`` (literal patterns) holds the field
``<group>\\n<replica>``, ``{prefix}:q:w`` (wildcard patterns) the field
``<group>\\n<replica>\\n<pattern>``, each with the replica's number of members;
``{prefix}:q:n`` holds each group's counter. Group names and replica ids
hold no newline; a pattern comes last, so it may.

With a shared history (``RedisBroker(history=True)``) the same script
also numbers the publication: ``{prefix}:h:m:<topic>`` holds the topic's
epoch (``e``, made once from a random value and Redis' clock, so a wiped
Redis starts a new one) and its last offset (``n``, ``HINCRBY``); the
envelope goes to the stream ``{prefix}:h:s:<topic>`` under the id
``<offset>-0`` (``XADD MAXLEN``, exact), with the time it was added when
there is a ttl (and the stream expires when idle that long); the topic's
channel gets ``<epoch>:<offset>\\n<envelope>``. Group deliveries carry no
position. :data:`READ_SCRIPT` reads a topic's position and what followed
an offset in one atomic step.

Redis runs one script at a time, so members registered before a
publication's script runs are seen by it, and none after: a subscription
confirmed by Redis is in effect for every later publication. This needs one
Redis server (or primary): Redis Cluster would spread the keys.
"""

from __future__ import annotations

from typing import Final

from ..topics import is_pattern

__all__ = ["READ_SCRIPT", "ROUTE_SCRIPT", "literal_field", "wildcard_field", "wildcards_may_match"]

ROUTE_SCRIPT: Final = """
local topic, data, wild_ok, inbox = ARGV[1], ARGV[2], ARGV[3] == '1', ARGV[4]
local channel, only = ARGV[5], ARGV[6]
local keep, ttl = tonumber(ARGV[7]), tonumber(ARGV[8])
local position = nil
if channel ~= '' and keep > 0 then
  -- A copy sent again after a lost connection cut its batch short: taken already, once is enough.
  if ARGV[10] ~= '' then
    local seen = redis.call('HGET', KEYS[4], 'o' .. ARGV[10])
    if seen and tonumber(seen) >= tonumber(ARGV[11]) then return 0 end
    redis.call('HSET', KEYS[4], 'o' .. ARGV[10], ARGV[11])
  end
  -- The shared history: the topic's next offset, in its epoch, and the envelope in its stream.
  if redis.call('HEXISTS', KEYS[4], 'e') == 0 then
    local now = redis.call('TIME')
    redis.call('HSET', KEYS[4], 'e', ARGV[9] .. now[1] .. now[2])
    redis.call('DEL', KEYS[5])
  end
  local epoch = redis.call('HGET', KEYS[4], 'e')
  local offset = redis.call('HINCRBY', KEYS[4], 'n', 1)
  local born = '0'
  if ttl > 0 then
    local now = redis.call('TIME')
    born = tostring(now[1] * 1000 + math.floor(now[2] / 1000))
  end
  redis.call('XADD', KEYS[5], 'MAXLEN', keep, offset .. '-0', 'd', data, 't', born)
  if ttl > 0 then redis.call('PEXPIRE', KEYS[5], ttl) end
  position = epoch .. ':' .. offset
  redis.call('PUBLISH', channel, position .. '\\n' .. data)
elseif channel ~= '' then
  redis.call('PUBLISH', channel, data)
end
local declined = {}
for i = 12, #ARGV do declined[ARGV[i]] = true end

local function split(text)
  local tokens, start = {}, 1
  while true do
    local dot = string.find(text, '.', start, true)
    if not dot then
      tokens[#tokens + 1] = string.sub(text, start)
      return tokens
    end
    tokens[#tokens + 1] = string.sub(text, start, dot - 1)
    start = dot + 1
  end
end

local topic_tokens = nil
local function matches(pattern)
  if topic_tokens == nil then topic_tokens = split(topic) end
  local tokens = split(pattern)
  local last = #tokens
  for i = 1, last do
    local token = tokens[i]
    if token == '>' and i == last then return #topic_tokens >= i end
    if i > #topic_tokens or (token ~= '*' and token ~= topic_tokens[i]) then return false end
  end
  return #topic_tokens == last
end

local groups, names = {}, {}
local function add(group, replica, weight, key, field)
  if (only ~= '' and group ~= only) or declined[replica] then return end
  local entry = groups[group]
  if entry == nil then
    entry = {weights = {}, fields = {}, order = {}}
    groups[group] = entry
    names[#names + 1] = group
  end
  if entry.weights[replica] == nil then
    entry.weights[replica] = 0
    entry.fields[replica] = {}
    entry.order[#entry.order + 1] = replica
  end
  entry.weights[replica] = entry.weights[replica] + weight
  table.insert(entry.fields[replica], {key, field})
end

local literal = redis.call('HGETALL', KEYS[1])
for i = 1, #literal, 2 do
  local field = literal[i]
  local cut = string.find(field, '\\n', 1, true)
  add(string.sub(field, 1, cut - 1), string.sub(field, cut + 1), tonumber(literal[i + 1]), KEYS[1], field)
end
if wild_ok then
  local wild = redis.call('HGETALL', KEYS[2])
  for i = 1, #wild, 2 do
    local field = wild[i]
    local a = string.find(field, '\\n', 1, true)
    local b = string.find(field, '\\n', a + 1, true)
    if matches(string.sub(field, b + 1)) then
      add(string.sub(field, 1, a - 1), string.sub(field, a + 1, b - 1), tonumber(wild[i + 1]), KEYS[2], field)
    end
  end
end

local routed = 0
for _, group in ipairs(names) do
  local entry = groups[group]
  table.sort(entry.order)
  local total = 0
  for _, replica in ipairs(entry.order) do total = total + entry.weights[replica] end
  local turn = redis.call('HINCRBY', KEYS[3], group, 1)
  while total > 0 do
    local k, chosen = turn % total, nil
    for _, replica in ipairs(entry.order) do
      local weight = entry.weights[replica]
      if weight > 0 then
        if k < weight then chosen = replica; break end
        k = k - weight
      end
    end
    if redis.call('PUBLISH', inbox .. chosen, group .. '\\n' .. data) > 0 then
      routed = routed + 1
      break
    end
    for _, entry_field in ipairs(entry.fields[chosen]) do
      redis.call('HDEL', entry_field[1], entry_field[2])
    end
    total = total - entry.weights[chosen]
    entry.weights[chosen] = 0
  end
end
return routed
"""
"""KEYS: literal hash of the topic, wildcard hash, counters, the topic's history hash and stream.
ARGV: topic, envelope, '1' when wildcard patterns may match, inbox channel prefix, the topic's channel
('' for a hand-back), the only group ('' for all), history size ('0': none), history ttl in ms ('0':
none), a random start of a new epoch, then the replicas that declined."""

READ_SCRIPT: Final = """
local created = redis.call('HSETNX', KEYS[1], 'e', ARGV[1] .. table.concat(redis.call('TIME')))
if created == 1 then redis.call('DEL', KEYS[2]) end
local meta = redis.call('HMGET', KEYS[1], 'e', 'n')
local held = {}
if ARGV[2] ~= '' then
  local entries = redis.call('XRANGE', KEYS[2], ARGV[2], '+')
  local ttl, oldest = tonumber(ARGV[3]), 0
  if ttl > 0 then
    local now = redis.call('TIME')
    oldest = now[1] * 1000 + math.floor(now[2] / 1000) - ttl
  end
  for _, entry in ipairs(entries) do
    local fields, data, born = entry[2], nil, 0
    for i = 1, #fields, 2 do
      if fields[i] == 'd' then data = fields[i + 1] elseif fields[i] == 't' then born = tonumber(fields[i + 1]) end
    end
    if born >= oldest or #held > 0 then
      local dash = string.find(entry[1], '-', 1, true)
      held[#held + 1] = string.sub(entry[1], 1, dash - 1)
      held[#held + 1] = data
    end
  end
end
return {meta[1], meta[2] or '0', held}
"""
"""What a topic's history holds. KEYS: its hash, its stream. ARGV: a random start of a new epoch, the
first stream id to read ('': none, only the position), the ttl in ms ('0': none). Returns the epoch,
the last offset, then offset, envelope, ... of what is held, expired ones left out."""


def literal_field(group: str, replica: str) -> str:
    """The field of a replica's members of `group` in a literal topic's hash."""
    return f"{group}\n{replica}"


def wildcard_field(group: str, replica: str, pattern: str) -> str:
    """The field of a replica's members of `group` on wildcard `pattern`."""
    return f"{group}\n{replica}\n{pattern}"


def wildcards_may_match(topic: str) -> bool:
    """Whether wildcard patterns can match `topic` (not when it holds wildcard tokens: a plain string)."""
    return not is_pattern(topic)
