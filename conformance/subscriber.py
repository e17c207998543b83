#!/usr/bin/env python3
"""A syncmq subscriber in pyzmq, written from docs/protocol.md (1.1) alone.

It joins a publisher (HELLO, READY, ACK), keeps what arrives before the
ACK, starts every topic where the ACK says, checks each record's sequence,
repairs every gap over the recovery channel (FETCH_MANY, or FETCH from a
1.0 publisher), reports what cannot be repaired, stops at END and says BYE.

    subscriber.py --pub tcp://127.0.0.1:5561 --sync tcp://127.0.0.1:5562 [--drop K] [--multi]

--drop K pretends every K-th live DATA or MULTI message was lost in the
network, so the repair path runs. --multi asks for MULTI messages
(section 1.5), records of several topics in one message. Prints "topic seq payload" per record on stdout and a
summary on stderr; exits 0 when everything up to END arrived, 1 on a loss,
2 when the publisher went silent or refused us.
"""
import argparse, json, os, struct, sys, time, zmq

CONTROL = b"\x00syncmq"
DATA, HELLO, HEARTBEAT, END, ABORT, MULTI = 1, 2, 3, 4, 5, 6
BATCH = 1
SILENCE_MS = 10_000        # heartbeats come every second: 10 s of nothing means gone
REPLY_MS = 1_000           # one READY attempt; then a new REQ socket (Lazy Pirate)

_T = [0] * 256             # CRC-32C (Castagnoli), reflected polynomial 0x82F63B78
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

def decode_multi(frames):
    """Section 1.5: returns (prefix, header dict, runs), each run (topic, first seq, records), or None."""
    prefix, h, idx, rec = frames
    magic, ver, kind, flags, count, pub, epoch, seq, t, n, crc = struct.unpack(">2sBBHH16sQQqII", h)
    if magic != b"SQ" or ver != 1 or kind != MULTI or flags or seq or n != len(idx) + len(rec) or crc32c(idx + rec) != crc:
        return None
    try:
        (k,) = struct.unpack_from(">H", idx); off, entries = 2, []
        for _ in range(k):
            l = idx[off]; name = idx[off + 1:off + 1 + l]
            (first,) = struct.unpack_from(">Q", idx, off + 1 + l); off += 9 + l
            if not name.startswith(prefix):
                return None
            entries.append([name, first])
        runs, roff = [], 0                    # consecutive records of one topic
        for i in range(count):
            (e,) = struct.unpack_from(">H", idx, off + 2 * i)
            (l,) = struct.unpack_from(">I", rec, roff); r = rec[roff + 4:roff + 4 + l]; roff += 4 + l
            name, s = entries[e]; entries[e][1] += 1
            if runs and runs[-1][0] == name:
                runs[-1][2].append(r)
            else:
                runs.append((name, s, [r]))
        if off + 2 * count != len(idx) or roff != len(rec):
            return None
    except (IndexError, struct.error):
        return None
    return prefix, dict(kind=kind, flags=flags, count=count, pub=pub, epoch=epoch, seq=0, time=t), runs

def decode(frames):
    """Section 1: returns (topic, header dict, records or table or payload), or None to drop."""
    if len(frames) == 4 and len(frames[1]) == 56:
        return decode_multi(frames)
    if len(frames) != 3 or len(frames[1]) != 56:
        return None
    topic, h, p = frames
    magic, ver, kind, flags, count, pub, epoch, seq, t, n, crc = struct.unpack(">2sBBHH16sQQqII", h)
    if magic != b"SQ" or ver != 1 or n != len(p) or crc32c(p) != crc:
        return None                           # another version too: drop it, count it
    hdr = dict(kind=kind, flags=flags, count=count, pub=pub, epoch=epoch, seq=seq, time=t)
    if kind == DATA:
        if not flags & BATCH:
            return topic, hdr, [p]
        recs, off = [], 0
        for _ in range(count):
            (l,) = struct.unpack_from(">I", p, off)
            recs.append(p[off + 4:off + 4 + l]); off += 4 + l
        return topic, hdr, recs
    if kind in (HEARTBEAT, END):
        (k,) = struct.unpack_from(">H", p); off, table = 2, {}
        for _ in range(k):
            l = p[off]; name = p[off + 1:off + 1 + l]
            (table[name],) = struct.unpack_from(">Q", p, off + 1 + l); off += 9 + l
        return topic, hdr, table
    return topic, hdr, p

