/* test_core.c: the event queue's order and the KV block pool's invariants.
 *
 * evq: random pushes pop in (time, class, seq) order; ties run FIFO.
 * kvc: random alloc/ref/unref scripts against a naive model (an array of
 * counts), with kvc_check after every operation; and one deliberate
 * sabotage (a double free smuggled past the API) that kvc_check must catch. */
#include "config.h"

#include <gsl/gsl_rng.h>

#include "err.h"
#include "evq.h"
#include "kvc.h"
#include "mem.h"
#include "rng.h"
#include "t.h"

static void test_evq_order(void) {
    evq *q = evq_create(4);
    gsl_rng *r = sim_rng_create(7, 1);
    evq_ev ev, prev;
    int i, n = 20000;
    T_ASSERT(q != NULL);
    for (i = 0; i < n; i++) {
        sim_time t = (sim_time)gsl_rng_uniform_int(r, 1000); /* many ties */
        T_EQ_I(evq_push(q, t, (unsigned)gsl_rng_uniform_int(r, 3), 1, i, 0, NULL), SIM_OK);
    }
    T_EQ_I(evq_size(q), n);
    T_ASSERT(evq_pop(q, &prev));
    for (i = 1; i < n; i++) {
        T_ASSERT(evq_pop(q, &ev));
        T_ASSERT(ev.t > prev.t || (ev.t == prev.t && ev.key > prev.key));
        /* equal time and class: FIFO by push order (payload a = push index) */
        if (ev.t == prev.t && (ev.key >> 56) == (prev.key >> 56))
            T_ASSERT(ev.a > prev.a);
        prev = ev;
    }
    T_ASSERT(!evq_pop(q, &ev));
    T_EQ_I(evq_now(q), prev.t);
    T_EQ_I(evq_popped(q), n);
    sim_rng_destroy(r);
    evq_destroy(q);
}

static void test_evq_classes(void) {
    evq *q = evq_create(16);
    evq_ev ev;
    /* pushed in the "wrong" order: class decides at equal time */
    T_EQ_I(evq_push(q, 100, 2, 3, 0, 0, NULL), SIM_OK);
    T_EQ_I(evq_push(q, 100, 1, 2, 0, 0, NULL), SIM_OK);
    T_EQ_I(evq_push(q, 100, 0, 1, 0, 0, NULL), SIM_OK);
    T_EQ_I(evq_push(q, 50, 2, 0, 0, 0, NULL), SIM_OK);
    T_ASSERT(evq_pop(q, &ev));
    T_EQ_I(ev.type, 0);
    T_ASSERT(evq_pop(q, &ev));
    T_EQ_I(ev.type, 1);
    T_ASSERT(evq_pop(q, &ev));
    T_EQ_I(ev.type, 2);
    T_ASSERT(evq_pop(q, &ev));
    T_EQ_I(ev.type, 3);
    T_EQ_I(evq_peek_time(q), SIM_TIME_MAX);
    evq_destroy(q);
}

/* evq_push_tie: equal time and class run by tie, not by push order; a
 * lower class still runs first, and seq-ordered pushes of another class
 * are unaffected. */
static void test_evq_ties(void) {
    evq *q = evq_create(4);
    evq_ev ev;
    int want[] = {10, 11, 30, 31, 32, 20};
    int i;
    T_EQ_I(evq_push_tie(q, 100, 1, 7, 32, 0, 0, NULL), SIM_OK);
    T_EQ_I(evq_push_tie(q, 100, 1, 2, 30, 0, 0, NULL), SIM_OK);
    T_EQ_I(evq_push(q, 100, 2, 20, 0, 0, NULL), SIM_OK);
    T_EQ_I(evq_push(q, 100, 0, 10, 0, 0, NULL), SIM_OK);
    T_EQ_I(evq_push_tie(q, 100, 1, 5, 31, 0, 0, NULL), SIM_OK);
    T_EQ_I(evq_push(q, 100, 0, 11, 0, 0, NULL), SIM_OK);
    for (i = 0; i < 6; i++) {
        T_ASSERT(evq_pop(q, &ev));
        T_EQ_I(ev.type, want[i]);
    }
    T_ASSERT(!evq_pop(q, &ev));
    evq_destroy(q);
}

