#!/usr/bin/env python3
"""A syncmq publisher in pyzmq, written from docs/protocol.md (1.1) alone.

It waits for --expect subscribers to join through the sync handshake,
publishes --count records round-robin on --topics in batches of up to
--batch records, heartbeats every second, sends END, and serves repairs
(FETCH and FETCH_MANY) until every subscriber that joined said BYE.

    publisher.py --bind tcp://127.0.0.1:5561 --sync tcp://127.0.0.1:5562 \
                 --recovery tcp://127.0.0.1:5563 --expect 2 --count 10000 [--skip K] [--fetch-only]

--skip K keeps every K-th batch from the live stream (it is still kept for
repairs), so subscribers must repair; --fetch-only answers FETCH_MANY as a
1.0 publisher does (ERROR 1), so they must fall back to FETCH.

A libzmq PUB cannot address one connection, so this publisher sends one
HELLO nonce to every connection (section 2 allows it): the proof then
shows a subscriber reads the data stream, not which connection it reads.
"""
import argparse, json, os, struct, sys, time, zmq

CONTROL = b"\x00syncmq"
DATA, HELLO, HEARTBEAT, END = 1, 2, 3, 4

_T = [0] * 256
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    _T[i] = c

def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = _T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF

class Publisher:
    def __init__(self, a):
        self.a, self.ctx = a, zmq.Context()
        self.id, self.nonce = os.urandom(16), os.urandom(16)
        self.epoch = time.time_ns() // 1000              # Unix microseconds: below 2^53
        self.data = self.ctx.socket(zmq.XPUB)            # XPUB: we see subscriptions arrive
        self.data.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.data.setsockopt(zmq.SNDHWM, 0)
        self.data.bind(a.bind)
        self.sync = self.ctx.socket(zmq.ROUTER); self.sync.bind(a.sync)
        self.rec = self.ctx.socket(zmq.ROUTER); self.rec.bind(a.recovery)
        self.joined, self.byes = {}, set()               # subscriber id -> nonce quoted
        self.last, self.history = {}, []                 # topic -> last seq; [(topic, first, count, frames)]
        self.publishing, self.ended = False, False
        self.fetches = self.replayed = 0

    def envelope(self, topic, kind, seq=0, records=(), payload=b"", flags=0):
        count = len(records)
        if kind == DATA:
            payload = records[0] if count == 1 else b"".join(struct.pack(">I", len(r)) + r for r in records)
            flags |= 1 if count > 1 else 0
        h = struct.pack(">2sBBHH16sQQqII", b"SQ", 1, kind, flags, count, self.id, self.epoch, seq,
                        time.time_ns(), len(payload), crc32c(payload))
        return [topic, h, payload]

    def table(self):
        return struct.pack(">H", len(self.last)) + b"".join(
            bytes([len(t)]) + t + struct.pack(">Q", s) for t, s in self.last.items())

    def hello(self):
        self.data.send_multipart(self.envelope(CONTROL, HELLO, payload=self.nonce))

    def poll(self, ms):
        """Serves subscriptions, sync requests and repairs for up to ms."""
        poller = zmq.Poller()
        for s in (self.data, self.sync, self.rec):
            poller.register(s, zmq.POLLIN)
        for s, _ in poller.poll(ms):
            if s is self.data:
                sub = self.data.recv()
                if sub[:1] == b"\x01" and CONTROL.startswith(sub[1:]) and not self.publishing:
                    self.hello()                          # the control topic: HELLO proves it
            elif s is self.sync:
                ident, *frames = self.sync.recv_multipart()
                delim = frames[:1] == [b""]               # REQ, or a DEALER acting like one
                reply = self.handshake(frames[1:] if delim else frames)
                self.sync.send_multipart([ident] + ([b""] if delim else []) + [json.dumps(reply).encode()])
            else:
                ident, *frames = self.rec.recv_multipart()
                for r in self.fetch(frames):
                    self.rec.send_multipart([ident] + r)

    def handshake(self, frames):
        def error(code, msg, **extra):
            return dict({"v": 1, "type": "error", "code": code, "message": msg}, **extra)
        try:
            r = json.loads(frames[0]) if len(frames) == 1 and len(frames[0]) <= 65536 else None
        except ValueError:
            r = None
        if not isinstance(r, dict) or "v" not in r:
            return error("malformed", "not a READY")
        if r["v"] != 1:
            return error("version", "this publisher speaks 1", versions=[1])
        if r.get("type") not in ("ready", "bye") or not isinstance(r.get("subscriber"), str):
            return error("malformed", "not a READY or BYE")
        if r.get("publisher", "").lower() != self.id.hex() or r.get("epoch") != self.epoch:
            return error("wrong_publisher", "this is %s epoch %d" % (self.id.hex(), self.epoch))
        nonce = str(r.get("nonce", "")).lower()
        if r["type"] == "bye":
            if self.joined.get(r["subscriber"]) != nonce:
                return error("bad_nonce", "bye must quote the nonce of your last READY")
            self.byes.add(r["subscriber"])
            return {"v": 1, "type": "bye"}
        if self.ended:
            return error("wrong_publisher", "this publisher has ended")
        if nonce != self.nonce.hex():
            return error("bad_nonce", "not the nonce of our HELLO")
        self.joined[r["subscriber"]] = nonce
        prefixes = [p.encode() for p in r.get("topics") or [""]]
        return {"v": 1, "type": "ack", "publisher": self.id.hex(), "epoch": self.epoch,
                "joined": len(self.joined), "expect": self.a.expect, "quorum": len(self.joined) >= self.a.expect,
                "topics": [{"topic": t.decode(), "seq": s} for t, s in self.last.items()
                           if any(t.startswith(p) for p in prefixes)],
                "recovery": self.a.recovery, "repair_window_ms": 5_000}

    def fetch(self, frames):
        """Section 4: the answer to one request, as a list of messages."""
        self.fetches += 1
        f = frames[0] if len(frames) == 1 else b""
        rid = struct.unpack(">I", f[4:8])[0] if len(f) >= 8 and f[:2] == b"SR" else 0
        def error(code, text):
            return [[struct.pack(">2sBBIH", b"SR", 1, 12, rid, code) + text.encode()]]
        if len(f) < 8 or f[:2] != b"SR":
            return error(1, "not a request")
        if f[2] != 1:
            return error(5, "this server speaks version 1")
        try:
            pub, epoch = f[8:24], struct.unpack(">Q", f[24:32])[0]
            if f[3] == 1:
                lo, hi, n = struct.unpack(">QQB", f[32:49]); ranges = [(f[49:49 + n], lo, hi)]
                assert len(f) == 49 + n
            elif f[3] == 2 and not self.a.fetch_only:
                (k,) = struct.unpack(">H", f[32:34]); off, ranges = 34, []
                for _ in range(k):
                    lo, hi, n = struct.unpack(">QQB", f[off:off + 17])
                    ranges.append((f[off + 17:off + 17 + n], lo, hi)); off += 17 + n
                assert off == len(f) and 1 <= k <= 1024
            else:
                return error(1, "unknown request type %d" % f[3])
            assert all(n and 1 <= lo <= hi for n, lo, hi in ranges)
        except (AssertionError, struct.error):
            return error(1, "malformed request")
        out, statuses = [], []
        for topic, lo, hi in ranges:
            last = self.last.get(topic, 0)
            if pub != self.id or epoch != self.epoch:
                statuses.append((2, 0, 0)); continue
            if topic not in self.last:
                statuses.append((3, 0, 0)); continue
            if lo > last and f[3] == 2:
                statuses.append((4, 1, last)); continue
            for t, first, count, frames_ in self.history:  # everything is kept: first held is 1
                if t == topic and first <= hi and first + count - 1 >= lo:
                    h = bytearray(frames_[1]); h[5] |= 2         # the REPLAY flag, bit 1 of flags
                    out.append([struct.pack(">2sBBI", b"SR", 1, 10, rid), frames_[0], bytes(h), frames_[2]])
                    self.replayed += count
            statuses.append((0, 1, last))
        if f[3] == 1:
            s, first, last = statuses[0]
            out.append([struct.pack(">2sBBIBQQQ", b"SR", 1, 11, rid, s, first, last, self.epoch)])
        else:
            out.append([struct.pack(">2sBBIQH", b"SR", 1, 13, rid, self.epoch, len(statuses)) +
                        b"".join(struct.pack(">BQQ", *e) for e in statuses)])
        return out

    def run(self):
        a, topics = self.a, [t.encode() for t in self.a.topics]
        while len(self.joined) < a.expect:                 # HELLO until the quorum
            self.poll(200)
            if len(self.joined) < a.expect:
                self.hello()
        self.publishing, beat, i, batches = True, time.monotonic(), 0, 0
        while i < a.count:
            topic, first = topics[(i // a.batch) % len(topics)], self.last.get(topics[(i // a.batch) % len(topics)], 0) + 1
            n = min(a.batch, a.count - i)
            frames = self.envelope(topic, DATA, seq=first, records=[b"Rhubarb %d" % (i + j) for j in range(n)])
            self.history.append((topic, first, n, frames)); self.last[topic] = first + n - 1
            batches += 1
            if not (a.skip and batches % a.skip == 0):
                self.data.send_multipart(frames)
            if a.hello_every and batches % a.hello_every == 0:
                self.hello()                               # repeated HELLOs are allowed after the start
            i += n
            self.poll(0)
            if time.monotonic() - beat >= 1:
                self.data.send_multipart(self.envelope(CONTROL, HEARTBEAT, payload=self.table())); beat = time.monotonic()
        self.data.send_multipart(self.envelope(CONTROL, END, payload=self.table()))
        self.ended, deadline = True, time.monotonic() + 30
        while set(self.joined) - self.byes and time.monotonic() < deadline:
            self.poll(100)                                 # the repair window
        print("published %d in %d batches, %d requests, %d records replayed, %d of %d said bye" % (
            a.count, batches, self.fetches, self.replayed, len(self.byes), len(self.joined)), file=sys.stderr)
        return 0 if self.byes == set(self.joined) else 1

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="tcp://*:5561")
    ap.add_argument("--sync", default="tcp://*:5562")
    ap.add_argument("--recovery", default="tcp://*:5563")
    ap.add_argument("--expect", type=int, default=1)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--topics", nargs="*", default=["update"])
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--fetch-only", action="store_true")
    ap.add_argument("--hello-every", type=int, default=0)
    sys.exit(Publisher(ap.parse_args()).run())
