"""Time to first byte and to last byte of streamed chat completions over one
keep-alive connection: `python3 ttfb.py HOST PORT MODEL N` prints p50 and p99
of both, in microseconds. Each request's first byte is the first body line."""
import http.client
import json
import sys
import time

host, port, model, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
body = json.dumps({
    "model": model, "stream": True, "temperature": 0.2, "max_tokens": 256,
    "messages": [
        {"role": "system", "content": "You are a helpful assistant that answers concisely and accurately."},
        {"role": "user", "content": "word " * 210},
    ],
})
headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
conn = http.client.HTTPConnection(host, port)
first, last = [], []
for i in range(n + 50):
    start = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, headers)
    resp = conn.getresponse()
    resp.readline()  # the first line of the event stream
    t1 = time.perf_counter()
    resp.read()
    t2 = time.perf_counter()
    if resp.status != 200:
        sys.exit(f"status {resp.status}")
    if i >= 50:  # warm-up
        first.append((t1 - start) * 1e6)
        last.append((t2 - start) * 1e6)

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]

print(f"{pct(first, .5):.0f} {pct(first, .99):.0f} {pct(last, .5):.0f} {pct(last, .99):.0f}")