static void test_kvc_script(uint64_t seed, int64_t nblocks, int ops) {
    kvc_pool *p = kvc_pool_create(nblocks);
    gsl_rng *r = sim_rng_create(seed, 2);
    uint32_t *model = SIM_NEW_ARRAY(uint32_t, (size_t)nblocks);
    int32_t *held = SIM_NEW_ARRAY(int32_t, (size_t)nblocks * 4);
    int64_t nheld = 0, used = 0, i;
    int k;
    T_ASSERT(p && model && held);
    for (k = 0; k < ops; k++) {
        unsigned op = (unsigned)gsl_rng_uniform_int(r, 3);
        if (op == 0 && nheld < nblocks * 4) {
            int32_t id = kvc_block_alloc(p);
            if (used == nblocks) {
                T_EQ_I(id, -1);
            } else {
                T_ASSERT(id >= 0 && id < nblocks);
                T_EQ_I(model[id], 0); /* never hands out a block in use */
                model[id] = 1;
                used++;
                held[nheld++] = id;
            }
        } else if (op == 1 && nheld > 0 && nheld < nblocks * 4) {
            int32_t id = held[gsl_rng_uniform_int(r, (unsigned long)nheld)];
            kvc_block_ref(p, id);
            model[id]++;
            held[nheld++] = id;
        } else if (nheld > 0) {
            int64_t j = (int64_t)gsl_rng_uniform_int(r, (unsigned long)nheld);
            int32_t id = held[j];
            held[j] = held[--nheld];
            kvc_block_unref(p, id);
            if (--model[id] == 0)
                used--;
        }
        T_EQ_I(kvc_used(p), used);
        T_EQ_I(kvc_free(p) + kvc_used(p), nblocks);
        T_LE_I(kvc_used(p), kvc_total(p)); /* never over capacity */
        if (k % 97 == 0) {
            T_EQ_I(kvc_check(p), 0);
            for (i = 0; i < nblocks; i++)
                T_EQ_I(kvc_block_refs(p, (int32_t)i), model[i]);
        }
    }
    while (nheld > 0)
        kvc_block_unref(p, held[--nheld]);
    T_EQ_I(kvc_used(p), 0);
    T_EQ_I(kvc_n_alloc(p), kvc_n_freed(p)); /* conservation */
    T_EQ_I(kvc_check(p), 0);
    sim_free(model);
    sim_free(held);
    sim_rng_destroy(r);
    kvc_pool_destroy(p);
}

/* Anonymous blocks mixed with id blocks: random scripts of alloc,
 * alloc_n, anon_alloc, anon_release and unref against a model of counts
 * (used, peak, allocations, frees), with kvc_check after every operation;
 * ids handed out are never in use. */
static void test_kvc_anon_script(uint64_t seed, int64_t nblocks, int ops) {
    kvc_pool *p = kvc_pool_create(nblocks);
    gsl_rng *r = sim_rng_create(seed, 3);
    unsigned char *in_use = SIM_NEW_ARRAY(unsigned char, (size_t)nblocks);
    int32_t *held = SIM_NEW_ARRAY(int32_t, (size_t)nblocks);
    int64_t nheld = 0, anon = 0, peak = 0, n_alloc = 0, n_freed = 0;
    int k;
    T_ASSERT(p && in_use && held);
    for (k = 0; k < ops; k++) {
        unsigned op = (unsigned)gsl_rng_uniform_int(r, 5);
        int64_t free_now = nblocks - nheld - anon;
        if (op == 0) {
            int32_t id = kvc_block_alloc(p);
            if (free_now == 0) {
                T_EQ_I(id, -1);
            } else {
                T_ASSERT(id >= 0 && id < nblocks);
                T_EQ_I(in_use[id], 0);
                in_use[id] = 1;
                held[nheld++] = id;
                n_alloc++;
            }
        } else if (op == 1) {
            int32_t ids[8], n = (int32_t)gsl_rng_uniform_int(r, 8), got, j;
            got = kvc_block_alloc_n(p, ids, n);
            T_EQ_I(got, n < free_now ? n : free_now);
            for (j = 0; j < got; j++) {
                T_ASSERT(ids[j] >= 0 && ids[j] < nblocks);
                T_EQ_I(in_use[ids[j]], 0);
                in_use[ids[j]] = 1;
                held[nheld++] = ids[j];
            }
            n_alloc += got;
        } else if (op == 2) {
            int64_t n = (int64_t)gsl_rng_uniform_int(r, (unsigned long)nblocks + 2);
            int64_t got = kvc_anon_alloc(p, n);
            T_EQ_I(got, n < free_now ? n : free_now);
            anon += got;
            n_alloc += got;
        } else if (op == 3 && anon > 0) {
            int64_t n = 1 + (int64_t)gsl_rng_uniform_int(r, (unsigned long)anon);
            kvc_anon_release(p, n);
            anon -= n;
            n_freed += n;
        } else if (nheld > 0) {
            int64_t j = (int64_t)gsl_rng_uniform_int(r, (unsigned long)nheld);
            int32_t id = held[j];
            held[j] = held[--nheld];
            kvc_block_unref(p, id);
            in_use[id] = 0;
            n_freed++;
        }
        if (nheld + anon > peak)
            peak = nheld + anon;
        T_EQ_I(kvc_used(p), nheld + anon);
        T_EQ_I(kvc_free(p), nblocks - nheld - anon);
        T_EQ_I(kvc_n_anon(p), anon);
        T_EQ_I(kvc_peak_used(p), peak);
        T_EQ_I(kvc_n_alloc(p), n_alloc);
        T_EQ_I(kvc_n_freed(p), n_freed);
        T_EQ_I(kvc_check(p), 0);
    }
    kvc_anon_release(p, anon);
    while (nheld > 0)
        kvc_block_unref(p, held[--nheld]);
    T_EQ_I(kvc_used(p), 0);
    T_EQ_I(kvc_free(p), nblocks);
    T_EQ_I(kvc_n_alloc(p), kvc_n_freed(p)); /* conservation */
    T_EQ_I(kvc_check(p), 0);
    sim_free(in_use);
    sim_free(held);
    sim_rng_destroy(r);
    kvc_pool_destroy(p);
}

