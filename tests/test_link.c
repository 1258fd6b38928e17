/* test_link.c: the fair-share link against hand-computed cases: one
 * transfer with latency; two starting together; two starting apart; three
 * starting and ending at different times; projections that move when a
 * transfer starts; busy time. 1 GB/s links and 100 MB transfers, so the
 * times are round. */
#include "config.h"

#include "err.h"
#include "link.h"
#include "mem.h"
#include "t.h"

#define MB 1e6
#define MS 1000000LL /* ns */

static void test_one(void) {
    link *l = link_create(1e9);
    int64_t a = link_start(l, 0, 100 * MB, 0.001);
    T_EQ_I(link_finish(l, a), 101 * MS); /* 1 ms latency + 100 ms */
    link_advance(l, 100 * MS);
    T_ASSERT(!link_done(l, a));
    link_advance(l, 101 * MS);
    T_ASSERT(link_done(l, a));
    T_NEAR(link_busy_s(l), 0.101, 1e-9);
    T_EQ_I(link_active(l), 0);
    link_destroy(l);
}

static void test_two_together(void) {
    link *l = link_create(1e9);
    int64_t a = link_start(l, 0, 100 * MB, 0), b = link_start(l, 0, 100 * MB, 0);
    T_EQ_I(link_finish(l, a), 200 * MS); /* half the bandwidth each */
    T_EQ_I(link_finish(l, b), 200 * MS);
    link_advance(l, 200 * MS);
    T_ASSERT(link_done(l, a) && link_done(l, b));
    link_destroy(l);
}

static void test_two_apart(void) {
    link *l = link_create(1e9);
    int64_t a = link_start(l, 0, 100 * MB, 0), b;
    T_EQ_I(link_finish(l, a), 100 * MS); /* alone: 100 ms */
    b = link_start(l, 50 * MS, 100 * MB, 0);
    /* A has 50 MB left at 50 ms, then half the bandwidth: done at 150 ms;
     * B moved 50 MB by then and finishes alone 50 ms later */
    T_EQ_I(link_finish(l, a), 150 * MS);
    T_EQ_I(link_finish(l, b), 200 * MS);
    T_EQ_I(link_next_finish(l), 150 * MS);
    link_advance(l, 150 * MS);
    T_ASSERT(link_done(l, a) && !link_done(l, b));
    link_advance(l, 200 * MS);
    T_ASSERT(link_done(l, b));
    T_NEAR(link_busy_s(l), 0.2, 1e-9);
    link_destroy(l);
}

static void test_three(void) {
    link *l = link_create(1e9);
    int64_t a = link_start(l, 0, 300 * MB, 0), b, c;
    b = link_start(l, 100 * MS, 100 * MB, 0);
    c = link_start(l, 200 * MS, 50 * MB, 0);
    /* 0-100: A alone (200 left); 100-200: A, B at 500 MB/s (A 150, B 50
     * left); from 200: three at 333 MB/s, B and C end at 350 ms; A has 100
     * left and ends alone at 450 ms */
    T_EQ_I(link_finish(l, b), 350 * MS);
    T_EQ_I(link_finish(l, c), 350 * MS);
    T_EQ_I(link_finish(l, a), 450 * MS);
    link_advance(l, 349 * MS);
    T_ASSERT(!link_done(l, b) && !link_done(l, c));
    link_advance(l, 350 * MS);
    T_ASSERT(link_done(l, b) && link_done(l, c) && !link_done(l, a));
    link_advance(l, 450 * MS);
    T_ASSERT(link_done(l, a));
    T_EQ_I(link_next_finish(l), SIM_TIME_MAX);
    link_destroy(l);
}

static void test_idle_gap(void) {
    link *l = link_create(1e9);
    int64_t a = link_start(l, 0, 10 * MB, 0), b;
    link_advance(l, 1000 * MS);
    T_ASSERT(link_done(l, a));
    b = link_start(l, 1000 * MS, 10 * MB, 0.002);
    T_EQ_I(link_finish(l, b), 1012 * MS);
    link_advance(l, 2000 * MS);
    T_NEAR(link_busy_s(l), 0.010 + 0.012, 1e-9); /* idle time is not busy */
    T_ASSERT(link_create(0) == NULL);
    link_destroy(l);
    T_EQ_I(sim_mem_current(), 0);
}

int main(void) {
    test_one();
    test_two_together();
    test_two_apart();
    test_three();
    test_idle_gap();
    printf("test_link: ok\n");
    return 0;
}
