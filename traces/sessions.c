/* sessions.c: multi-turn conversations, closed loop. The live-session table
 * shared with the synthetic "sessions" kind, and the sessions CSV reader.
 *
 * Semantics (one session = one user's conversation):
 *   - turn 1 arrives at the session's start (open loop, from trace_next());
 *   - turn k > 1 arrives think_k after turn k-1 ENDS: the engine reports the
 *     end through trace_on_end(), which hands back turn k at end + think_k
 *     (think times are not divided by --load-scale: they are the user's);
 *   - a turn's prompt is the whole context: every earlier turn's prompt and
 *     output plus this turn's new tokens, i.e.
 *         prompt_k = prompt_{k-1} + output_{k-1} + new_k,  prompt_1 = new_1;
 *   - a rejected turn ends its session: the user leaves, later turns are
 *     dropped (they never reach the engine, so they count against nothing).
 *
 * Memory: only live sessions are held (those with turns still to emit), in
 * a chained hash table keyed by session_key that doubles when it holds as
 * many sessions as buckets. A session's turns are known when it starts
 * (they are read or drawn then), so the cost is one small array per live
 * session, bounded by concurrency, never by the trace length.
 *
 * Sessions CSV: header session_id,turn,start_s,think_s,prompt_tokens,
 * output_tokens (found by name, extra columns allowed). A session's rows
 * are consecutive with turns 1, 2, 3, ...; sessions appear in non-decreasing
 * start_s. start_s is read from turn 1 (later turns must hold a number,
 * which is ignored); think_s is read from turns > 1 (turn 1's is ignored);
 * prompt_tokens is the turn's new prompt, not the context. A turn-1 row
 * always starts a new session, with a key of its own, even under an id
 * whose earlier session is still live. The reader reads one row ahead (the
 * next session's turn 1) to know where a session ends. */
#include "config.h"
#include "trace_int.h"

#include <string.h>

#include "mem.h"

struct trace__session {
    int64_t id;                   /* session id as in the source, >= 0 */
    uint64_t key;                 /* its requests' session_key */
    trace__turn *turns;           /* owned, n_turns entries */
    int32_t n_turns;              /* >= 2 (single-turn sessions are never stored) */
    int32_t next;                 /* 0-based index of the next turn to emit, 1..n_turns-1 */
    int64_t context;              /* prompt + output of the last emitted turn, tokens */
    struct trace__session *hnext; /* bucket chain */
};

/* ---- live-session table ---- */

static size_t bucket_of(uint64_t key, size_t n_buckets) {
    uint64_t z = key * 0x9e3779b97f4a7c15ULL;
    return (size_t)(z ^ (z >> 29)) & (n_buckets - 1);
}

void trace__sess_table_init(trace__sess_table *tb) {
    memset(tb, 0, sizeof *tb);
}

static void session_free(trace__session *s) {
    sim_free(s->turns);
    sim_free(s);
}

void trace__sess_table_fini(trace__sess_table *tb) {
    size_t i;
    for (i = 0; i < tb->n_buckets; i++) {
        trace__session *s = tb->buckets[i];
        while (s) {
            trace__session *n = s->hnext;
            session_free(s);
            s = n;
        }
    }
    SIM_FREE(tb->buckets);
    tb->n_buckets = 0;
    tb->n_live = 0;
}

static trace__session *find(const trace__sess_table *tb, uint64_t key, trace__session ***link) {
    trace__session **p;
    if (tb->n_buckets == 0)
        return NULL;
    for (p = &tb->buckets[bucket_of(key, tb->n_buckets)]; *p; p = &(*p)->hnext) {
        if ((*p)->key == key) {
            if (link)
                *link = p;
            return *p;
        }
    }
    return NULL;
}

/* Doubles the bucket array (16 at first). Returns SIM_OK or SIM_ENOMEM. */
static int grow(trace__sess_table *tb) {
    size_t nb = tb->n_buckets ? tb->n_buckets * 2 : 16, i;
    trace__session **b = SIM_NEW_ARRAY(trace__session *, nb);
    if (b == NULL)
        return SIM_ENOMEM;
    for (i = 0; i < tb->n_buckets; i++) {
        trace__session *s = tb->buckets[i];
        while (s) {
            trace__session *n = s->hnext;
            size_t k = bucket_of(s->key, nb);
            s->hnext = b[k];
            b[k] = s;
            s = n;
        }
    }
    sim_free(tb->buckets);
    tb->buckets = b;
    tb->n_buckets = nb;
    return SIM_OK;
}

