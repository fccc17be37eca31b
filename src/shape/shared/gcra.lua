-- GCRA reservations for one key of a shared limit, on Redis's clock. A thin copy of
-- src/shape/shared/gcra.rs, which explains the arithmetic; both pass the same cases.
--
-- KEYS[1]  the key's bucket, a hash: tat (theoretical arrival time), pause (paused until)
-- KEYS[2]  the limit's live parameters, a hash: interval, burst (absent: ARGV's), and the
--          AIMD state cut_to (share of the rate after the last cut), cut_at (its time),
--          event_end (429s before it belong to the last cut's congestion event)
-- ARGV     op, now (empty: Redis TIME), interval, burst, arg, and for adaptive limits
--          factor, floor, step, step interval (all empty otherwise)
--          op reserve: arg = longest wait the caller accepts
--          op pause:   arg = Retry-After; an adaptive limit's rate is cut too
--          op release: arg = the tat a reservation left, to give back if still the last
-- All times are microseconds. Returns {granted, wait, tat, interval, paused_for}, interval
-- being the effective one (after AIMD).
local op = ARGV[1]
local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local live = redis.call('HMGET', KEYS[2], 'interval', 'burst', 'cut_to', 'cut_at', 'event_end')
local base = tonumber(live[1]) or tonumber(ARGV[3])
local burst = tonumber(live[2]) or tonumber(ARGV[4])
local arg = tonumber(ARGV[5])
local factor, floor, step, every = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])

-- The share of the base rate in force: the last cut plus one step per clean interval since.
local function share()
  local cut_to, cut_at = tonumber(live[3]), tonumber(live[4])
  if not factor or not cut_to or not cut_at then
    return 1
  end
  local f = cut_to + math.floor(math.max(now - cut_at, 0) / every) * step
  return math.min(f, 1)
end

local fraction = share()
local interval = math.floor(base / fraction)
local b = redis.call('HMGET', KEYS[1], 'tat', 'pause')
local tat = tonumber(b[1]) or 0
local pause = tonumber(b[2]) or 0
local tau = interval * (burst - 1)

local function store(t, p)
  redis.call('HSET', KEYS[1], 'tat', string.format('%d', t), 'pause', string.format('%d', p))
  local last = math.max(t, p)
  redis.call('PEXPIRE', KEYS[1], math.floor((last - now) / 1000) + 1000)
end

local function paused_for(p)
  return math.max(p - now, 0)
end

if op == 'reserve' then
  local t = math.max(tat, now)
  local go = math.max(t - tau, now, pause)
  local wait = go - now
  if wait > arg then
    return {0, wait, tat, interval, paused_for(pause)}
  end
  local new = math.max(t, go) + interval
  store(new, pause)
  return {1, wait, new, interval, paused_for(pause)}
elseif op == 'pause' then
  local event_end = tonumber(live[5])
  if factor and not (event_end and now < event_end) then
    fraction = math.min(math.max(fraction * factor, floor), 1)
    local ends = math.max(now + arg, now + every)
    redis.call('HSET', KEYS[2], 'cut_to', string.format('%.17g', fraction), 'cut_at', string.format('%d', now),
      'event_end', string.format('%d', ends))
    interval = math.floor(base / fraction)
    tau = interval * (burst - 1)
  end
  local p = math.max(pause, now + arg)
  local t = math.max(tat, p + tau)
  store(t, p)
  return {1, 0, t, interval, paused_for(p)}
elseif op == 'release' then
  if tat == arg then
    store(tat - interval, pause)
    return {1, 0, tat - interval, interval, paused_for(pause)}
  end
  return {0, 0, tat, interval, paused_for(pause)}
end
return redis.error_reply('unknown op ' .. tostring(op))
