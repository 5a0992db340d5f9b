"""Opens N concurrent streamed chat completions through the gateway and keeps
them open: `python3 hold_streams.py upstream PORT` serves a slow SSE upstream
(one chunk, then silence for HOLD seconds, then the rest);
`python3 hold_streams.py client HOST PORT MODEL N` opens N streams, waits
until each has its first chunk, prints "open N", then holds them until stdin
closes."""
import asyncio
import json
import sys

HOLD = 60
CHUNK = 'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":null}]}\n\n'
FINISH = 'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}\n\ndata: [DONE]\n\n'


async def upstream_conn(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")

            def chunk(text):
                data = text.encode()
                writer.write(b"%x\r\n%s\r\n" % (len(data), data))

            chunk(CHUNK % "hello")
            await writer.drain()
            await asyncio.sleep(HOLD)
            chunk(CHUNK % " world")
            chunk(FINISH)
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def upstream(port):
    server = await asyncio.start_server(upstream_conn, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


async def one_stream(host, port, model, opened, failed):
    try:
        reader, writer = await asyncio.open_connection(host, port)
        body = json.dumps({"model": model, "stream": True,
                           "messages": [{"role": "user", "content": "hi"}]}).encode()
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                     b"accept: text/event-stream\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        try:
            await reader.readuntil(b"hello")
        except asyncio.IncompleteReadError as e:
            # Say what came instead of the first chunk (an error answer?).
            failed.append(head.split(b"\r\n")[0] + b" / " + e.partial[:300])
            return writer
    except (OSError, asyncio.IncompleteReadError) as e:
        failed.append(repr(e).encode())
        return None
    opened.append(1)
    return writer


async def client(host, port, model, n):
    opened, failed = [], []
    writers = await asyncio.gather(*(one_stream(host, port, model, opened, failed) for _ in range(n)))
    if failed:
        print(f"{len(failed)} of {n} streams failed; the first: {failed[0]!r}", file=sys.stderr, flush=True)
        print(f"open {len(opened)} of {n}, {len(failed)} failed", flush=True)
    else:
        print(f"open {len(opened)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for w in writers:
        if w is not None:
            w.close()


if sys.argv[1] == "upstream":
    asyncio.run(upstream(int(sys.argv[2])))
else:
    asyncio.run(client(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])))
