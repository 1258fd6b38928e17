/* mooncake.c: Mooncake JSONL traces (kvcache-ai/Mooncake, FAST'25).
 *
 * One JSON object per line:
 *     {"timestamp": 27482, "input_length": 6955, "output_length": 52,
 *      "hash_ids": [46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 2353, 2354]}
 * timestamp is milliseconds (integer or real, >= 0, non-decreasing);
 * input_length and output_length are positive integers; hash_ids (optional)
 * lists the prompt's prefix-block hashes (512 tokens per block in the
 * published traces), each an integer in 0..2^32-1, at most ceil(input_length
 * / B) of them for the hash block size B the caller gives
 * (trace_opts.hash_block_tokens), one per prompt token when it gives none.
 * Other keys are ignored; a key given twice is an error.
 *
 * Each line is parsed on its own with json_loadb(), so memory is one line
 * plus its JSON tree. The hash ids are copied into a buffer owned by the
 * reader that req->hash_ids borrows until the next call (it only grows, to
 * the longest list seen). When jansson's allocator reports out of memory
 * (the runtime may route it through sim_malloc), the reader returns
 * SIM_ENOMEM rather than a parse error. */
#include "config.h"
#include "trace_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "mem.h"

typedef struct mooncake {
    trace__lines *lines; /* owned */
    uint32_t *hash;      /* hash ids of the current request; owned */
    size_t hash_cap;     /* slots allocated in hash */
    int have_prev;       /* 1 after the first line */
    int64_t prev_ns;     /* raw time of the previous line */
    int32_t block;       /* tokens a hash id covers (0: unknown) */
} mooncake;

/* Short text for a JSON value, for messages ("nothing" when absent). */
static const char *describe(const json_t *v, char *buf, size_t n) {
    if (v == NULL)
        return "nothing";
    switch (json_typeof(v)) {
        case JSON_INTEGER:
            snprintf(buf, n, "'%" JSON_INTEGER_FORMAT "'", json_integer_value(v));
            return buf;
        case JSON_REAL: {
            /* %.17g drops the point of 10.0, which then read as an
             * integer in "expected an integer, got '10'": keep a real
             * looking real */
            size_t len;
            snprintf(buf, n, "'%.17g", json_real_value(v));
            len = strlen(buf);
            if (strpbrk(buf, ".eEni") == NULL && len + 3 < n)
                memcpy(buf + len, ".0", 3);
            len = strlen(buf);
            if (len + 2 <= n)
                memcpy(buf + len, "'", 2);
            return buf;
        }
        case JSON_STRING:
            snprintf(buf, n, "'\"%.48s\"'", json_string_value(v));
            return buf;
        case JSON_TRUE:
            return "'true'";
        case JSON_FALSE:
            return "'false'";
        case JSON_NULL:
            return "'null'";
        case JSON_ARRAY:
            return "an array";
        case JSON_OBJECT:
            return "an object";
    }
    return "a value";
}

static int bad(const trace__lines *l, const char *field, const char *what, const json_t *v,
               sim_err *err) {
    char buf[96];
    sim_err_set(err, l->path, l->line_no, 0, "%s: expected %s, got %s", field, what,
                describe(v, buf, sizeof buf));
    return SIM_EPARSE;
}

static int get_tokens(const trace__lines *l, const json_t *obj, const char *key, int32_t *out,
                      sim_err *err) {
    const json_t *v = json_object_get(obj, key);
    json_int_t x;
    if (!json_is_integer(v) || (x = json_integer_value(v)) < 1)
        return bad(l, key, "a positive integer", v, err);
    if (x > INT32_MAX)
        return bad(l, key, "a positive integer <= 2147483647", v, err);
    *out = (int32_t)x;
    return SIM_OK;
}

static int get_time(const trace__lines *l, const json_t *obj, int64_t *out_ns, sim_err *err) {
    static const char *what = "a number of milliseconds in [0, 9.2e12]";
    const json_t *v = json_object_get(obj, "timestamp");
    if (json_is_integer(v)) {
        json_int_t ms = json_integer_value(v);
        if (ms < 0 || ms > 9200000000000LL)
            return bad(l, "timestamp", what, v, err);
        *out_ns = (int64_t)ms * 1000000;
        return SIM_OK;
    }
    if (json_is_real(v)) {
        double ms = json_real_value(v);
        if (!isfinite(ms) || ms < 0 || ms > 9.2e12)
            return bad(l, "timestamp", what, v, err);
        *out_ns = (int64_t)llround(ms * 1e6);
        return SIM_OK;
    }
    return bad(l, "timestamp", what, v, err);
}

/* Copies hash_ids into m->hash; absent means none. */
static int get_hashes(mooncake *m, const json_t *obj, int32_t *n_out, sim_err *err) {
    const trace__lines *l = m->lines;
    const json_t *arr = json_object_get(obj, "hash_ids");
    size_t i, n;

    *n_out = 0;
    if (arr == NULL)
        return SIM_OK;
    if (!json_is_array(arr))
        return bad(l, "hash_ids", "an array of integers", arr, err);
    n = json_array_size(arr);
    if (n > INT32_MAX)
        return bad(l, "hash_ids", "at most 2^31-1 entries", arr, err);
    if (n > m->hash_cap) {
        size_t cap = n > 2 * m->hash_cap ? n : 2 * m->hash_cap;
        uint32_t *h = sim_realloc(m->hash, cap * sizeof *h);
        if (h == NULL) {
            sim_err_set(err, l->path, l->line_no, 0, "hash_ids: out of memory");
            return SIM_ENOMEM;
        }
        m->hash = h;
        m->hash_cap = cap;
    }
    for (i = 0; i < n; i++) {
        const json_t *v = json_array_get(arr, i);
        json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
        if (x < 0 || x > (json_int_t)UINT32_MAX) {
            char field[48];
            snprintf(field, sizeof field, "hash_ids[%zu]", i);
            return bad(l, field, "an integer in 0..4294967295", v, err);
        }
        m->hash[i] = (uint32_t)x;
    }
    *n_out = (int32_t)n;
    return SIM_OK;
}

