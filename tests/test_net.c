/* test_net.c: sim/net against hand-computed max-min fair schedules: two and
 * three transfers starting and ending at different times on one link, and
 * three transfers over two links with a shared bottleneck, where max-min
 * fairness gives the unshared transfer more than an equal split would. */
#include "config.h"

#include "net.h"
#include "err.h"
#include "t.h"

#define MS 1000000 /* ns */

/* Finish times are rounded up to the next ns; allow 2 ns of rounding. */
#define T_TIME(a, b) T_NEAR((double)(a), (double)(b), 2)

static void two_flows_one_link(void) {
    net *n = net_create();
    int l, path[1];
    int64_t a, b;
    T_ASSERT(n != NULL);
    T_EQ_I(net_link_add(n, 1e9, &l), SIM_OK);
    path[0] = l;
    a = net_start(n, 0, path, 1, 1e6, 0);
    T_ASSERT(a >= 0);
    T_TIME(net_next_finish(n), 1 * MS); /* alone: 1e6 B at 1 GB/s */
    /* B starts at 0.5 ms: A has 0.5e6 B left, both move at 0.5 GB/s */
    b = net_start(n, MS / 2, path, 1, 1e6, 0);
    T_NEAR(net_rate(n, a), 0.5e9, 1);
    T_NEAR(net_rate(n, b), 0.5e9, 1);
    T_TIME(net_finish(n, a), 3 * MS / 2); /* A's finish moved from 1 to 1.5 ms */
    T_TIME(net_finish(n, b), 2 * MS);     /* then B alone for its last 0.5e6 B */
    net_advance(n, 3 * MS / 2 - 3);
    T_ASSERT(!net_done(n, a));
    net_advance(n, 3 * MS / 2 + 2);
    T_ASSERT(net_done(n, a));
    T_ASSERT(!net_done(n, b));
    T_NEAR(net_rate(n, b), 1e9, 1);
    T_TIME(net_next_finish(n), 2 * MS);
    net_advance(n, 3 * MS);
    T_ASSERT(net_done(n, b));
    T_EQ_I(net_active(n), 0);
    T_NEAR(net_link_bytes(n, l), 2e6, 1e-3);
    T_NEAR(net_link_busy_s(n, l), 2e-3, 3e-9);
    T_ASSERT(net_next_finish(n) == SIM_TIME_MAX);
    net_destroy(n);
}

static void three_flows_with_latency(void) {
    net *n = net_create();
    int l, path[1];
    int64_t a, b, c;
    T_EQ_I(net_link_add(n, 1e9, &l), SIM_OK);
    path[0] = l;
    /* A 3e6 B at 0; B 1e6 B at 1 ms; C 1e6 B at 1 ms with 1 ms latency.
     * 0-1 ms: A alone (2e6 left). 1-2 ms: A, B at 0.5 GB/s (A 1.5e6, B
     * 0.5e6 left). From 2 ms: three at 1/3 GB/s: B ends at 3.5 ms (A 1e6,
     * C 0.5e6 left). 3.5 ms: A, C at 0.5 GB/s: C ends at 4.5 ms (A 0.5e6).
     * A alone: ends at 5 ms. */
    a = net_start(n, 0, path, 1, 3e6, 0);
    b = net_start(n, MS, path, 1, 1e6, 0);
    c = net_start(n, MS, path, 1, 1e6, 1e-3);
    T_NEAR(net_rate(n, c), 0, 0); /* still in its latency */
    T_TIME(net_finish(n, a), 5 * MS);
    T_TIME(net_finish(n, b), 7 * MS / 2);
    T_TIME(net_finish(n, c), 9 * MS / 2);
    T_TIME(net_next_finish(n), 7 * MS / 2);
    net_advance(n, 2 * MS + 1);
    T_NEAR(net_rate(n, a), 1e9 / 3, 1);
    net_advance(n, 4 * MS);
    T_ASSERT(net_done(n, b) && !net_done(n, c) && !net_done(n, a));
    T_TIME(net_next_finish(n), 9 * MS / 2);
    net_advance(n, 9 * MS / 2 + 2);
    T_ASSERT(net_done(n, c) && !net_done(n, a));
    net_advance(n, 6 * MS);
    T_ASSERT(net_done(n, a));
    T_NEAR(net_link_bytes(n, l), 5e6, 1e-3);
    T_NEAR(net_link_busy_s(n, l), 5e-3, 3e-9); /* moving from 0 to 5 ms */
    net_destroy(n);
}

