#!/usr/bin/env python3
"""The zguide's syncsub.py (chapter 2, "Node Coordination"), ported as is;
only the endpoints come from the command line:

    syncsub.py [PUB_CONNECT SYNC_CONNECT]
"""
import sys
import time
import zmq

PUB, SYNC = "tcp://localhost:5561", "tcp://localhost:5562"
if len(sys.argv) == 3:
    PUB, SYNC = sys.argv[1], sys.argv[2]

def main():
    context = zmq.Context()

    # First, connect our subscriber socket
    subscriber = context.socket(zmq.SUB)
    subscriber.connect(PUB)
    subscriber.setsockopt(zmq.SUBSCRIBE, b'')

    time.sleep(1)

    # Second, synchronize with publisher
    syncclient = context.socket(zmq.REQ)
    syncclient.connect(SYNC)

    # send a synchronization request
    syncclient.send(b'')

    # wait for synchronization reply
    syncclient.recv()

    # Third, get our updates and report how many we got
    nbr = 0
    while True:
        msg = subscriber.recv()
        if msg == b"END":
            break
        nbr += 1

    print(f"Received {nbr} updates")

if __name__ == "__main__":
    main()
