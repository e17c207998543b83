#!/usr/bin/env python3
"""Provokes every error a syncmq publisher answers, with libzmq clients.

Run against a publisher that waits for 2 subscribers, remembers at most 2,
publishes slowly, and keeps a short history:

    syncpub --expect 2 --max-subscribers 2 --count 2000 --rate 200 --history-messages 100 --topics update
    negative.py --pub ... --sync ... --recovery ...

Prints "ok <check>" per check; exits 1 at the first surprise.
"""
import argparse, json, os, struct, sys, time, zmq

CONTROL = b"\x00syncmq"
ctx = zmq.Context()
a = argparse.ArgumentParser()
for f in ("--pub", "--sync", "--recovery"):
    a.add_argument(f, required=True)
a = a.parse_args()

def check(name, cond, detail=""):
    if not cond:
        sys.exit("FAIL %s: %s" % (name, detail))
    print("ok", name)

def sync_request(frames, dealer=False):
    """One request on a fresh socket; returns the reply frames."""
    s = ctx.socket(zmq.DEALER if dealer else zmq.REQ); s.setsockopt(zmq.LINGER, 0); s.connect(a.sync)
    s.send_multipart(frames)
    if not s.poll(5000):
        sys.exit("FAIL no reply to %r" % frames[-1][:60])
    r = s.recv_multipart(); s.close()
    return r

def ask(obj_or_bytes, dealer=False):
    b = obj_or_bytes if isinstance(obj_or_bytes, bytes) else json.dumps(obj_or_bytes).encode()
    r = sync_request([b], dealer)
    return json.loads(r[-1])

def code(reply):
    return reply.get("code") if reply.get("type") == "error" else reply.get("type")

def hello(sub):
    while True:
        if not sub.poll(5000):
            sys.exit("FAIL no HELLO")
        topic, h, p = sub.recv_multipart()
        if h[3] == 2:
            return h[8:24], struct.unpack(">Q", h[24:32])[0], p

def data_conn():
    s = ctx.socket(zmq.SUB); s.setsockopt(zmq.LINGER, 0); s.connect(a.pub)
    s.setsockopt(zmq.SUBSCRIBE, b"update"); s.setsockopt(zmq.SUBSCRIBE, CONTROL)
    return s

# --- Section 2: the sync endpoint ---------------------------------------------------------------
check("malformed: not JSON", code(ask(b"hello")) == "malformed")
check("malformed: a JSON array", code(ask(b"[1,2]")) == "malformed")
check("malformed: trailing data", code(ask(b'{"v":1,"type":"ready"} {}')) == "malformed")
check("malformed: the zguide's empty sync request", code(ask(b"")) == "malformed")
r = ask({"type": "ready", "subscriber": "x"})
check("malformed: no v (1.0 said version)", code(r) == "malformed", r)
r = ask({"v": 2, "type": "ready"})
check("version: v 2 lists the versions", code(r) == "version" and r.get("versions") == [1] and r["v"] == 1, r)
for v in (9.9, "1", 1.0):                                 # 1.1 erratum 2: any v but the integer 1
    r = ask({"v": v, "type": "ready", "subscriber": 7})    # checked before the other fields
    check("version: v %r lists the versions" % (v,), code(r) == "version" and r.get("versions") == [1], r)
r = ask({"v": None, "type": "ready"})
check("malformed: v null", code(r) == "malformed", r)
r = ask(b'{"v":1,"type":"ready","pad":"' + b"x" * 70_000 + b'"}')
check("malformed: a 70,000-byte request is answered", code(r) == "malformed", r)

sub1 = data_conn()
pub, epoch, nonce = hello(sub1)
check("epoch fits a double (at most 2^53-1)", 0 < epoch <= 2**53 - 1, epoch)
ready = {"v": 1, "type": "ready", "subscriber": "neg-1", "publisher": pub.hex(), "epoch": epoch,
         "nonce": nonce.hex(), "topics": ["update"]}
