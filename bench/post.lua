-- wrk script: POST a 1.2 KB chat request. The model comes from the MODEL
-- environment variable (the upstream ignores it; the gateway routes on it).
local model = os.getenv("MODEL") or "gpt-4o-mini"
local stream = os.getenv("STREAM") == "1"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if stream then
  wrk.headers["Accept"] = "text/event-stream"
end
wrk.body = '{"model":"' .. model .. '","stream":' .. tostring(stream) ..
  ',"temperature":0.2,"max_tokens":256,"messages":[' ..
  '{"role":"system","content":"You are a helpful assistant that answers concisely and accurately."},' ..
  '{"role":"user","content":"' .. string.rep("word ", 210) .. '"}]}'
