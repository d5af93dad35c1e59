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

Redis runs one script at a time, so members registered before a
publication's script runs are seen by it, and none after: a subscription
confirmed by Redis is in effect for every later publication. This needs one
Redis server (or primary): Redis Cluster would spread the keys.
"""

from __future__ import annotations

from typing import Final

from ..topics import is_pattern

__all__ = ["ROUTE_SCRIPT", "literal_field", "wildcard_field", "wildcards_may_match"]

ROUTE_SCRIPT: Final = """
local topic, data, wild_ok, inbox = ARGV[1], ARGV[2], ARGV[3] == '1', ARGV[4]
local channel, only = ARGV[5], ARGV[6]
if channel ~= '' then
  redis.call('PUBLISH', channel, data)
end
local declined = {}
for i = 7, #ARGV do declined[ARGV[i]] = true end

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
"""KEYS: literal hash of the topic, wildcard hash, counters. ARGV: topic, envelope, '1' when wildcard
patterns may match, inbox channel prefix, the topic's channel ('' for a hand-back), the only group
('' for all), then the replicas that declined."""


def literal_field(group: str, replica: str) -> str:
    """The field of a replica's members of `group` in a literal topic's hash."""
    return f"{group}\n{replica}"


def wildcard_field(group: str, replica: str, pattern: str) -> str:
    """The field of a replica's members of `group` on wildcard `pattern`."""
    return f"{group}\n{replica}\n{pattern}"


def wildcards_may_match(topic: str) -> bool:
    """Whether wildcard patterns can match `topic` (not when it holds wildcard tokens: a plain string)."""
    return not is_pattern(topic)