int trace__sess_start(trace__sess_table *tb, int64_t id, trace__turn *turns, int32_t n_turns,
                      sim_time arrival, sim_req *first) {
    trace__session *s;
    size_t k;

    memset(first, 0, sizeof *first);
    first->arrival_ns = arrival;
    first->prompt_tokens = turns[0].new_tokens;
    first->new_tokens = turns[0].new_tokens;
    first->output_tokens = turns[0].output_tokens;
    first->session_id = id;
    first->session_key = ++tb->n_started; /* unique even when the id comes back */
    first->turn = 1;
    if (n_turns <= 1) {
        sim_free(turns);
        return SIM_OK;
    }
    if (tb->n_live >= tb->n_buckets && grow(tb) != SIM_OK)
        goto nomem;
    s = SIM_NEW(trace__session);
    if (s == NULL)
        goto nomem;
    s->id = id;
    s->key = first->session_key;
    s->turns = turns;
    s->n_turns = n_turns;
    s->next = 1;
    s->context = (int64_t)turns[0].new_tokens + turns[0].output_tokens;
    k = bucket_of(s->key, tb->n_buckets);
    s->hnext = tb->buckets[k];
    tb->buckets[k] = s;
    tb->n_live++;
    return SIM_OK;

nomem:
    sim_free(turns);
    return SIM_ENOMEM;
}

int trace__sess_on_end(trace__sess_table *tb, const sim_req *r, sim_time end_ns, int rejected,
                       sim_req *out) {
    trace__session **link = NULL;
    trace__session *s;
    const trace__turn *tn;

    if (r->session_id < 0)
        return 0;
    s = find(tb, r->session_key, &link);
    /* Only the outstanding turn (number s->next, 1-based) moves a session on. */
    if (s == NULL || r->turn != s->next)
        return 0;
    if (!rejected) {
        tn = &s->turns[s->next];
        memset(out, 0, sizeof *out);
        out->arrival_ns =
            end_ns > SIM_TIME_MAX - tn->think_ns ? SIM_TIME_MAX : end_ns + tn->think_ns;
        out->new_tokens = tn->new_tokens;
        out->prompt_tokens = (int32_t)(s->context + tn->new_tokens);
        out->output_tokens = tn->output_tokens;
        out->session_id = s->id;
        out->session_key = s->key;
        out->turn = s->next + 1;
        s->context += (int64_t)tn->new_tokens + tn->output_tokens;
        s->next++;
        if (s->next < s->n_turns)
            return 1;
    }
    /* Last turn emitted, or the user left: the session is no longer live. */
    *link = s->hnext;
    tb->n_live--;
    session_free(s);
    return rejected ? 0 : 1;
}

/* ---- sessions CSV reader ---- */

enum { C_ID, C_TURN, C_START, C_THINK, C_PROMPT, C_OUTPUT, N_COLS };

static const char *const col_names[N_COLS] = {"session_id", "turn",          "start_s",
                                              "think_s",    "prompt_tokens", "output_tokens"};

typedef struct sess_row {
    int64_t id;       /* session_id */
    int32_t turn;     /* 1-based */
    int64_t start_ns; /* start_s in ns */
    int64_t think_ns; /* think_s in ns */
    int32_t prompt;   /* prompt_tokens (new in this turn) */
    int32_t output;   /* output_tokens */
} sess_row;

typedef struct sessions {
    trace__lines *lines;     /* owned */
    trace__fields fields;    /* split of the current row */
    int n_cols;              /* fields in the header */
    int col[N_COLS];         /* 0-based column of each named field */
    trace__sess_table table; /* live sessions */
    int have_ahead;          /* 1: ahead holds the next session's turn 1 */
    sess_row ahead;          /* read one row ahead */
    int have_prev;           /* 1 once a session was started */
    int64_t prev_start_ns;   /* start of the previous session, ns */
    trace__turn *turns;      /* turns of the session being read; owned until started */
} sessions;

/* Reads and parses the next row. Returns 1, 0 at the end, or an error. */
/* think_s: seconds, at most the simulator's horizon (1e9 s, the cap of a
 * synthetic think time too); a longer wait could never arrive. */
