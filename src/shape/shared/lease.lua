-- Concurrency leases for one key of a shared limit, on Redis's clock.
--
-- KEYS[1]  the key's holders, a sorted set: member = instance:n, score = lease end (µs)
-- KEYS[2]  the limit's live parameters, a hash: concurrency (absent or 0: ARGV's cap)
-- ARGV     op, member, lease (µs), cap
--          op take:  expire ended leases, then add member if fewer than cap hold one
--          op renew: push the lease end of member out (only while it still holds one)
-- Returns {taken or renewed, cap in force}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local lease = tonumber(ARGV[3])
local cap = tonumber(redis.call('HGET', KEYS[2], 'concurrency'))
if not cap or cap <= 0 then
  cap = tonumber(ARGV[4])
end
local ttl = math.floor(lease / 1000) + 1000
if ARGV[1] == 'take' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) < cap then
    redis.call('ZADD', KEYS[1], string.format('%d', now + lease), ARGV[2])
    redis.call('PEXPIRE', KEYS[1], ttl)
    return {1, cap}
  end
  return {0, cap}
elseif ARGV[1] == 'renew' then
  local n = redis.call('ZADD', KEYS[1], 'XX', 'CH', string.format('%d', now + lease), ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {n, cap}
end
return redis.error_reply('unknown op ' .. tostring(ARGV[1]))
