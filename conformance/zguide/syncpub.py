#!/usr/bin/env python3
"""The zguide's syncpub.py (chapter 2, "Node Coordination"), ported as is;
only the endpoints and counts come from the command line:

    syncpub.py [PUB_BIND SYNC_BIND SUBSCRIBERS UPDATES]
"""
import sys
import zmq

PUB, SYNC, SUBSCRIBERS_EXPECTED, UPDATES = "tcp://*:5561", "tcp://*:5562", 10, 1000000
if len(sys.argv) == 5:
    PUB, SYNC, SUBSCRIBERS_EXPECTED, UPDATES = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def main():
    context = zmq.Context()

    # Socket to talk to clients
    publisher = context.socket(zmq.PUB)
    # set SNDHWM, so we don't drop messages for slow subscribers
    publisher.sndhwm = UPDATES + 100000
    publisher.bind(PUB)

    # Socket to receive signals
    syncservice = context.socket(zmq.REP)
    syncservice.bind(SYNC)

    # Get synchronization from subscribers
    subscribers = 0
    while subscribers < SUBSCRIBERS_EXPECTED:
        # wait for synchronization request
        msg = syncservice.recv()
        # send synchronization reply
        syncservice.send(b'')
        subscribers += 1
        print(f"+1 subscriber ({subscribers}/{SUBSCRIBERS_EXPECTED})")

    # Now broadcast exactly 1M updates followed by END
    for i in range(UPDATES):
        publisher.send(b"Rhubarb")

    publisher.send(b"END")

if __name__ == "__main__":
    main()