static int parse_think(const trace__lines *l, int col, const char *field, const char *s,
                       int64_t *out_ns, sim_err *err) {
    int rc = trace__parse_seconds(l, col, field, s, out_ns, err);
    if (rc != SIM_OK)
        return rc;
    if (*out_ns > SIM_HORIZON_NS) {
        sim_err_set(err, l->path, l->line_no, col,
                    "%s: expected a number of seconds in [0, 1e9] (the simulator's horizon), "
                    "got '%.64s'",
                    field, s);
        return SIM_EPARSE;
    }
    return SIM_OK;
}

static int read_row(sessions *ss, sess_row *row, sim_err *err) {
    trace__lines *l = ss->lines;
    char **f;
    int rc, *c = ss->col;

    rc = trace__lines_next(l, err);
    if (rc <= 0)
        return rc;
    if ((rc = trace__csv_split(l, ss->n_cols, &ss->fields, err)) != SIM_OK)
        return rc;
    f = ss->fields.f;
    if ((rc = trace__parse_id(l, c[C_ID] + 1, col_names[C_ID], f[c[C_ID]], &row->id, err)) ||
        (rc = trace__parse_tokens(l, c[C_TURN] + 1, col_names[C_TURN], f[c[C_TURN]], &row->turn,
                                  err)) ||
        (rc = trace__parse_seconds(l, c[C_START] + 1, col_names[C_START], f[c[C_START]],
                                   &row->start_ns, err)) ||
        (rc = parse_think(l, c[C_THINK] + 1, col_names[C_THINK], f[c[C_THINK]], &row->think_ns,
                          err)) ||
        (rc = trace__parse_tokens(l, c[C_PROMPT] + 1, col_names[C_PROMPT], f[c[C_PROMPT]],
                                  &row->prompt, err)) ||
        (rc = trace__parse_tokens(l, c[C_OUTPUT] + 1, col_names[C_OUTPUT], f[c[C_OUTPUT]],
                                  &row->output, err)))
        return rc;
    return 1;
}

/* Checks that a row may open a new session: turn 1 and a start no earlier
 * than the previous session's. An id whose earlier session is still live
 * opens a second one: sessions are told apart by their key, so whether the
 * first has ended (which depends on the run's timing) does not matter. The
 * row is still the current line. */
static int check_new_session(sessions *ss, const sess_row *row, sim_err *err) {
    trace__lines *l = ss->lines;
    char **f = ss->fields.f;
    int *c = ss->col;

    if (row->turn != 1) {
        sim_err_set(err, l->path, l->line_no, c[C_TURN] + 1,
                    "turn: expected 1 (the first row of session %lld; a session's turns are "
                    "consecutive), got '%s'",
                    (long long)row->id, f[c[C_TURN]]);
        return SIM_EPARSE;
    }
    if (ss->have_prev && row->start_ns < ss->prev_start_ns) {
        sim_err_set(err, l->path, l->line_no, c[C_START] + 1,
                    "start_s: expected a start >= the previous session's (sessions sorted by "
                    "start_s), got '%s'",
                    f[c[C_START]]);
        return SIM_EPARSE;
    }
    return SIM_OK;
}

