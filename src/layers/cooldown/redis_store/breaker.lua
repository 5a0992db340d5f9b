-- One model's circuit breaker, applied atomically: the state machine of
-- breaker.rs, on a hash. KEYS[1]: the model's hash.
-- ARGV[1]: the operation; ARGV[2]: the probe lease (ms); ARGV[3]: how long a
-- key outlives its state (ms; a closed breaker's key keeps its failure-ratio
-- window at least); then the operation's arguments.
-- Times are the server's clock, so every process agrees; replies carry
-- durations from now, which each process turns into its own instants.
-- Reply: {what, token, ms, cooldown ms}.
-- Redis < 5 replicates scripts verbatim and refuses writes after TIME.
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local op = ARGV[1]
local lease = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local f = redis.call('HMGET', key, 's', 'u', 'pid', 'ps', 'g', 'c', 'cd', 'rp')
-- s: c closed, o open until u, p probe pid running since ps.
-- g: generation, bumped on every open and close. c: consecutive failures.
-- cd: the cooldown a failed probe reopens for. w0..w9: the ratio window.
-- rp: the last probe id released before its admit arrived (a cancelled admit).
local b = {
  exists = f[1] ~= false, s = f[1] or 'c', u = tonumber(f[2]) or 0, pid = f[3] or '',
  ps = tonumber(f[4]) or 0, g = tonumber(f[5]) or 0, c = tonumber(f[6]) or 0, cd = tonumber(f[7]),
  rp = f[8] or '',
}
local clear_window = false
local window = 0

local function int(x) return string.format('%d', x) end

local function save()
  local horizon = now
  local keep = ttl
  if b.s == 'o' then horizon = math.max(now, b.u) elseif b.s == 'p' then horizon = b.ps + lease end
  if b.s == 'c' then keep = math.max(ttl, window) end
  redis.call('HSET', key, 's', b.s, 'u', int(b.u), 'pid', b.pid, 'ps', int(b.ps),
    'g', int(b.g), 'c', int(b.c), 'cd', int(b.cd or 0))
  if clear_window then
    redis.call('HDEL', key, 'w0', 'w1', 'w2', 'w3', 'w4', 'w5', 'w6', 'w7', 'w8', 'w9')
  end
  redis.call('PEXPIRE', key, math.max(horizon - now, 0) + keep)
end

local function reset()
  b.g = b.g + 1
  b.c = 0
  clear_window = true
end

local function open(cooldown)
  b.s = 'o'
  b.u = now + cooldown
  reset()
  save()
  return {'O', int(b.g), cooldown, cooldown}
end

-- Keeps an open breaker open at least until `til`; says how long it stays
-- open from now (not by how much it grew).
local function extend(til)
  if b.s == 'o' and b.u < til then
    b.u = til
    save()
    return {'O', int(b.g), til - now, til - now}
  end
  return {'U', int(b.g), 0, 0}
end

local function close(base)
  b.s = 'c'
  b.cd = base
  reset()
  save()
  return {'C', int(b.g), 0, 0}
end

if op == 'admit' then
  local force, probe = ARGV[4] == '1', ARGV[5]
  if b.s == 'c' then return {'N', int(b.g), 0, 0} end
  -- A probe whose process went away frees its slot when the lease ends.
  if b.s == 'p' and now - b.ps >= lease then b.s = 'o'; b.u = b.ps end
  local til
  if b.s == 'o' and now >= b.u and probe ~= b.rp then
    b.s = 'p'; b.pid = probe; b.ps = now
    save()
    return {'P', probe, 0, 0}
  elseif b.s == 'o' then
    til = math.max(b.u, now)
  else
    til = math.max(b.ps + (b.cd or 0), now)
  end
  if force then return {'F', int(b.g), til - now, 0} end
  return {'R', '0', til - now, 0}
end

if op == 'release' then
  -- ARGV[4..]: probe ids, any of which may hold the slot.
  for i = 4, #ARGV do
    if b.s == 'p' and b.pid == ARGV[i] then
      b.s = 'o'; b.u = b.ps
      save()
      return {'U', int(b.g), 0, 0}
    end
  end
  if #ARGV == 4 and b.exists and b.s ~= 'c' then
    -- The admit may still be on its way (a new connection overtaking the
    -- old one): it must not take the slot when it arrives.
    redis.call('HSET', key, 'rp', ARGV[4])
  end
  return {'U', int(b.g), 0, 0}
