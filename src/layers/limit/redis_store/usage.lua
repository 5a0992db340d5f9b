-- One deployment's usage in fixed one-minute windows of the server's clock.
-- KEYS[1]: its hash {w: window, r: requests, t: tokens}. ARGV[1]: the operation.
-- Reply: {granted (1/0), window, requests, tokens, ms until the window ends}.
-- Redis < 5 replicates scripts verbatim and refuses writes after TIME.
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local span = 60000
local win = math.floor(now / span)
local left = (win + 1) * span - now

local f = redis.call('HMGET', key, 'w', 'r', 't')
local r, t = 0, 0
if tonumber(f[1]) == win then r, t = tonumber(f[2]), tonumber(f[3]) end

if ARGV[1] == 'reserve' then
  -- ARGV[2]: rpm, ARGV[3]: tpm (-1: no limit), ARGV[4]: the tokens to count.
  local rpm, tpm, tokens = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  if (rpm >= 0 and r + 1 > rpm) or (tpm >= 0 and t + tokens > tpm) then
    return {0, win, r, t, left}
  end
  r, t = r + 1, t + tokens
  redis.call('HSET', key, 'w', string.format('%d', win), 'r', string.format('%d', r), 't', string.format('%d', t))
  redis.call('PEXPIRE', key, left + span)
  return {1, win, r, t, left}
end

-- 'settle': ARGV[2]: the grant's window, ARGV[3]: requests to add, ARGV[4]: tokens to add (may be negative).
if tonumber(ARGV[2]) == win then
  r = math.max(r + tonumber(ARGV[3]), 0)
  t = math.max(t + tonumber(ARGV[4]), 0)
  redis.call('HSET', key, 'r', string.format('%d', r), 't', string.format('%d', t))
end
return {1, win, r, t, left}