static int sessions_next(void *state, sim_req *out, sim_err *err) {
    sessions *ss = state;
    trace__lines *l = ss->lines;
    sess_row first, row;
    size_t n = 0, cap = 4;
    int64_t context;
    int rc;

    if (!ss->have_ahead) {
        rc = read_row(ss, &ss->ahead, err);
        if (rc <= 0)
            return rc;
        if ((rc = check_new_session(ss, &ss->ahead, err)) != SIM_OK)
            return rc;
        ss->have_ahead = 1;
    }
    first = ss->ahead;
    ss->have_ahead = 0;
    ss->have_prev = 1;
    ss->prev_start_ns = first.start_ns;
    SIM_FREE(ss->turns);
    ss->turns = SIM_NEW_ARRAY(trace__turn, cap);
    if (ss->turns == NULL)
        goto nomem;
    ss->turns[n].think_ns = 0;
    ss->turns[n].new_tokens = first.prompt;
    ss->turns[n].output_tokens = first.output;
    n++;
    context = (int64_t)first.prompt + first.output;

    /* Collect the session's later turns; stop at the next session's turn 1. */
    for (;;) {
        rc = read_row(ss, &row, err);
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
        if (row.id != first.id || row.turn == 1) { /* turn 1 always starts one */
            if ((rc = check_new_session(ss, &row, err)) != SIM_OK)
                return rc;
            ss->ahead = row;
            ss->have_ahead = 1;
            break;
        }
        if (row.turn != (int64_t)n + 1) {
            sim_err_set(err, l->path, l->line_no, ss->col[C_TURN] + 1,
                        "turn: expected %zu (session %lld's turns are consecutive), got '%s'",
                        n + 1, (long long)row.id, ss->fields.f[ss->col[C_TURN]]);
            return SIM_EPARSE;
        }
        if (context + row.prompt > INT32_MAX) {
            sim_err_set(err, l->path, l->line_no, ss->col[C_PROMPT] + 1,
                        "prompt_tokens: expected a session context (earlier prompts and "
                        "outputs plus this prompt) <= 2147483647 tokens, got '%s'",
                        ss->fields.f[ss->col[C_PROMPT]]);
            return SIM_EPARSE;
        }
        if (n == cap) {
            trace__turn *t = sim_realloc(ss->turns, 2 * cap * sizeof *t);
            if (t == NULL)
                goto nomem;
            ss->turns = t;
            cap *= 2;
        }
        ss->turns[n].think_ns = row.think_ns;
        ss->turns[n].new_tokens = row.prompt;
        ss->turns[n].output_tokens = row.output;
        n++;
        context += (int64_t)row.prompt + row.output;
    }
    rc = trace__sess_start(&ss->table, first.id, ss->turns, (int32_t)n, first.start_ns, out);
    ss->turns = NULL; /* owned by the table now, or freed */
    if (rc != SIM_OK)
        goto nomem;
    return 1;

nomem:
    sim_err_set(err, l->path, l->line_no, 0, "session: out of memory");
    return SIM_ENOMEM;
}

static int sessions_on_end(void *state, const sim_req *r, sim_time end_ns, int rejected,
                           sim_req *out) {
    sessions *ss = state;
    return trace__sess_on_end(&ss->table, r, end_ns, rejected, out);
}

static void sessions_destroy(void *state) {
    sessions *ss = state;
    if (ss == NULL)
        return;
    trace__lines_close(ss->lines);
    trace__fields_fini(&ss->fields);
    trace__sess_table_fini(&ss->table);
    sim_free(ss->turns);
    sim_free(ss);
}

static const trace__src_ops sessions_ops = {
    .next = sessions_next,
    .on_end = sessions_on_end,
    .destroy = sessions_destroy,
};

int trace__sessions_open(trace__lines *l, trace__impl *out, sim_err *err) {
    sessions *ss = SIM_NEW(sessions);
    int rc, i;

    if (ss == NULL) {
        sim_err_set(err, l->path, 0, 0, "cannot open: out of memory");
        trace__lines_close(l);
        return SIM_ENOMEM;
    }
    ss->lines = l;
    trace__sess_table_init(&ss->table);
    rc = trace__lines_next(l, err);
    if (rc < 0)
        goto err;
    if (rc == 0) {
        sim_err_set(err, l->path, 1, 0,
                    "header: expected 'session_id,turn,start_s,think_s,prompt_tokens,"
                    "output_tokens' (sessions), got an empty file");
        rc = SIM_EPARSE;
        goto err;
    }
    for (i = 0; i < N_COLS; i++) {
        if (!trace__csv_line_has(l->buf, col_names[i])) {
            sim_err_set(err, l->path, l->line_no, 0,
                        "header: expected a '%s' column (sessions: 'session_id,turn,start_s,"
                        "think_s,prompt_tokens,output_tokens'), got '%.80s'",
                        col_names[i], l->buf);
            rc = SIM_EPARSE;
            goto err;
        }
    }
    if ((rc = trace__csv_split(l, 0, &ss->fields, err)) != SIM_OK)
        goto err;
    ss->n_cols = ss->fields.n;
    for (i = 0; i < N_COLS; i++)
        if ((rc = ss->col[i] = trace__csv_find_one(l, &ss->fields, col_names[i], err)) < 0)
            goto err;
    out->ops = &sessions_ops;
    out->state = ss;
    return SIM_OK;

err:
    sessions_destroy(ss);
    return rc;
}
