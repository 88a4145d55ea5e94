"""The IdP's Lua scripts, named: each runs as one EVALSHA (loaded again by redis-py after a
restart or failover emptied the server's script cache)."""

from __future__ import annotations

from typing import Any

import redis
from redis.commands.core import Script

from idp.store import keys

# KEYS[1] the session's hot copy, KEYS[2] its cookie's no-session mark; ARGV idle seconds, now,
# the last_seen step. Reads the copy and slides its expiry (and the sid key's), never past the
# absolute cap: {copy, 1 when SQL's last_seen is a step behind}; 0 when gone for certain (past
# the cap, or the cookie is marked as matching nothing); nil when there is no copy (SQL knows).
TOUCH_SESSION = f"""
local v = redis.call('GET', KEYS[1])
if not v then
  if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
  return nil
end
local d = cjson.decode(v)
local now = tonumber(ARGV[2])
local ttl = math.min(tonumber(ARGV[1]), d.exp - now)
if ttl <= 0 then
  redis.call('DEL', KEYS[1], '{keys.SID}' .. d.sid)
  return 0
end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', '{keys.SID}' .. d.sid, ttl)
local due = 0
if now - (d.seen or 0) >= tonumber(ARGV[3]) then due = 1 end
return {{v, due}}
"""

# KEYS[1] the session's hot copy, KEYS[2] its sid key, KEYS[3] its ended mark; ARGV the copy,
# its lifetime, the cookie hash. Writes a copy read from SQL back, unless the session's end was
# committed meanwhile: 1 when written, 0 when ended.
RESTORE_SESSION = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[2])
return 1
"""

# KEYS[1] the session's sid key, KEYS[2] the grant's deny mark; ARGV idle seconds, now. A
# refresh slides its session: 1; 0 when its copy is missing; -1 when the grant is
# deny-listed (revoked while a redemption or rotation was still committing).
TOUCH_FOR_REFRESH = f"""
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local h = redis.call('GET', KEYS[1])
if not h then return 0 end
local v = redis.call('GET', '{keys.SESSION}' .. h)
if not v then return 0 end
local d = cjson.decode(v)
local ttl = math.min(tonumber(ARGV[1]), d.exp - tonumber(ARGV[2]))
if ttl <= 0 then return 0 end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', '{keys.SESSION}' .. h, ttl)
return 1
"""

# KEYS the counters; ARGV[1] the window, ARGV[i + 1] the limit of KEYS[i]. Counts one attempt
# on each (exact under parallel attempts); 1 when any passed its limit.
COUNT = """
local locked = 0
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, ARGV[1]) end
  if n > tonumber(ARGV[i + 1]) then locked = 1 end
end
return locked
"""

# KEYS[1] the code; ARGV the client, the used marker's lifetime. Consumes a code for one
# client: {1, payload} on success, {0, grant_id} on a replay, {2} when the code belongs to
# another client (left intact), nil when unknown or expired.
CONSUME_CODE = """
local v = redis.call('GET', KEYS[1])
if not v then return nil end
local sep1 = string.find(v, '|', 1, true)
local sep2 = string.find(v, '|', sep1 + 1, true)
local client = string.sub(v, 1, sep1 - 1)
local grant = string.sub(v, sep1 + 1, sep2 - 1)
if client == 'used' then return {0, grant} end
if client ~= ARGV[1] then return {2} end
redis.call('SET', KEYS[1], 'used|' .. grant .. '|', 'EX', ARGV[2])
return {1, string.sub(v, sep2 + 1)}
"""

_LOADED: dict[str, Script] = {}


def run(
    source: str,
    client: redis.Redis | redis.client.Pipeline,
    script_keys: list[str],
    args: list[Any],
) -> Any:
    """Run a named script on a client or queue it on a batch."""
    script = _LOADED.get(source)
    if script is None:
        script = _LOADED[source] = Script(client, source)
    return script(keys=script_keys, args=args, client=client)