end

if op == 'push' then
  -- Another view (a process's outage-time breaker) opened the model for `ms`.
  local ms = tonumber(ARGV[4])
  if b.s == 'c' then b.cd = ms; return open(ms) end
  return extend(now + ms)
end

-- op == 'record'
local kind, token, verdict = ARGV[4], ARGV[5], ARGV[6]
local wait = tonumber(ARGV[7])      -- the Trip's time, -1: none
local needed = tonumber(ARGV[8])    -- consecutive failures that trip, 0: off
local ratio = tonumber(ARGV[9])     -- failure share that trips, -1: no rule
local bucket = tonumber(ARGV[10])   -- a tenth of the ratio window
local min_calls = tonumber(ARGV[11])
local base = tonumber(ARGV[12])     -- the cooldown
local factor = tonumber(ARGV[13])   -- growth factor, -1: none
local max_cd = tonumber(ARGV[14])

if ratio >= 0 then window = bucket * 10 end
if not b.exists and (verdict == 'I' or (verdict == 'S' and ratio < 0)) then
  return {'U', '0', 0, 0}
end
b.cd = b.cd or base

local current
if kind == 'N' then current = b.s == 'c' and tonumber(token) == b.g
elseif kind == 'P' then current = b.s == 'p' and token == b.pid
else current = tonumber(token) == b.g end

if not current then
  -- The provider's own word on how long to wait still holds.
  if verdict == 'T' and wait >= 0 then return extend(now + wait) end
  return {'U', int(b.g), 0, 0}
end

if verdict == 'I' then
  if b.s == 'p' then b.s = 'o'; b.u = b.ps; save() end
  return {'U', int(b.g), 0, 0}
end

if kind == 'N' then
  if verdict == 'T' then
    b.cd = base
    if wait >= 0 then return open(wait) end
    return open(base)
  end
  local failed = verdict == 'F'
  local calls, failures = 0, 0
  if ratio >= 0 then
    local slot = math.floor(now / bucket)
    local field = 'w' .. (slot % 10)
    local v = redis.call('HGET', key, field)
    local s0, c0, f0 = 0, 0, 0
    if v then
      local a, bb, cc = string.match(v, '(%d+):(%d+):(%d+)')
      s0, c0, f0 = tonumber(a), tonumber(bb), tonumber(cc)
    end
    if s0 ~= slot then c0, f0 = 0, 0 end
    c0 = c0 + 1
    if failed then f0 = f0 + 1 end
    redis.call('HSET', key, field, int(slot) .. ':' .. c0 .. ':' .. f0)
    local all = redis.call('HMGET', key, 'w0', 'w1', 'w2', 'w3', 'w4', 'w5', 'w6', 'w7', 'w8', 'w9')
    for _, e in ipairs(all) do
      if e then
        local a, bb, cc = string.match(e, '(%d+):(%d+):(%d+)')
        local s1 = tonumber(a)
        if s1 <= slot and slot - s1 < 10 then
          calls = calls + tonumber(bb)
          failures = failures + tonumber(cc)
        end
      end
    end
  end
  if not failed then
    b.c = 0
    save()
    return {'U', int(b.g), 0, 0}
  end
  b.c = b.c + 1
  local by_count = needed > 0 and b.c >= needed
  local by_ratio = ratio >= 0 and calls >= min_calls and failures >= ratio * calls
  if by_count or by_ratio then
    b.cd = base
    return open(base)
  end
  save()
  return {'U', int(b.g), 0, 0}
end

if verdict == 'S' then return close(base) end

if kind == 'P' then
  if verdict == 'T' and wait >= 0 then return open(wait) end
  if factor >= 0 then b.cd = math.min(math.floor(b.cd * factor), max_cd) else b.cd = base end
  return open(b.cd)
end

-- A forced call failed: the breaker stays open at least a cooldown longer.
if verdict == 'T' and wait >= 0 then return extend(now + wait) end
return extend(now + b.cd)
