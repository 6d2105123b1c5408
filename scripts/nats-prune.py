#!/usr/bin/env python3
"""Delete JetStream streams on the test nats-server: those older than AGE seconds
(`nats-prune.py --older-than 3600`) or one by name (`nats-prune.py --name BENCH123_EVIDENCE`).

Every test and benchmark run makes its own stream, and each reserves its max bytes from
the server's storage: left behind, they exhaust it ("insufficient storage resources").
Speaks the NATS text protocol directly (no nats CLI is packaged here)."""
import argparse, datetime, json, socket, urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("--nats", default="127.0.0.1:54222")
ap.add_argument("--monitor", default="http://127.0.0.1:58222")
ap.add_argument("--older-than", type=float)
ap.add_argument("--name", action="append", default=[])
a = ap.parse_args()

names = list(a.name)
if a.older_than is not None:
    d = json.load(urllib.request.urlopen(f"{a.monitor}/jsz?streams=true&config=true", timeout=10))
    now = datetime.datetime.now(datetime.timezone.utc)
    for acc in d.get("account_details", []):
        for s in acc.get("stream_detail", []):
            created = s.get("created", "")
            try:
                # Nanosecond timestamps: keep microseconds for fromisoformat.
                base, _, frac = created.rstrip("Z").partition(".")
                t = datetime.datetime.fromisoformat(base + "." + (frac + "000000")[:6] + "+00:00")
            except ValueError:
                continue
            if (now - t).total_seconds() > a.older_than:
                names.append(s["name"])
if not names:
    raise SystemExit(0)
host, port = a.nats.rsplit(":", 1)
sock = socket.create_connection((host, int(port)), timeout=10)
f = sock.makefile("rb")
f.readline()  # INFO
sock.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB _prune.reply 1\r\n')
deleted = 0
for n in names:
    sock.sendall(f"PUB $JS.API.STREAM.DELETE.{n} _prune.reply 0\r\n\r\n".encode())
    while True:
        line = f.readline()
        if line.startswith(b"PING"):
            sock.sendall(b"PONG\r\n")
            continue
        if line.startswith(b"MSG"):
            size = int(line.split()[-1])
            body = f.read(size + 2)[:size]
            deleted += b'"success":true' in body
            break
        if not line or line.startswith(b"-ERR"):
            raise SystemExit(f"nats: {line!r}")
sock.close()
print(f"deleted {deleted} of {len(names)} streams")