/* Checks that the prompt has a block for every hash id: at most
 * ceil(prompt / block) ids for the hash block size the caller gave (run's
 * --hash-block-tokens, cache-replay's --block-tokens: 512 by default,
 * Mooncake's); without one, at most one per prompt token. Extra ids would
 * be counted as hits on blocks the prompt does not have. */
static int check_hash_count(const trace__lines *l, int32_t prompt_tokens, int32_t n_ids,
                            int32_t block, sim_err *err) {
    int64_t most = block > 0 ? ((int64_t)prompt_tokens + block - 1) / block : prompt_tokens;
    if (n_ids <= most)
        return SIM_OK;
    if (block > 0)
        sim_err_set(err, l->path, l->line_no, 0,
                    "hash_ids: expected at most %lld ids for input_length %ld (%ld-token hash "
                    "blocks), got %ld",
                    (long long)most, (long)prompt_tokens, (long)block, (long)n_ids);
    else
        sim_err_set(err, l->path, l->line_no, 0,
                    "hash_ids: expected at most %ld ids for input_length %ld (one id per block of "
                    "the prompt, a block at least 1 token), got %ld",
                    (long)prompt_tokens, (long)prompt_tokens, (long)n_ids);
    return SIM_EPARSE;
}

static int mooncake_next(void *state, sim_req *out, sim_err *err) {
    mooncake *m = state;
    trace__lines *l = m->lines;
    json_error_t jerr;
    json_t *obj;
    int64_t t_ns = 0;
    int rc;

    rc = trace__lines_next(l, err);
    if (rc <= 0)
        return rc;
    obj = json_loadb(l->buf, l->len, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL) {
        if (json_error_code(&jerr) == json_error_out_of_memory) {
            sim_err_set(err, l->path, l->line_no, 0, "json: out of memory");
            return SIM_ENOMEM;
        }
        if (json_error_code(&jerr) == json_error_duplicate_key) {
            /* last-one-wins would pick a field silently */
            sim_err_set(err, l->path, l->line_no, jerr.column > 0 ? jerr.column : 0,
                        "json: expected each key once, got a key twice (%s)", jerr.text);
            return SIM_EPARSE;
        }
        sim_err_set(err, l->path, l->line_no, jerr.column > 0 ? jerr.column : 0,
                    "json: expected a JSON object, got invalid JSON (%s)", jerr.text);
        return SIM_EPARSE;
    }
    if (!json_is_object(obj)) {
        rc = bad(l, "json", "a JSON object", obj, err);
        goto out;
    }
    if ((rc = get_time(l, obj, &t_ns, err)) != SIM_OK)
        goto out;
    if (m->have_prev && t_ns < m->prev_ns) {
        char buf[96];
        sim_err_set(err, l->path, l->line_no, 0,
                    "timestamp: expected a time >= the previous line's (lines sorted by "
                    "arrival), got %s",
                    describe(json_object_get(obj, "timestamp"), buf, sizeof buf));
        rc = SIM_EPARSE;
        goto out;
    }
    if ((rc = get_tokens(l, obj, "input_length", &out->prompt_tokens, err)) != SIM_OK)
        goto out;
    if ((rc = get_tokens(l, obj, "output_length", &out->output_tokens, err)) != SIM_OK)
        goto out;
    if ((rc = get_hashes(m, obj, &out->n_hash_ids, err)) != SIM_OK)
        goto out;
    if ((rc = check_hash_count(l, out->prompt_tokens, out->n_hash_ids, m->block, err)) != SIM_OK)
        goto out;
    m->have_prev = 1;
    m->prev_ns = t_ns;
    out->arrival_ns = t_ns;
    out->new_tokens = out->prompt_tokens;
    out->session_id = -1;
    out->turn = 0;
    out->hash_ids = out->n_hash_ids > 0 ? m->hash : NULL;
    rc = 1;

out:
    json_decref(obj);
    return rc;
}

static void mooncake_destroy(void *state) {
    mooncake *m = state;
    if (m == NULL)
        return;
    trace__lines_close(m->lines);
    sim_free(m->hash);
    sim_free(m);
}

/* One request per line: the line last read is the last request's. */
static long mooncake_line(void *state) {
    return ((const mooncake *)state)->lines->line_no;
}

static const trace__src_ops mooncake_ops = {
    .next = mooncake_next,
    .on_end = NULL,
    .destroy = mooncake_destroy,
    .line = mooncake_line,
};

int trace__mooncake_open(trace__lines *l, int32_t hash_block_tokens, trace__impl *out,
                         sim_err *err) {
    mooncake *m = SIM_NEW(mooncake);
    int rc;

    if (m == NULL) {
        sim_err_set(err, l->path, 0, 0, "cannot open: out of memory");
        trace__lines_close(l);
        return SIM_ENOMEM;
    }
    m->lines = l;
    m->block = hash_block_tokens > 0 ? hash_block_tokens : 0;
    /* An empty file is an error here as in the CSV formats. */
    rc = trace__lines_next(l, err);
    if (rc == 0) {
        sim_err_set(err, l->path, 1, 0,
                    "json: expected a JSON object per line (mooncake), got an empty file");
        rc = SIM_EPARSE;
    }
    if (rc < 0) {
        mooncake_destroy(m);
        return rc;
    }
    trace__lines_unread(l);
    out->ops = &mooncake_ops;
    out->state = m;
    return SIM_OK;
}