class Subscriber:
    def __init__(self, a):
        self.a, self.ctx = a, zmq.Context()
        self.prefixes = [p.encode() for p in a.topics] or [b""]
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.RCVHWM, 0)
        self.sub.connect(a.pub)
        for p in self.prefixes:               # data prefixes first, the control topic last
            self.sub.setsockopt(zmq.SUBSCRIBE, p)
        self.sub.setsockopt(zmq.SUBSCRIBE, CONTROL)
        self.next, self.final = {}, {}        # topic -> next expected sequence, END's last
        self.received = self.repaired = self.lost = self.live = self.multis = 0
        self.req_id, self.rec, self.many = 0, None, True

    def recv(self):
        if not self.sub.poll(SILENCE_MS):
            sys.exit("publisher gone: nothing received for %d s" % (SILENCE_MS // 1000))
        return self.sub.recv_multipart()

    def join(self):
        """Section 2: HELLO, READY, ACK. Returns the messages that came before the ACK."""
        held = []
        while True:
            m = decode(self.recv())
            if m and m[1]["kind"] == HELLO:
                break
        _, h, nonce = m
        self.pub_id, self.epoch = h["pub"], h["epoch"]
        ready = {"v": 1, "type": "ready", "subscriber": self.a.id, "publisher": self.pub_id.hex(),
                 "epoch": self.epoch, "nonce": nonce.hex(), "topics": self.a.topics}
        if self.a.multi:
            ready["forms"] = ["multi"]        # the ACK's "forms" says whether MULTI will come
        while True:
            req = self.ctx.socket(zmq.REQ); req.setsockopt(zmq.LINGER, 0); req.connect(self.a.sync)
            req.send(json.dumps(ready).encode())
            while not req.poll(REPLY_MS):     # keep reading the data path meanwhile
                while self.sub.poll(0):
                    held.append(self.sub.recv_multipart())
            reply = json.loads(req.recv()); req.close()
            if reply["type"] == "ack":
                break
            if reply["code"] != "bad_nonce":  # malformed, version, wrong_publisher, full
                sys.exit("refused: %s" % reply)
            while True:                       # bad_nonce: wait for the next HELLO
                f = self.recv(); m = decode(f)
                if m and m[1]["kind"] == HELLO and m[1]["pub"] == self.pub_id:
                    ready["nonce"] = m[2].hex(); break
                held.append(f)
        self.nonce = ready["nonce"]
        for t in reply["topics"]:             # stream of a listed topic starts after its seq
            self.next[t["topic"].encode()] = t["seq"] + 1
        ep = reply.get("recovery")
        if ep:                                # a wildcard host means the host of the PUB endpoint
            host = self.a.pub.rsplit(":", 1)[0]
            self.rec_ep = host + ":" + ep.rsplit(":", 1)[1] if "://*:" in ep or "://0.0.0.0:" in ep else ep
        else:
            self.rec_ep = None
        print("joined: %d of %d, quorum %s, repair window %s ms, forms %s" % (reply["joined"], reply["expect"],
              reply["quorum"], reply.get("repair_window_ms"), ",".join(reply.get("forms", [])) or "none"), file=sys.stderr)
        return held

    def deliver(self, topic, seq, payload):
        print(topic.decode(), seq, payload)
        self.received += 1
        self.next[topic] = seq + 1

    def data(self, topic, h, records, replayed=False):
        want = self.next.setdefault(topic, 1)
        if h["seq"] > want and not replayed:
            self.repair(topic, want, h["seq"] - 1)    # a gap: repair it first, in order
        for i, r in enumerate(records):
            if h["seq"] + i == self.next[topic]:      # older ones are duplicates
                self.deliver(topic, h["seq"] + i, r)
                self.repaired += replayed

    def table(self, table, end):
        for topic, last in table.items():
            if any(topic.startswith(p) for p in self.prefixes):
                want = self.next.setdefault(topic, 1)
                if last >= want:              # the tail of a burst never arrived
                    self.repair(topic, want, last)
                if end:
                    self.final[topic] = last

    def repair(self, topic, lo, hi):
        """Section 4: ask for lo..hi, deliver what comes back, report the rest lost."""
        if not self.rec_ep:
            return self.loss(topic, lo, hi, "no recovery endpoint")
        if self.rec is None:
            self.rec = self.ctx.socket(zmq.DEALER); self.rec.setsockopt(zmq.LINGER, 0)
            self.rec.connect(self.rec_ep)
        while lo <= hi:
            self.req_id += 1
            head = struct.pack(">2sBBI", b"SR", 1, 2 if self.many else 1, self.req_id) + self.pub_id
            if self.many:
                frame = head + struct.pack(">QHQQB", self.epoch, 1, lo, hi, len(topic)) + topic
            else:
                frame = head + struct.pack(">QQQB", self.epoch, lo, hi, len(topic)) + topic
            self.rec.send(frame)
            while True:
                if not self.rec.poll(5_000):
                    return self.loss(topic, lo, hi, "repair timeout")
                f = self.rec.recv_multipart()
                kind, rid = f[0][3], struct.unpack(">I", f[0][4:8])[0]
                if rid != self.req_id:
                    continue                  # the answer to a request given up on
                if kind == 10:                # REPLAY: a DATA envelope, maybe reaching outside lo..hi
                    m = decode(f[1:])
                    if m and m[0] == topic:
                        self.data(topic, m[1], [r for r in m[2]], replayed=True)
                    continue
                if kind == 12:                # ERROR
                    code = struct.unpack(">H", f[0][8:10])[0]
                    if code == 1 and self.many:
                        self.many = False; break          # a 1.0 server: FETCH only
                    if code in (2, 4):
                        time.sleep(0.1); break     # back off, ask again
                    if code == 3 and hi > lo:
                        self.repair(topic, lo, (lo + hi) // 2); lo = self.next[topic]; break
                    return self.loss(topic, lo, hi, "error %d %s" % (code, f[0][10:].decode()))
                if kind == 11:                # DONE: status, first held, last, epoch
                    status, first, last, _ = struct.unpack(">BQQQ", f[0][8:33])
                else:                         # DONE_MANY with one entry
                    status, first, last = struct.unpack(">BQQ", f[0][18:35])
                if status == 0 and last < lo:
                    status = 4                # FETCH says "complete" for a range above last
                if self.next[topic] <= hi:
                    cause = {0: "not replayed", 1: "no longer held", 2: "publisher restarted",
                             3: "unknown topic", 4: "beyond end"}.get(status, "status %d" % status)
                    self.loss(topic, self.next[topic], hi, cause)
                return

    def loss(self, topic, lo, hi, cause):
        print("LOST %s %d..%d: %s" % (topic.decode(), lo, hi, cause), file=sys.stderr)
        self.lost += hi - lo + 1
        self.next[topic] = max(self.next.get(topic, 1), hi + 1)

    def run(self):
        pending = self.join()
        n = 0
        while True:
            f = pending.pop(0) if pending else self.recv()
            m = decode(f)
            if not m or m[1]["pub"] != self.pub_id or m[1]["epoch"] != self.epoch:
                continue                      # malformed, another version, or another publisher
            topic, h, body = m
            if h["kind"] == DATA:
                n += 1
                if self.a.drop and n % self.a.drop == 0 and not pending:
                    continue                  # pretend the network lost it
                self.data(topic, h, body)
            elif h["kind"] == MULTI:
                n += 1; self.multis += 1
                if self.a.drop and n % self.a.drop == 0 and not pending:
                    continue
                for name, seq, recs in body:  # each run is a DATA batch of its topic
                    if any(name.startswith(p) for p in self.prefixes):
                        self.data(name, dict(h, seq=seq), recs)
            elif h["kind"] in (HEARTBEAT, END):
                self.table(body, h["kind"] == END)
                if h["kind"] == END:
                    break
            elif h["kind"] == ABORT:
                print("ABORT: %s" % body.decode(), file=sys.stderr)
        self.bye()
        if self.a.quiet_after_end:            # nothing follows END: no heartbeat, no HELLO
            if self.sub.poll(int(self.a.quiet_after_end * 1000)):
                sys.exit("a message after END: %r" % self.sub.recv_multipart()[:2])
        print("received %d, repaired %d, lost %d, multi %d" % (self.received, self.repaired, self.lost, self.multis), file=sys.stderr)
        return 1 if self.lost else 0

    def bye(self):
        """Section 2.1: tell the publisher we have everything up to END."""
        req = self.ctx.socket(zmq.REQ); req.setsockopt(zmq.LINGER, 0); req.connect(self.a.sync)
        req.send(json.dumps({"v": 1, "type": "bye", "subscriber": self.a.id, "publisher": self.pub_id.hex(),
                             "epoch": self.epoch, "nonce": self.nonce}).encode())
        if req.poll(REPLY_MS):
            reply = json.loads(req.recv())
            if reply != {"v": 1, "type": "bye"}:
                sys.exit("bye refused: %s" % reply)

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--pub", default="tcp://localhost:5561")
    ap.add_argument("--sync", default="tcp://localhost:5562")
    ap.add_argument("--id", default="py-%d" % os.getpid())
    ap.add_argument("--topics", nargs="*", default=[])
    ap.add_argument("--drop", type=int, default=0)
    ap.add_argument("--multi", action="store_true", help="ask for MULTI messages (section 1.5)")
    ap.add_argument("--quiet-after-end", type=float, default=0, help="seconds to check that nothing follows END")
    sys.exit(Subscriber(ap.parse_args()).run())
