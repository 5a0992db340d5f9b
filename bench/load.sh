#!/usr/bin/env bash
# Load benchmark: the gateway (canonical stack) against the static upstream it
# fronts, with wrk, alternating direct and through-the-gateway runs.
#
#   bench/load.sh            # full run (about 10 minutes); DURATION=5s for a quick one
#   PORT_BASE=18180 IDLE_WAIT=3 bench/load.sh   # beside another gateway, on a busy machine
#   ONLY=instructions bench/load.sh             # instructions per call under callgrind instead
#
# The gateway and the nginx proxy (the floor) are pinned to CPU 0; the static
# nginx upstream and the load generators to CPU 1.
# Results go to target/load/results.md (and stdout). See docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
OUT=target/load
mkdir -p "$OUT"
RESULTS="$OUT/results.md"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx || ! need taskset; then
  echo "installing wrk and nginx-light from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light util-linux >/dev/null
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --release --quiet --bin llm-fallback
GATEWAY=${CARGO_TARGET_DIR:-target}/release/llm-fallback

# Ports PORT_BASE to PORT_BASE + 5 (default 18080): set it to run beside
# another instance of the gateway or of this script.
PORT_BASE=${PORT_BASE:-18080}
P_GATEWAY=$PORT_BASE P_UPSTREAM=$((PORT_BASE + 1)) P_BROKEN=$((PORT_BASE + 2))
P_HOLD=$((PORT_BASE + 3)) P_PROXY=$((PORT_BASE + 4)) P_OFF=$((PORT_BASE + 5))
# bench/gateway.toml, its upstreams on these ports.
sed -e "s#127.0.0.1:18081#127.0.0.1:$P_UPSTREAM#" -e "s#127.0.0.1:18082#127.0.0.1:$P_BROKEN#" bench/gateway.toml > "$OUT/gateway.toml"
for port in "$P_GATEWAY" "$P_UPSTREAM" "$P_BROKEN" "$P_HOLD" "$P_PROXY" "$P_OFF"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use: is another bench/load.sh running?" >&2
    exit 1
  fi
done

# --- static upstreams (nginx, one worker on CPU 1) ---------------------------
COMPLETION='{"id":"chatcmpl-static","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":300,"completion_tokens":9,"total_tokens":309}}'
# The stream: 20 chunks, as OpenAI sends them with usage on: a role-only
# chunk, 17 content chunks of a short word each, the finish chunk and the
# usage-only chunk; then [DONE].
chunk() { printf 'data: {"id":"chatcmpl-static","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":%s}\\n\\n' "$1"; }
SSE=$(chunk '[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]')
for word in Sure " here" " is" " a" " short" " answer" " in" " seventeen" " small" " words" " so" " each" " chunk" " stays" " tiny" " and" " done"; do
  SSE+=$(chunk '[{"index":0,"delta":{"content":"'"$word"'"},"finish_reason":null}]')