/* The sabotage case: corrupt the pool the way a double free would and make
 * sure the validator notices (a validator that never fails proves nothing). */
struct kvc_pool_view {
    int64_t n, n_free, hw, n_back, cap;
    int32_t *back;
    uint32_t *refs;
};

static void test_kvc_sabotage(void) {
    kvc_pool *p = kvc_pool_create(8);
    struct kvc_pool_view *v = (struct kvc_pool_view *)p;
    int32_t a = kvc_block_alloc(p), b = kvc_block_alloc(p);
    T_ASSERT(a >= 0 && b >= 0);
    T_EQ_I(kvc_check(p), 0);
    /* push a's id onto the free stack while it is still referenced */
    v->back[v->n_back++] = a;
    v->n_free++;
    T_ASSERT(kvc_check(p) < 0);
    v->n_back--;
    v->n_free--;
    T_EQ_I(kvc_check(p), 0);
    /* a count that disagrees with the stack */
    v->n_free++;
    T_ASSERT(kvc_check(p) < 0);
    v->n_free--;
    T_EQ_I(kvc_check(p), 0);
    kvc_block_unref(p, a);
    kvc_block_unref(p, b);
    T_EQ_I(kvc_check(p), 0);
    kvc_pool_destroy(p);
}

static void test_kvc_oom(void) {
    uint64_t k;
    size_t base = sim_mem_current();
    for (k = 1;; k++) {
        kvc_pool *p;
        sim_mem_fail_at(k);
        p = kvc_pool_create(100);
        sim_mem_fail_at(0);
        if (p) {
            kvc_pool_destroy(p);
            break;
        }
        T_EQ_I(sim_mem_current(), base); /* nothing leaked on the failure path */
    }
    T_ASSERT(k > 1);
    T_ASSERT(kvc_pool_create(0) == NULL);
}

/* The id arrays grow with the ids handed out, not with the pool; a failed
 * growth is reported as such (kvc_oom), never as a full pool. */
static void test_kvc_lazy(void) {
    kvc_pool *p = kvc_pool_create(1000000);
    int32_t ids[3000];
    int32_t i, got;
    T_ASSERT(p != NULL);
    T_EQ_I(kvc_ids_held(p), 0);
    T_EQ_I(kvc_anon_alloc(p, 900000), 900000); /* anonymous blocks hold no ids */
    T_EQ_I(kvc_ids_held(p), 0);
    kvc_anon_release(p, 900000);
    got = kvc_block_alloc_n(p, ids, 3000);
    T_EQ_I(got, 3000);
    for (i = 0; i < got; i++)
        T_EQ_I(ids[i], i); /* lowest ids first, as a whole stack gives them */
    T_ASSERT(kvc_ids_held(p) >= 3000 && kvc_ids_held(p) < 10000);
    T_EQ_I(kvc_check(p), 0);
    kvc_block_unref(p, 7);
    T_EQ_I(kvc_block_alloc(p), 7); /* the freed id comes back first */
    T_EQ_I(kvc_block_alloc(p), 3000);
    T_EQ_I(kvc_check(p), 0);
    kvc_block_unref_n(p, ids, got);
    T_EQ_I(kvc_check(p), 0);
    /* growth fails: -1 with kvc_oom set, the pool itself unchanged */
    while (kvc_used(p) < kvc_ids_held(p)) /* every held id in use: the next one must grow */
        T_ASSERT(kvc_block_alloc(p) >= 0);
    T_ASSERT(!kvc_oom(p));
    {
        int64_t used = kvc_used(p), held = kvc_ids_held(p);
        sim_mem_fail_at(1);
        T_EQ_I(kvc_block_alloc(p), -1);
        sim_mem_fail_at(0);
        T_ASSERT(kvc_oom(p));
        T_EQ_I(kvc_used(p), used);
        T_EQ_I(kvc_ids_held(p), held);
        T_EQ_I(kvc_check(p), 0);
        T_ASSERT(kvc_free(p) > 0); /* blocks were free: it was memory that lacked */
    }
    kvc_pool_destroy(p);
}

int main(void) {
    test_evq_order();
    test_evq_classes();
    test_evq_ties();
    test_kvc_script(1, 1, 2000);
    test_kvc_script(2, 17, 20000);
    test_kvc_script(3, 300, 50000);
    test_kvc_anon_script(4, 1, 2000);
    test_kvc_anon_script(5, 17, 20000);
    test_kvc_anon_script(6, 300, 20000);
    test_kvc_sabotage();
    test_kvc_oom();
    test_kvc_lazy();
    printf("test_core: ok\n");
    return 0;
}