check("wrong_publisher: another id", code(ask(dict(ready, publisher=os.urandom(16).hex()))) == "wrong_publisher")
check("wrong_publisher: another epoch", code(ask(dict(ready, epoch=epoch + 1))) == "wrong_publisher")
check("bad_nonce: a nonce never sent", code(ask(dict(ready, nonce=os.urandom(16).hex()))) == "bad_nonce")
check("malformed: a short nonce", code(ask(dict(ready, nonce="ab"))) == "malformed")

# A DEALER may put the empty delimiter in front, as REQ does; the reply then has one too.
r = sync_request([b"", json.dumps(dict(ready, publisher=pub.hex().upper(), nonce=nonce.hex().upper())).encode()], dealer=True)
ack = json.loads(r[1])
check("DEALER [empty, READY] with upper-case hex gets an ACK behind a delimiter", len(r) == 2 and r[0] == b"" and ack["type"] == "ack", r)
check("ack fields", ack["joined"] == 1 and ack["expect"] == 2 and ack["quorum"] is False and ack["epoch"] == epoch
      and ack["repair_window_ms"] > 0 and ack["recovery"].startswith("tcp://") and ack["topics"] == [], ack)
r = sync_request([json.dumps(ready).encode()], dealer=True)
check("DEALER [READY] gets the reply alone, READY again with the same nonce is answered again",
      len(r) == 1 and json.loads(r[0])["type"] == "ack", r)
check("bad_nonce: the nonce under another id", code(ask(dict(ready, subscriber="neg-2"))) == "bad_nonce")

bye = dict(ready, type="bye")
check("bad_nonce: bye from an id that never joined", code(ask(dict(bye, subscriber="neg-9"))) == "bad_nonce")
check("bad_nonce: bye with another nonce", code(ask(dict(bye, nonce=os.urandom(16).hex()))) == "bad_nonce")
check("wrong_publisher: bye for another epoch", code(ask(dict(bye, epoch=epoch + 1))) == "wrong_publisher")
check("malformed: bye without a nonce", code(ask({k: v for k, v in bye.items() if k != "nonce"})) == "malformed")

sub2 = data_conn()
_, _, nonce2 = hello(sub2)
r = ask(dict(ready, subscriber="neg-2", nonce=nonce2.hex()))
check("second subscriber reaches the quorum", code(r) == "ack" and r["quorum"] is True and r["joined"] == 2, r)
sub3 = data_conn()
_, _, nonce3 = hello(sub3)
check("full: a third id beyond --max-subscribers 2", code(ask(dict(ready, subscriber="neg-3", nonce=nonce3.hex()))) == "full")
check("bye from a subscriber that joined", ask(bye) == {"v": 1, "type": "bye"})

# --- Section 4: the recovery endpoint -----------------------------------------------------------
rec = ctx.socket(zmq.DEALER); rec.setsockopt(zmq.LINGER, 0); rec.connect(a.recovery)

def fetch(rid, lo, hi, topic=b"update", version=1, ep=epoch, pid=pub):
    return struct.pack(">2sBBI", b"SR", version, 1, rid) + pid + struct.pack(">QQQB", ep, lo, hi, len(topic)) + topic

def fetch_many(rid, ranges):
    f = struct.pack(">2sBBI", b"SR", 1, 2, rid) + pub + struct.pack(">QH", epoch, len(ranges))
    return f + b"".join(struct.pack(">QQB", lo, hi, len(t)) + t for t, lo, hi in ranges)

def answer(frame):
    """Sends one request; returns (replayed sequences, the final response frame)."""
    rec.send(frame)
    seqs = []
    while True:
        if not rec.poll(5000):
            sys.exit("FAIL no answer to a recovery request")
        f = rec.recv_multipart()
        if f[0][3] == 10:
            h = f[2]; seq, count = struct.unpack(">Q", h[32:40])[0], struct.unpack(">H", h[6:8])[0]
            check_flags = struct.unpack(">H", h[4:6])[0] & 2
            if not check_flags:
                sys.exit("FAIL REPLAY without the REPLAY flag")
            seqs.extend(range(seq, seq + count))
        else:
            return seqs, f[0]