done
SSE+=$(chunk '[{"index":0,"delta":{},"finish_reason":"stop"}]')
SSE+=$(chunk '[],"usage":{"prompt_tokens":300,"completion_tokens":17,"total_tokens":317}')
SSE+='data: [DONE]\n\n'
NGINX_DIR=$(mktemp -d)
cat > "$NGINX_DIR/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $NGINX_DIR;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$P_UPSTREAM;
    location = /v1/chat/completions {
      if (\$http_accept = "text/event-stream") { rewrite ^ /sse last; }
      default_type application/json;
      return 200 '$COMPLETION';
    }
    location = /sse { internal; default_type text/event-stream; return 200 '$SSE'; }
  }
  server {
    listen 127.0.0.1:$P_BROKEN;
    default_type application/json;
    location / { return 500 '{"error":{"message":"upstream broken","type":"server_error"}}'; }
  }
}
CONF
taskset -c 1 nginx -c "$NGINX_DIR/nginx.conf" &
NGINX_PID=$!
# The floor for any proxy on this machine: nginx itself as a plain reverse
# proxy on CPU 0 (where the gateway runs), in front of the same upstream.
mkdir -p "$NGINX_DIR/proxy"
cat > "$NGINX_DIR/proxy/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $NGINX_DIR/proxy/nginx.pid;
error_log $NGINX_DIR/proxy/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $NGINX_DIR/proxy;
  proxy_temp_path $NGINX_DIR/proxy;
  keepalive_requests 1000000;
  upstream static { server 127.0.0.1:$P_UPSTREAM; keepalive 64; }
  server {
    listen 127.0.0.1:$P_PROXY;
    location / {
      proxy_pass http://static;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
CONF
taskset -c 0 nginx -c "$NGINX_DIR/proxy/nginx.conf" &
PROXY_PID=$!
GATEWAY_PID=""
cleanup() {
  [ -n "$GATEWAY_PID" ] && kill "$GATEWAY_PID" 2>/dev/null || true
  [ -n "${OFF_PID:-}" ] && kill "$OFF_PID" 2>/dev/null || true
  kill "$NGINX_PID" "$PROXY_PID" 2>/dev/null || true
  [ -n "${HOLD_UP_PID:-}" ] && kill "$HOLD_UP_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$NGINX_DIR"
}
trap cleanup EXIT

# Fails (and so ends the script, under set -e, unless tested) if port $1 never opens.
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

# Waits (up to IDLE_WAIT seconds, default 30) until the machine is idle: both
# CPUs over 90 % idle for a second. On a machine another job keeps busy, a
# short IDLE_WAIT keeps the run to minutes (and its numbers are noisier).
IDLE_WAIT=${IDLE_WAIT:-30}
wait_idle() {
  for _ in $(seq "$IDLE_WAIT"); do
    read -r _ u1 n1 s1 i1 w1 x1 y1 z1 _ < /proc/stat
    sleep 1
    read -r _ u2 n2 s2 i2 w2 x2 y2 z2 _ < /proc/stat
    local busy=$(( (u2+n2+s2+x2+y2+z2) - (u1+n1+s1+x1+y1+z1) ))
    local idle=$(( (i2+w2) - (i1+w1) ))
    [ $(( idle * 100 / (busy + idle + 1) )) -ge 90 ] && return 0
  done
  echo "warning: the machine did not become idle" >&2
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

start_gateway() {
  RUST_LOG=warn taskset -c 0 "$GATEWAY" --config "$OUT/gateway.toml" --listen 127.0.0.1:$P_GATEWAY >"$OUT/gateway.log" 2>&1 &
  GATEWAY_PID=$!
  wait_port $P_GATEWAY
}

# wrk at $1 connections against $2 (URL), model $3, stream $4: "rps p50_us p99_us".
# Non-2xx answers fail the run unless $5 is "errors-expected".
run_wrk() {
  local out
  out=$(MODEL=$3 STREAM=$4 taskset -c 1 wrk -t1 -c"$1" -d"$DURATION" --latency -s bench/post.lua "$2")
  if [ "${5:-}" != errors-expected ] && echo "$out" | grep -q "Non-2xx"; then
    echo "$out" >&2; echo "non-2xx answers" >&2; exit 1
  fi
  local rps p50 p99
  rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  echo "$rps $(to_us "$p50") $(to_us "$p99")"
}

# CPU time (utime + stime, in clock ticks) of process $1 and its children:
# the gateway, or the nginx proxy's master and its worker.
tree_ticks() {
  local total=0 pid f
  for pid in "$1" $(pgrep -P "$1" || true); do
    # Fields after the command name: utime and stime are fields 14 and 15.
    read -r -a f <<<"$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null || true)"
    if [ "${#f[@]}" -gt 12 ]; then total=$(( total + f[11] + f[12] )); fi
  done
  echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)

# run_wrk plus the CPU the process tree of $1 used per request:
# "rps p50_us p99_us cpu_us_per_request" for $2 connections against $3, model $4, stream $5.
run_wrk_cpu() {
  local pid=$1 out before after requests rps p50 p99
  shift
  before=$(tree_ticks "$pid")
  out=$(MODEL=$3 STREAM=$4 taskset -c 1 wrk -t1 -c"$1" -d"$DURATION" --latency -s bench/post.lua "$2")
  after=$(tree_ticks "$pid")
  if echo "$out" | grep -q "Non-2xx"; then
    echo "$out" >&2; echo "non-2xx answers" >&2; exit 1
  fi
  requests=$(echo "$out" | awk '/ requests in / {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  echo "$rps $(to_us "$p50") $(to_us "$p99") $(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN {printf "%.1f", t * 1000000 / hz / n}')"
}

# wrk prints 1.23ms / 456.00us / 1.02s
to_us() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.0f", v }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.0f", v * 1000 }
    else { sub(/s$/, "", v); printf "%.0f", v * 1000000 } }'
}

