/*
 * zsyncsub: the zguide's synchronized subscriber against libzmq, for
 * `syncpub bench --libzmq DIR`. Not part of the Go build.
 *
 *     zsyncsub CONNECT SYNC
 *
 * Subscribes to everything, sleeps 1 s as the zguide's syncsub does (it has
 * no other way to know its subscription reached the publisher), sends the
 * sync request, then counts messages until "END" and prints the zguide's
 * "Received N updates". The receive high-water mark is unlimited.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

static int fail(const char *what) {
    fprintf(stderr, "zsyncsub: %s: %s\n", what, zmq_strerror(zmq_errno()));
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: zsyncsub CONNECT SYNC\n");
        return 2;
    }
    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int hwm = 0;
    zmq_setsockopt(sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_connect(sub, argv[1]) != 0)
        return fail("connect");
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    sleep(1);

    void *req = zmq_socket(ctx, ZMQ_REQ);
    if (zmq_connect(req, argv[2]) != 0)
        return fail("sync connect");
    char buf[256];
    if (zmq_send(req, "", 0, 0) < 0 || zmq_recv(req, buf, sizeof buf, 0) < 0)
        return fail("sync");

    long n = 0;
    for (;;) {
        int r = zmq_recv(sub, buf, sizeof buf, 0);
        if (r < 0)
            return fail("recv");
        if (r == 3 && memcmp(buf, "END", 3) == 0)
            break;
        n++;
    }
    printf("Received %ld updates\n", n);
    zmq_close(req);
    zmq_close(sub);
    zmq_ctx_destroy(ctx);
    return 0;
}
