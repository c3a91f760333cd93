--[[
  One round of a process's provider limiter: gives back released slots, then
  takes slots for the waiters at the head of its queue.

  KEYS[1] inflight  sorted set of leases (score: expiry)
  KEYS[2] rate      GCRA's theoretical arrival time
  KEYS[3] cooldown  until when nobody sends (a 429's Retry-After)
  KEYS[4] waiting   processes that recently found every slot taken, by expiry

  ARGV[1] concurrency    ARGV[2] leaseMs    ARGV[3] interval (ms per request)
  ARGV[4] burst          ARGV[5] token base ARGV[6] wanted
  ARGV[7] this process's id                 ARGV[8] slots it holds (after these releases)
  ARGV[9…] tokens to release

  Releases first; then grants up to `wanted` slots, as `<base>:1` … `<base>:<granted>`.
  While other processes wait, a process takes no more than its share of the
  slots (concurrency / waiting processes): releasing and re-taking slots in one
  call would otherwise leave them no chance to get one at their next poll.
  Redis' clock is the only clock.

  Returns {granted, why the rest were not: 0 (none left), -1 (every slot, or
  this process's share, taken), n > 0 (wait n ms)}.
]]
for i = 9, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
local wanted = tonumber(ARGV[6])
if wanted <= 0 then
  redis.call('ZREM', KEYS[4], ARGV[7])
  return {0, 0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cooldown = tonumber(redis.call('GET', KEYS[3]) or '0')
if cooldown > now then return {0, cooldown - now} end
local concurrency = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local free = concurrency - redis.call('ZCARD', KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local others = redis.call('ZCARD', KEYS[4])
if redis.call('ZSCORE', KEYS[4], ARGV[7]) then others = others - 1 end
if others > 0 then
  local share = math.ceil(concurrency / (others + 1)) - tonumber(ARGV[8])
  if share < free then free = share end
end
local interval = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[2]) or '0')
if tat < now then tat = now end
local granted = 0
local why = 0
while granted < wanted do
  if free <= 0 then why = -1 break end
  local newTat = tat + interval
  local wait = newTat - now - interval * burst
  if wait > 0 then why = math.ceil(wait) break end
  tat = newTat
  granted = granted + 1
  free = free - 1
  redis.call('ZADD', KEYS[1], now + lease, ARGV[5] .. ':' .. granted)
end
if granted > 0 then
  redis.call('SET', KEYS[2], tat, 'PX', math.ceil(tat - now) + 60000)
  redis.call('PEXPIRE', KEYS[1], lease * 2)
end
if why == -1 then
  redis.call('ZADD', KEYS[4], now + 250, ARGV[7])
  redis.call('PEXPIRE', KEYS[4], 1000)
else
  redis.call('ZREM', KEYS[4], ARGV[7])
end
return {granted, why}
