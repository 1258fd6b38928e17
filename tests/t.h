/* t.h: the test harness's asserts (libuv style: print both values).
 *
 * A test program exits 0 on pass, 1 on the first failed assert, 77 to skip
 * (T_SKIP) and 99 when the harness itself is broken. Asserts print the
 * expression, both values and file:line. */
#ifndef TESTS_T_H
#define TESTS_T_H

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_FAIL_(...)                                                                               \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);                                      \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        exit(1);                                                                                   \
    } while (0)

#define T_ASSERT(c)                                                                                \
    do {                                                                                           \
        if (!(c))                                                                                  \
            T_FAIL_("%s", #c);                                                                     \
    } while (0)

#define T_EQ_I(a, b)                                                                               \
    do {                                                                                           \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                                    \
        if (t_a_ != t_b_)                                                                          \
            T_FAIL_("%s == %s: %lld != %lld", #a, #b, t_a_, t_b_);                                 \
    } while (0)

#define T_NE_I(a, b)                                                                               \
    do {                                                                                           \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                                    \
        if (t_a_ == t_b_)                                                                          \
            T_FAIL_("%s != %s: both %lld", #a, #b, t_a_);                                          \
    } while (0)

#define T_LE_I(a, b)                                                                               \
    do {                                                                                           \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                                    \
        if (!(t_a_ <= t_b_))                                                                       \
            T_FAIL_("%s <= %s: %lld > %lld", #a, #b, t_a_, t_b_);                                  \
    } while (0)

/* |a - b| <= tol (absolute). */
#define T_NEAR(a, b, tol)                                                                          \
    do {                                                                                           \
        double t_a_ = (double)(a), t_b_ = (double)(b);                                             \
        if (!(fabs(t_a_ - t_b_) <= (tol)))                                                         \
            T_FAIL_("%s ~ %s: %.17g vs %.17g (tol %g)", #a, #b, t_a_, t_b_, (double)(tol));        \
    } while (0)

/* |a - b| <= rel * max(|a|, |b|). */
#define T_REL(a, b, rel)                                                                           \
    do {                                                                                           \
        double t_a_ = (double)(a), t_b_ = (double)(b);                                             \
        double t_m_ = fabs(t_a_) > fabs(t_b_) ? fabs(t_a_) : fabs(t_b_);                           \
        if (!(fabs(t_a_ - t_b_) <= (rel)*t_m_))                                                    \
            T_FAIL_("%s ~ %s: %.17g vs %.17g (rel %g)", #a, #b, t_a_, t_b_, (double)(rel));        \
    } while (0)

#define T_STREQ(a, b)                                                                              \
    do {                                                                                           \
        const char *t_a_ = (a), *t_b_ = (b);                                                       \
        if (strcmp(t_a_, t_b_) != 0)                                                               \
            T_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b, t_a_, t_b_);                             \
    } while (0)

/* a contains b as a substring. */
#define T_CONTAINS(a, b)                                                                           \
    do {                                                                                           \
        const char *t_a_ = (a), *t_b_ = (b);                                                       \
        if (strstr(t_a_, t_b_) == NULL)                                                            \
            T_FAIL_("%s contains %s: \"%s\" lacks \"%s\"", #a, #b, t_a_, t_b_);                    \
    } while (0)

#define T_SKIP(...)                                                                                \
    do {                                                                                           \
        fprintf(stderr, "SKIP: ");                                                                 \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        exit(77);                                                                                  \
    } while (0)

/* main() of a GPU test: runs fn, or skips (77) in a build without CUDA or
 * when no CUDA device is usable (the file includes kern.h). */
#ifdef KV_HAVE_CUDA
#define T_GPU_MAIN(name, fn)                                                                       \
    int main(void) {                                                                               \
        if (kern_device_count() <= 0)                                                              \
            T_SKIP("no usable CUDA device: %s", kern_last_error());                                \
        fn();                                                                                      \
        printf("%s: ok\n", name);                                                                  \
        return 0;                                                                                  \
    }
#else
#define T_GPU_MAIN(name, fn)                                                                       \
    int main(void) {                                                                               \
        T_SKIP("built without CUDA (configure --without-cuda, or no working nvcc)");               \
    }
#endif

/* The source tree's test data folder (set by the Makefile). */
#ifndef KV_TEST_DATADIR
#define KV_TEST_DATADIR "tests/data"
#endif

#endif /* TESTS_T_H */