wait_port $P_UPSTREAM
wait_port $P_PROXY

# ONLY=instructions: instead of the load runs, the gateway under callgrind,
# one connection, and the user-space instructions per served call (JSON,
# then a 20-chunk stream). Unlike wall time on a shared VM, the count
# repeats from run to run, so it can tell a 1 % change.
if [ "${ONLY:-}" = instructions ]; then
  if ! need valgrind; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
  fi
  CG="$OUT/callgrind"
  rm -f "$CG".*
  RUST_LOG=warn taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$CG.%p" \
    "$GATEWAY" --config "$OUT/gateway.toml" --listen 127.0.0.1:$P_GATEWAY >"$OUT/gateway.log" 2>&1 &
  GATEWAY_PID=$!
  for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$P_GATEWAY") 2>/dev/null && break; sleep 0.1; done
  VIA=http://127.0.0.1:$P_GATEWAY/v1/chat/completions
  for stream in 0 1; do
    MODEL=bench STREAM=$stream taskset -c 1 wrk -t1 -c1 -d3s -s bench/post.lua "$VIA" >/dev/null
    callgrind_control -z "$GATEWAY_PID" >/dev/null 2>&1
    n=$(MODEL=bench STREAM=$stream taskset -c 1 wrk -t1 -c1 -d10s -s bench/post.lua "$VIA" | awk '/ requests in / {print $1}')
    callgrind_control -d "$GATEWAY_PID" >/dev/null 2>&1
    sleep 1
    ir=$(grep -h "^summary:" $(ls -t "$CG".*.* | head -1) | awk '{print $2}')
    echo "$([ $stream = 1 ] && echo "stream, 20 chunks" || echo JSON): $((ir / n)) instructions per call ($n calls)" | tee -a "$OUT/instructions.txt"
  done
  exit 0
fi

start_gateway
IDLE_RSS=$(rss_kb "$GATEWAY_PID")
DIRECT=http://127.0.0.1:$P_UPSTREAM/v1/chat/completions
VIA=http://127.0.0.1:$P_GATEWAY/v1/chat/completions

{
echo "# Load benchmark, $(date -u +%Y-%m-%d), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
echo
echo "gateway pinned to CPU 0; nginx and wrk on CPU 1; $DURATION per run; 1.2 KB request; streams of 20 chunks"
echo
echo "| mode | connections | direct req/s | gateway req/s | direct p50 / p99 (µs) | gateway p50 / p99 (µs) | added p50 / p99 (µs) |"
echo "|---|---|---|---|---|---|---|"
} | tee "$RESULTS"

for stream in 0 1; do
  mode=$([ $stream = 1 ] && echo "streaming (to last byte)" || echo "non-streaming")
  for c in 1 4 32; do
    wait_idle; read -r d_rps d_p50 d_p99 <<<"$(run_wrk "$c" "$DIRECT" bench "$stream")"
    wait_idle; read -r g_rps g_p50 g_p99 <<<"$(run_wrk "$c" "$VIA" bench "$stream")"
    echo "| $mode | $c | $d_rps | $g_rps | $d_p50 / $d_p99 | $g_p50 / $g_p99 | $((g_p50 - d_p50)) / $((g_p99 - d_p99)) |" | tee -a "$RESULTS"
  done
done

# Against the proxy floor: nginx as a plain reverse proxy (proxy_pass,
# keep-alive upstream, no buffering) on CPU 0 like the gateway, in front of
# the same upstream; runs alternated, CPU per request from /proc.
PROXY=http://127.0.0.1:$P_PROXY/v1/chat/completions
PROXIED=$(curl -sf -H 'Accept: text/event-stream' -H 'Content-Type: application/json' -d '{"model":"bench","stream":true,"messages":[]}' "$PROXY")
if [ "$(grep -c '^data: {' <<<"$PROXIED")" != 20 ] || ! grep -q '^data: \[DONE\]' <<<"$PROXIED"; then
  echo "the nginx proxy does not pass the 20-chunk stream through:" >&2; echo "$PROXIED" >&2; exit 1
