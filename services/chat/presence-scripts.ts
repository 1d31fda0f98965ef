// The presence registry's atomic steps. Each runs as one Lua script, so a connect, a disconnect
// and any number of sweeping nodes can interleave without double announcements or lost users.
import { LuaScript } from './lua-script.ts';

/**
 * Local helper shared by the scripts that remove an instance: its users that are left with no
 * instance anywhere start leaving at `since` (an earlier time keeps the earlier one). A full
 * Redis refuses the ZADD and ends the script there, keeping what it already did: so each user is
 * marked leaving before it is taken out, and a later run finishes the job.
 */
const DROP_INSTANCE = `
local function drop(instances, leaving, instancePrefix, userPrefix, instance, since)
  local hash = instancePrefix .. instance
  for _, user in ipairs(redis.call('HKEYS', hash)) do
    local set = userPrefix .. user
    if redis.call('SCARD', set) <= 1 then redis.call('ZADD', leaving, 'LT', since, user) end
    redis.call('SREM', set, instance)
  end
  redis.call('DEL', hash)
  redis.call('ZREM', instances, instance)
end
`;

/**
 * KEYS: instances, instance hash, user's instance set, leaving. ARGV: instance, userID, sockets
 * of the user on this instance. Returns -1 when the instance is not registered (it was swept
 * while its node hung: the caller registers again), 1 when this is the user's first socket
 * anywhere and it was not merely moving (in its grace), else 0.
 */
export const connectScript = new LuaScript(`
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return -1 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
local added = redis.call('SADD', KEYS[3], ARGV[1])
local moving = redis.call('ZREM', KEYS[4], ARGV[2])
if added == 1 and moving == 0 and redis.call('SCARD', KEYS[3]) == 1 then return 1 end
return 0
`);

/**
 * KEYS: as connectScript. ARGV: instance, userID, sockets left on this instance, now (ms).
 * The user's last socket anywhere starts its grace instead of being announced: returns 1 then.
 * An instance swept meanwhile (its node hung) has had its users settled by the sweep: nothing
 * to do, or a user announced gone then would be announced twice. The grace is recorded before
 * anything is removed: a full Redis refuses the ZADD and leaves the user as it was.
 */
export const disconnectScript = new LuaScript(`
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
if tonumber(ARGV[3]) > 0 then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  return 0
end
local last = redis.call('SCARD', KEYS[3]) <= 1 and redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1
if last then redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2]) end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('SREM', KEYS[3], ARGV[1])
if last then return 1 end
return 0
`);

/** KEYS: instances. ARGV: instance, now. Returns 0 when the instance was swept meanwhile. */
export const beatScript = new LuaScript(`
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
`);

/**
 * KEYS: instances, instance hash, leaving. ARGV: instance, now, user key prefix, then userID and
 * socket count pairs for every user with a socket here. Registers (or re-registers) the
 * instance with its users; returns the users this made online again after they were announced
 * gone.
 */
export const registerScript = new LuaScript(`
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('DEL', KEYS[2])
local back = {}
for i = 4, #ARGV, 2 do
  local user = ARGV[i]
  local set = ARGV[3] .. user
  redis.call('HSET', KEYS[2], user, ARGV[i + 1])
  local added = redis.call('SADD', set, ARGV[1])
  local moving = redis.call('ZREM', KEYS[3], user)
  if added == 1 and moving == 0 and redis.call('SCARD', set) == 1 then table.insert(back, user) end
end
return back
`);

/**
 * KEYS: instances, leaving. ARGV: now, stale before (ms), grace over before (ms), own instance,
 * own node prefix, instance key prefix, user key prefix, most users to announce.
 * Removes instances that stopped beating (their users' grace counts from the last beat: it has
 * passed) and earlier instances of this node's id (a restart: their clients may still be moving,
 * so their grace starts now). Returns the users whose grace has passed with no instance
 * anywhere, each returned by exactly one sweeper.
 */
export const sweepScript = new LuaScript(`${DROP_INSTANCE}
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #entries, 2 do
  local instance, beat = entries[i], tonumber(entries[i + 1])
  if instance ~= ARGV[4] then
    if beat < tonumber(ARGV[2]) then
      drop(KEYS[1], KEYS[2], ARGV[6], ARGV[7], instance, beat)
    elseif string.sub(instance, 1, #ARGV[5]) == ARGV[5] then
      drop(KEYS[1], KEYS[2], ARGV[6], ARGV[7], instance, tonumber(ARGV[1]))
    end
  end
end
local gone = {}
for _, user in ipairs(redis.call('ZRANGE', KEYS[2], '-inf', ARGV[3], 'BYSCORE', 'LIMIT', 0, ARGV[8])) do
  redis.call('ZREM', KEYS[2], user)
  if redis.call('EXISTS', ARGV[7] .. user) == 0 then table.insert(gone, user) end
end
return gone
`);

/** KEYS: instances, leaving. ARGV: instance, now, instance key prefix, user key prefix. A node
 * that closes takes its instance out; its remaining users start their grace. */
export const dropScript = new LuaScript(`${DROP_INSTANCE}
drop(KEYS[1], KEYS[2], ARGV[3], ARGV[4], ARGV[1], tonumber(ARGV[2]))
return 1
`);

/**
 * KEYS: leaving. ARGV: user key prefix, then user ids. Returns 1 for each user the registry counts
 * online (an instance holds one of its sockets, or it is in its grace, not yet announced gone),
 * else 0: the `users` list's presence in one command, however many users it lists.
 */
export const onlineScript = new LuaScript(`
local online = {}
for i = 2, #ARGV do
  local user = ARGV[i]
  if redis.call('EXISTS', ARGV[1] .. user) == 1 or redis.call('ZSCORE', KEYS[1], user) then
    online[i - 1] = 1
  else
    online[i - 1] = 0
  end
end
return online
`);