def error_code(f):
    return struct.unpack(">H", f[8:10])[0] if f[3] == 12 else None

def rid_of(f):
    return struct.unpack(">I", f[4:8])[0]

_, f = answer(fetch(71, 1, 1) + b"\x00" * (70_000 - 50))
check("ERROR 1 with its id for a 70,000-byte FETCH (1.0 dropped the connection)", error_code(f) == 1 and rid_of(f) == 71, f[:10])
_, f = answer(fetch(72, 1, 1, version=2))
check("ERROR 5 with its id for a FETCH of version 2 (1.0: ERROR 1, id 0)", error_code(f) == 5 and rid_of(f) == 72 and f[2] == 1, f)
_, f = answer(b"junk")
check("ERROR 1 with id 0 for a frame without a header", error_code(f) == 1 and rid_of(f) == 0)
for short in (b"", b"S", b"SR", b"SR\x01\x01", b"SR\x02\x01\x00\x00\x07", b"SR\x01\x01\x00\x00\x00"):  # 1.1 erratum 3
    _, f = answer(short)
    check("ERROR 1, id 0, version 1 for a %d-byte frame %r" % (len(short), short),
          len(f) >= 10 and f[:4] == b"SR\x01\x0c" and error_code(f) == 1 and rid_of(f) == 0, f)
_, f = answer(b"SR\x01\x01\x00\x00\x00\x2a")
check("ERROR 1 with the id of an 8-byte frame that is only a header", error_code(f) == 1 and rid_of(f) == 42, f)
_, f = answer(fetch_many(73, [(b"update", 1, 1)] * 1025))
check("ERROR 1 for a FETCH_MANY of 1025 entries", error_code(f) == 1 and rid_of(f) == 73)
_, f = answer(fetch(74, 1, 100_000))
check("ERROR 3 for a range over 65,536 sequences", error_code(f) == 3 and rid_of(f) == 74)

def done(f):
    return struct.unpack(">BQQQ", f[8:33])

_, f = answer(fetch(75, 1, 1, ep=epoch + 1))
check("DONE 2 for another epoch", f[3] == 11 and done(f)[0] == 2, f)
_, f = answer(fetch(76, 1, 1, topic=b"nothing"))
check("DONE 3 for an unknown topic", f[3] == 11 and done(f)[0] == 3, f)

deadline = time.time() + 30                     # wait until the history no longer holds seq 1
while True:
    _, f = answer(fetch(77, 1, 1))
    st, first, last, _ = done(f)
    if st == 1 or time.time() > deadline:
        break
    time.sleep(0.2)
check("DONE 1 when the start is no longer held, first held <= last", st == 1 and 1 < first <= last, done(f))
seqs, f = answer(fetch(78, last - 4, last))
check("DONE 0 and REPLAYs covering the range", done(f)[0] == 0 and set(range(last - 4, last + 1)) <= set(seqs), (done(f), seqs))
seqs, f = answer(fetch(79, last + 1_000_000, last + 1_000_000))
st, _, last2, _ = done(f)
check("a FETCH wholly above the last sequence: DONE 0 with last < from, nothing replayed",
      st == 0 and last2 < last + 1_000_000 and seqs == [], done(f))
seqs, f = answer(fetch_many(80, [(b"update", last + 1_000_000, last + 1_000_000)]))
check("the same range in a FETCH_MANY: status 4", f[3] == 13 and f[18] == 4 and seqs == [], f)

for i in range(300):                            # 100/s, bursts of 200: some must be refused
    rec.send(fetch(1000 + i, 1, 1, topic=b"nothing"))
codes = []
for i in range(300):
    if not rec.poll(5000):
        sys.exit("FAIL answers stopped")
    f = rec.recv_multipart()[0]
    codes.append(error_code(f))
check("ERROR 2 when requests come faster than the budget", 2 in codes and None in codes, codes.count(2))
print("ERROR 4 (busy) is for clients to handle; this publisher does not send it")
