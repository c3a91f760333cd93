-- Checks both write limits, then counts against both, in one atomic step: a
-- write refused by either limit counts against neither.
-- KEYS: actor, tenant (same hash tag, so one Cluster slot).
-- ARGV: actor limit, tenant limit, window ms.
-- Returns {0|1|2 (which limit refused: 1 actor, 2 tenant), ms until it resets}.
for i = 1, 2 do
  local used = tonumber(redis.call('get', KEYS[i]) or '0')
  if used >= tonumber(ARGV[i]) then
    local ttl = redis.call('pttl', KEYS[i])
    -- -1: a key without expiry would refuse forever; -2: no key (a limit of 0). Either way: one window.
    if ttl < 0 then redis.call('pexpire', KEYS[i], ARGV[3]); ttl = tonumber(ARGV[3]) end
    return {i, ttl}
  end
end
for i = 1, 2 do
  if redis.call('incr', KEYS[i]) == 1 then redis.call('pexpire', KEYS[i], ARGV[3]) end
end
return {0, 0}
