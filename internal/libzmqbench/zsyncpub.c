/*
 * zsyncpub: the zguide's synchronized publisher (chapter 2, "Node
 * Coordination") against libzmq, with endpoints and counts from the command
 * line, for `syncpub bench --libzmq DIR`. Not part of the Go build.
 *
 *     zsyncpub BIND SYNC_BIND EXPECT COUNT PAYLOAD
 *
 * Waits for EXPECT subscribers on the REP socket, publishes COUNT copies of
 * PAYLOAD, then "END". The send high-water mark is unlimited, as the zguide
 * raises it, so that nothing is dropped and the job compares like for like.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static int fail(const char *what) {
    fprintf(stderr, "zsyncpub: %s: %s\n", what, zmq_strerror(zmq_errno()));
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: zsyncpub BIND SYNC_BIND EXPECT COUNT PAYLOAD\n");
        return 2;
    }
    int expect = atoi(argv[3]);
    long count = atol(argv[4]);
    const char *payload = argv[5];
    size_t len = strlen(payload);

    void *ctx = zmq_ctx_new();
    void *pub = zmq_socket(ctx, ZMQ_PUB);
    int hwm = 0;
    zmq_setsockopt(pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (zmq_bind(pub, argv[1]) != 0)
        return fail("bind");
    void *rep = zmq_socket(ctx, ZMQ_REP);
    if (zmq_bind(rep, argv[2]) != 0)
        return fail("sync bind");

    char buf[64];
    for (int i = 0; i < expect; i++) {
        if (zmq_recv(rep, buf, sizeof buf, 0) < 0)
            return fail("sync recv");
        if (zmq_send(rep, "", 0, 0) < 0)
            return fail("sync send");
    }
    for (long i = 0; i < count; i++)
        if (zmq_send(pub, payload, len, 0) < 0)
            return fail("send");
    if (zmq_send(pub, "END", 3, 0) < 0)
        return fail("send END");

    zmq_close(rep);
    zmq_close(pub);
    zmq_ctx_destroy(ctx); /* default linger: waits until everything is sent */
    return 0;
}
