-- Quota reservations for one key of a shared limit, on Redis's clock: no window of the quota's
-- length holds more than N releases, counted over every instance (see src/shape/shared/quota.rs).
--
-- KEYS[1]  the key's bucket, a hash: pause (paused until, the same field gcra.lua honours),
--          cut (the latest release trimmed from the log), seq (the last reservation's number)
-- KEYS[2]  the limit's live parameters, a hash: quota_count, quota_window, quota_margin
--          (absent: ARGV's)
-- KEYS[3]  the key's log, a sorted set: member = reservation number, score = release time
-- ARGV     op, now (empty: Redis TIME), count, window, margin, arg
--          op reserve: arg = longest wait the caller accepts
--          op pause:   arg = Retry-After
--          op release: arg = the reservation number to give back
-- All times are microseconds. Returns {granted, wait, number, count, paused_for}.
local op = ARGV[1]
local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local live = redis.call('HMGET', KEYS[2], 'quota_count', 'quota_window', 'quota_margin')
local count = tonumber(live[1]) or tonumber(ARGV[3])
local window = tonumber(live[2]) or tonumber(ARGV[4])
local margin = tonumber(live[3]) or tonumber(ARGV[5])
local span = window + margin
local arg = tonumber(ARGV[6])
local b = redis.call('HMGET', KEYS[1], 'pause', 'cut')
local pause = tonumber(b[1]) or 0
local cut = tonumber(b[2])

-- Scores and fields as whole numbers: Lua would print large ones in exponent form.
local function int(x)
  return string.format('%d', x)
end

local function paused_for()
  return math.max(pause - now, 0)
end

local function score_at(rank)
  return tonumber(redis.call('ZRANGE', KEYS[3], rank, rank, 'WITHSCORES')[2])
end

-- The earliest release that keeps every window within the quota: the N-th previous release a
-- span (window + margin) old. With fewer than N in the log, the N-th previous was trimmed (or
-- given back), and the latest trimmed one stands in for it. Never before the last release, so
-- the log only grows at its end and looking back from it is enough.
local function earliest()
  local n = redis.call('ZCARD', KEYS[3])
  local go = math.max(now, pause)
  if n >= count then
    go = math.max(go, score_at(n - count) + span)
  elseif cut then
    go = math.max(go, cut + span)
  end
  if n > 0 then
    go = math.max(go, score_at(-1))
  end
  return go
end

-- Keeps the last N releases (all a quota needs), remembering the latest one dropped.
local function trim()
  local n = redis.call('ZCARD', KEYS[3])
  if n > count then
    cut = math.max(cut or 0, score_at(n - count - 1))
    redis.call('ZREMRANGEBYRANK', KEYS[3], 0, n - count - 1)
    redis.call('HSET', KEYS[1], 'cut', int(cut))
  end
end

-- Both keys live until their last release (or the pause) is a span old.
local function expire(last)
  local ms = math.floor((math.max(last, pause) + span - now) / 1000) + 1000
  redis.call('PEXPIRE', KEYS[1], ms)
  redis.call('PEXPIRE', KEYS[3], ms)
end

local function add(at)
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('ZADD', KEYS[3], int(at), seq)
  return seq
end

if op == 'reserve' then
  local go = earliest()
  local wait = go - now
  if wait > arg then
    return {0, wait, 0, count, paused_for()}
  end
  local seq = add(go)
  trim()
  expire(go)
  return {1, wait, seq, count, paused_for()}
elseif op == 'pause' then
  -- As if the key had released evenly at the quota's pace until the pause ends: one release
  -- may go at its end and the next ones follow window / N apart, not all N at once into the
  -- API's next window. Never makes a release earlier. O(N), once per 429.
  pause = math.max(pause, now + arg)
  redis.call('HSET', KEYS[1], 'pause', int(pause))
  local old = redis.call('ZRANGE', KEYS[3], -count, -1, 'WITHSCORES')
  local kept = #old / 2
  local missing = count - kept
  local step = math.floor(window / count)
  local first = pause - span
  redis.call('DEL', KEYS[3])
  local last = 0
  for j = 0, count - 1 do
    local t = 0
    if j >= missing then
      t = tonumber(old[(j - missing) * 2 + 2])
    end
    last = math.max(t, first + step * j)
    add(last)
  end
  expire(last)
  return {1, 0, 0, count, paused_for()}
elseif op == 'release' then
  -- Taking a release out of the log never puts more in a window; the cut covers a log left
  -- with fewer than N.
  local gone = redis.call('ZREM', KEYS[3], int(arg))
  return {gone, 0, arg, count, paused_for()}
end
return redis.error_reply('unknown op ' .. tostring(op))