fi
{
echo
echo "## Against the proxy floor"
echo
echo "nginx \`proxy_pass\` (one worker, keep-alive upstream, \`proxy_buffering off\`) and the gateway, both pinned to CPU 0, in front of the same upstream; wrk on CPU 1; runs alternated; CPU per request = utime + stime of the process (nginx: master and worker) over the run / requests served."
echo
echo "| mode | connections | nginx req/s | gateway req/s | gateway / nginx | nginx p50 / p99 (µs) | gateway p50 / p99 (µs) | added p50 / p99 (µs) | nginx CPU/req (µs) | gateway CPU/req (µs) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
} | tee -a "$RESULTS"
ADDED_AT_1=()
for stream in 0 1; do
  mode=$([ $stream = 1 ] && echo "streaming, 20 chunks" || echo "JSON")
  for c in 1 4 32; do
    wait_idle; read -r n_rps n_p50 n_p99 n_cpu <<<"$(run_wrk_cpu "$PROXY_PID" "$c" "$PROXY" bench "$stream")"
    wait_idle; read -r g_rps g_p50 g_p99 g_cpu <<<"$(run_wrk_cpu "$GATEWAY_PID" "$c" "$VIA" bench "$stream")"
    ratio=$(awk -v a="$g_rps" -v b="$n_rps" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
    echo "| $mode | $c | $n_rps | $g_rps | $ratio | $n_p50 / $n_p99 | $g_p50 / $g_p99 | $((g_p50 - n_p50)) / $((g_p99 - n_p99)) | $n_cpu | $g_cpu |" | tee -a "$RESULTS"
    if [ "$c" = 1 ]; then ADDED_AT_1+=("$mode: gateway p50 $g_p50 µs against nginx $n_p50 µs, $((g_p50 - n_p50)) µs added"); fi
  done
done
{
echo
echo "At 1 connection: ${ADDED_AT_1[0]}; ${ADDED_AT_1[1]}."
} | tee -a "$RESULTS"

# Time to first byte of a stream, one connection (python keep-alive client on CPU 1).
wait_idle; read -r df50 df99 dl50 dl99 <<<"$(taskset -c 1 python3 bench/ttfb.py 127.0.0.1 $P_UPSTREAM bench 2000)"
wait_idle; read -r gf50 gf99 gl50 gl99 <<<"$(taskset -c 1 python3 bench/ttfb.py 127.0.0.1 $P_GATEWAY bench 2000)"
{
echo
echo "Streaming, 1 connection, 2000 requests (python keep-alive client):"
echo
echo "| | direct p50 / p99 (µs) | gateway p50 / p99 (µs) | added p50 / p99 (µs) |"
echo "|---|---|---|---|"
echo "| time to first byte | $df50 / $df99 | $gf50 / $gf99 | $((gf50 - df50)) / $((gf99 - df99)) |"
echo "| time to last byte | $dl50 / $dl99 | $gl50 / $gl99 | $((gl50 - dl50)) / $((gl99 - dl99)) |"
} | tee -a "$RESULTS"

# Failover: the first candidate answers 500 at once, the second serves.
wait_idle; read -r f_rps f_p50 f_p99 <<<"$(run_wrk 1 "$VIA" failover 0)"
wait_idle; read -r h_rps h_p50 h_p99 <<<"$(run_wrk 1 "$VIA" bench 0)"
wait_idle; read -r b_rps b_p50 b_p99 <<<"$(run_wrk 1 http://127.0.0.1:$P_BROKEN/v1/chat/completions bench 0 errors-expected)"
{
echo
echo "Failover, 1 connection: gateway happy path p50 $h_p50 µs; failover route p50 $f_p50 µs (p99 $f_p99 µs)."
echo "Added by the failover: $((f_p50 - h_p50)) µs at p50; the failed call itself takes $b_p50 µs at p50 direct, so the failover costs $((f_p50 - h_p50 - b_p50)) µs beyond the extra call (target: at most 100)."
} | tee -a "$RESULTS"

# Metrics on (the default) against off: a second gateway with
# `[server] metrics = false`, runs alternated, the median of three each.
sed 's/^\[server\]/[server]\nmetrics = false/' "$OUT/gateway.toml" > "$OUT/no-metrics.toml"
RUST_LOG=warn taskset -c 0 "$GATEWAY" --config "$OUT/no-metrics.toml" --listen 127.0.0.1:$P_OFF >"$OUT/gateway-no-metrics.log" 2>&1 &
OFF_PID=$!
wait_port $P_OFF
METRICS_STATUS=$(curl -s -o "$OUT/metrics.txt" -w '%{http_code}' "http://127.0.0.1:$P_GATEWAY/metrics" || true)
if [ "$METRICS_STATUS" != 200 ]; then
  echo "metrics are not on by default? GET /metrics answered '$METRICS_STATUS' (gateway $(kill -0 "$GATEWAY_PID" 2>/dev/null && echo alive || echo dead); see $OUT/gateway.log)" >&2
  exit 1
fi
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
{
echo
echo "Metrics on against off (gateway req/s, median of 3 alternated runs; the same gateway, \`[server] metrics = false\` for off):"
echo
echo "| mode | connections | metrics off req/s | metrics on req/s | on / off |"
echo "|---|---|---|---|---|"
} | tee -a "$RESULTS"
for stream in 0 1; do
  mode=$([ $stream = 1 ] && echo "streaming" || echo "non-streaming")
  for c in 4 32; do
    on=(); off=()
    for _ in 1 2 3; do
      wait_idle; read -r r _ _ <<<"$(run_wrk "$c" http://127.0.0.1:$P_OFF/v1/chat/completions bench "$stream")"; off+=("$r")
      wait_idle; read -r r _ _ <<<"$(run_wrk "$c" "$VIA" bench "$stream")"; on+=("$r")
    done
    m_off=$(median "${off[@]}"); m_on=$(median "${on[@]}")
    echo "| $mode | $c | $m_off | $m_on | $(awk -v a="$m_on" -v b="$m_off" 'BEGIN {printf "%.3f", a / b}') |" | tee -a "$RESULTS"
  done
done
kill "$OFF_PID"; wait "$OFF_PID" 2>/dev/null || true

PEAK_RSS=$(hwm_kb "$GATEWAY_PID")

# Memory with 1000 concurrent open streams, against a slow upstream. Best
# effort: if the python holder fails, this is said in the results (its
# stderr is kept in $OUT/hold*.err) instead of ending the script.
kill "$GATEWAY_PID"; wait "$GATEWAY_PID" 2>/dev/null || true
GATEWAY_PID=""
taskset -c 1 python3 bench/hold_streams.py upstream $P_HOLD 2>"$OUT/hold-upstream.err" &
HOLD_UP_PID=$!
sed "s#127.0.0.1:$P_UPSTREAM#127.0.0.1:$P_HOLD#" "$OUT/gateway.toml" > "$OUT/hold.toml"
if wait_port $P_HOLD; then
  RUST_LOG=warn taskset -c 0 "$GATEWAY" --config "$OUT/hold.toml" --listen 127.0.0.1:$P_GATEWAY >"$OUT/gateway-hold.log" 2>&1 &
  GATEWAY_PID=$!
  wait_port $P_GATEWAY
  : > "$OUT/hold.out"
  exec 4> >(taskset -c 1 python3 bench/hold_streams.py client 127.0.0.1 $P_GATEWAY bench 1000 > "$OUT/hold.out" 2>"$OUT/hold-client.err")
  for _ in $(seq 120); do grep -q open "$OUT/hold.out" 2>/dev/null && break; sleep 0.5; done
  OPEN=$(cat "$OUT/hold.out" 2>/dev/null || true)
  if [ -n "$OPEN" ] && STREAMS_RSS=$(rss_kb "$GATEWAY_PID" 2>/dev/null) && [ -n "$STREAMS_RSS" ]; then
    STREAMS="with 1000 concurrent open streams ($OPEN) $((STREAMS_RSS / 1024)) MB"
  else
    STREAMS="with 1000 concurrent open streams: not measured (the holder printed '${OPEN:-nothing}'; see $OUT/hold-client.err)"
    echo "warning: $STREAMS" >&2
  fi
  exec 4>&-
else
  STREAMS="with 1000 concurrent open streams: not measured (the slow upstream never listened; see $OUT/hold-upstream.err)"
  echo "warning: $STREAMS" >&2
fi
{
echo
echo "Memory: idle $((IDLE_RSS / 1024)) MB RSS; peak over the runs above $((PEAK_RSS / 1024)) MB; $STREAMS."
} | tee -a "$RESULTS"