static void shared_bottleneck(void) {
    net *n = net_create();
    int l1, l2, px[1], py[2], pz[1];
    int64_t x, y, z;
    /* L1 1 GB/s carries X and Y; L2 2 GB/s carries Y and Z. Max-min: L1 is
     * the bottleneck (0.5 GB/s each for X and Y); Z gets what Y leaves on
     * L2, 1.5 GB/s. An equal split per link would give Z 1 GB/s. */
    T_EQ_I(net_link_add(n, 1e9, &l1), SIM_OK);
    T_EQ_I(net_link_add(n, 2e9, &l2), SIM_OK);
    px[0] = l1;
    py[0] = l1;
    py[1] = l2;
    pz[0] = l2;
    x = net_start(n, 0, px, 1, 1e6, 0);
    y = net_start(n, 0, py, 2, 2e6, 0);
    z = net_start(n, 0, pz, 1, 4.5e6, 0);
    T_NEAR(net_rate(n, x), 0.5e9, 1);
    T_NEAR(net_rate(n, y), 0.5e9, 1);
    T_NEAR(net_rate(n, z), 1.5e9, 1);
    /* X ends at 2 ms (Y 1e6, Z 1.5e6 left); then Y and Z at 1 GB/s each:
     * Y ends at 3 ms (Z 0.5e6 left); Z alone at 2 GB/s ends at 3.25 ms. */
    T_TIME(net_finish(n, x), 2 * MS);
    T_TIME(net_finish(n, y), 3 * MS);
    T_TIME(net_finish(n, z), 13 * MS / 4);
    net_advance(n, 2 * MS + 2);
    T_ASSERT(net_done(n, x));
    T_NEAR(net_rate(n, y), 1e9, 1);
    T_NEAR(net_rate(n, z), 1e9, 1);
    net_advance(n, 3 * MS + 2);
    T_ASSERT(net_done(n, y) && !net_done(n, z));
    T_NEAR(net_rate(n, z), 2e9, 1);
    net_advance(n, 4 * MS);
    T_ASSERT(net_done(n, z));
    T_NEAR(net_link_bytes(n, l1), 3e6, 1e-3);
    T_NEAR(net_link_bytes(n, l2), 6.5e6, 1e-3);
    T_NEAR(net_link_busy_s(n, l1), 3e-3, 3e-9);
    T_NEAR(net_link_busy_s(n, l2), 3.25e-3, 3e-9);
    net_destroy(n);
}

static void bad_input(void) {
    net *n = net_create();
    int l, path[2] = {0, 5};
    T_EQ_I(net_link_add(n, 0, &l), SIM_EINVAL);
    T_EQ_I(net_link_add(n, 1e9, &l), SIM_OK);
    T_EQ_I(net_start(n, 0, path, 2, 1e6, 0), SIM_EINVAL); /* no link 5 */
    T_EQ_I(net_start(n, 0, path, 1, 0, 0), SIM_EINVAL);   /* no bytes */
    T_EQ_I(net_start(n, 0, path, 0, 1e6, 0), SIM_EINVAL); /* empty path */
    T_EQ_I(net_start(n, 0, path, 1, 1e6, -1), SIM_EINVAL);
    T_ASSERT(!net_done(n, 0)); /* never started */
    net_destroy(n);
    net_destroy(NULL);
}

int main(void) {
    two_flows_one_link();
    three_flows_with_latency();
    shared_bottleneck();
    bad_input();
    printf("test_net: ok\n");
    return 0;
}
