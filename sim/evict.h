/* evict.h: the eviction policy interface of the KV prefix cache.
 *
 * A policy is one file (sim/evict_<name>.c) that fills a static const
 * struct evict_ops and one line in the registry (sim/evict_registry.c). The
 * prefix cache (sim/pcache.h) owns the blocks; a policy only orders the
 * blocks the cache offers it and names a victim when asked:
 *
 *   - The cache offers a block (on_evictable) exactly when it becomes
 *     evictable: no holder (reference count 0) and no cached child (a leaf).
 *     It withdraws it (on_pinned) when it stops being evictable: a holder
 *     takes it, or a child is inserted under it. A policy therefore never
 *     sees a pinned or inner block in its structures, and evicting leaves
 *     first (the deepest block of a chain before its parents) needs no
 *     policy code at all.
 *   - pick_victim returns an offered block and forgets it; the cache then
 *     removes it, which may offer its parent.
 *   - on_insert and on_access tell the policy about new blocks and hits.
 *     Both happen while the block is held (never while it is offered).
 *
 * Per-block policy data lives in the block (evict_fields: list links or
 * two heap keys, a heap slot, a counter and a tag), so no policy allocates
 * per access. Storage that grows with the number of cached blocks (heap arrays,
 * ghost queues, session records) is sized in reserve(), which the cache
 * calls before it holds more blocks than it did; nothing else allocates.
 *
 * Parameters come from the --policy text `name[:key=value,...]`
 * (`ttl:idle=300s`, `s3fifo:small=0.1`); evict_spec_parse() splits it and
 * checks the keys against the policy's list, and each policy reads its
 * values with evict_param_number() and evict_param_duration(), whose errors
 * name the key and the accepted range. docs/eviction.md describes every
 * policy and shows how to add one. */
#ifndef SIM_EVICT_H
#define SIM_EVICT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "req.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pcache_block pcache_block;

/* Capacity meaning "never full". */
#define EVICT_UNLIMITED INT64_MAX
/* pick_victim's key_in when no insertion follows (pcache_evict_one). */
#define EVICT_NO_KEY 0
/* Parameters a --policy text may carry. */
#define EVICT_MAX_PARAMS 8

/* A policy's fields in every block. The policy owns them from on_insert
 * until the block is evicted; the cache only initializes them (pos = -1,
 * the rest zero) before on_insert. A policy uses either the list links or
 * the heap keys (they share storage). */
typedef struct evict_fields {
    union {
        struct {
            pcache_block *prev, *next; /* links of a policy-owned list */
        };
        struct {
            int64_t k1, k2; /* heap keys: smaller (k1, k2, seq_insert) pops first */
        };
    };
    void *aux;      /* policy pointer (the session record of `session`) */
    int32_t pos;    /* slot in a policy heap, -1 when in none */
    uint32_t count; /* small counter (S3-FIFO's hits, ...) */
    uint8_t queue;  /* which queue or list holds the block (policy-defined) */
} evict_fields;

/* The future, for Belady's policy. Two kinds:
 *
 *   - EVICT_ORACLE_TICKS (evict_oracle_create; kvfleet cache-replay): the
 *     exact access sequence of an offline replay. next_use[i] is the access
 *     ordinal (the cache's tick, see pcache_tick) of the next access to the
 *     key accessed at ordinal i, or INT64_MAX when it is never accessed
 *     again.
 *   - EVICT_ORACLE_TIMES (evict_oracle_times_create; kvfleet run): for every
 *     key, the sorted times at which requests of the trace will use it (a
 *     request's arrival), from a first pass over the run's source. The
 *     simulator's accesses depend on timing the first pass cannot know, so
 *     each policy instance matches its accesses to these uses as it goes
 *     (sim/evict_belady.c, docs/eviction.md).
 *
 * Built by the evict_oracle_*() functions below; read only once finished
 * (several caches may borrow one oracle). */
enum { EVICT_ORACLE_TICKS = 0, EVICT_ORACLE_TIMES = 1 };

typedef struct evict_oracle {
    int kind; /* EVICT_ORACLE_TICKS or EVICT_ORACLE_TIMES */
    /* ticks */
    int64_t *next_use; /* [n], owned by the oracle */
    int64_t n;         /* accesses recorded */
    int64_t cap;       /* slots allocated in next_use */
    void *last;        /* key -> last ordinal while building; NULL once finished */
    /* times */
    int64_t n_keys;    /* distinct keys */
    int64_t n_uses;    /* uses recorded */
    int64_t cap_uses;  /* slots allocated in use_ns (and use_key while building) */
    sim_time *use_ns;  /* [n_uses]: recording order while building; once finished, key i's
                          uses are use_ns[use_off[i] .. use_off[i + 1]), ascending */
    uint32_t *use_key; /* [cap_uses] key index of each use while building; NULL once finished */
    int64_t *use_off;  /* [n_keys + 1] once finished; NULL while building */
    void *ids;         /* key -> key index (kept: policies look keys up) */
} evict_oracle;

/* What a policy is created with. */
typedef struct evict_params {
    char name[32]; /* the policy's name as given */
    int n_kv;      /* pairs in kv */
    struct {
        char key[32];
        char val[64];
    } kv[EVICT_MAX_PARAMS];     /* key=value pairs as given (keys already checked) */
    int64_t capacity_blocks;    /* set by pcache_create: >= 1, or EVICT_UNLIMITED */
    int32_t block_tokens;       /* tokens in a full block, >= 1 (GDSF's cost) */
    const evict_oracle *oracle; /* the future for belady; borrowed; NULL when none */
} evict_params;

/* One policy. Members are called only by the prefix cache. */
struct evict_ops {
    /* (required) The name --policy uses: lower case letters, digits, '_'. */
    const char *name;
    /* (required) One line for listings: the rule and its parameters. */
    const char *help;
    /* (optional: NULL means the policy takes no parameters) NULL-terminated
     * list of the parameter keys the policy accepts. */
    const char *const *param_keys;
    /* (required) Creates the policy's state from *p (borrowed for the call;
     * p->oracle stays borrowed for the policy's life). Returns SIM_OK and an
     * owned *st, SIM_EINVAL with *err naming the parameter, or SIM_ENOMEM. */
    int (*create)(const evict_params *p, void **st, sim_err *err);
    /* (required) Frees the state; NULL is a no-op. Blocks are the cache's. */
    void (*destroy)(void *st);
    /* (optional: NULL means the policy keeps no storage that grows with the
     * cache) Makes room for n_blocks cached blocks. Returns SIM_OK or
     * SIM_ENOMEM (state unchanged). */
    int (*reserve)(void *st, int64_t n_blocks);
    /* (optional: NULL means nothing to record) A new block, held by its
     * inserter; b->ev was zeroed (pos = -1). */
    void (*on_insert)(void *st, pcache_block *b, sim_time now);
    /* (optional: NULL means hits change nothing the policy keeps; the cache
     * has already updated b's access time, tick and count) A hit on a held
     * block. */
    void (*on_access)(void *st, pcache_block *b, sim_time now);
    /* (required) b became evictable: add it to the structures victims come
     * from. */
    void (*on_evictable)(void *st, pcache_block *b, sim_time now);
    /* (required) b stopped being evictable (a holder took it, or it got a
     * child): remove it from those structures. */
    void (*on_pinned)(void *st, pcache_block *b);
    /* (required) The cache is full and must insert key_in (policies with
     * ghost lists adapt on it): return an evictable block, already removed
     * from the policy's structures, or NULL when none is evictable. Called at
     * most once per insertion, and when it returns a block the insertion
     * (on_insert of key_in) follows. key_in is EVICT_NO_KEY when a block is
     * evicted for its storage with no insertion to follow
     * (pcache_evict_one): then nothing may adapt to it. */
    pcache_block *(*pick_victim)(void *st, uint64_t key_in, sim_time now);
    /* (optional: NULL means blocks never expire) An evictable block to drop
     * now although the cache is not full (idle TTL), removed from the
     * policy's structures; NULL when none. The cache calls it repeatedly in
     * pcache_expire() until NULL. */
    pcache_block *(*pick_expired)(void *st, sim_time now);
    /* (optional: NULL means not checked) Validates the state (for tests):
     * returns 0 when it holds exactly n_evictable offered blocks and its
     * structures are sound, or a negative number naming the broken rule. */
    int (*check)(const void *st, int64_t n_evictable);
};

/* ---- the registry ---- */

/* The policy called name, or NULL. */
const struct evict_ops *evict_find(const char *name);
/* Number of registered policies, and the i-th (0-based, registry order). */
size_t evict_count(void);
const struct evict_ops *evict_at(size_t i);
/* Writes "lru, lfu, ..." into buf (always NUL-terminated). */
void evict_names(char *buf, size_t n);

/* ---- parameters ---- */

/* Parses a --policy text "name[:key=value,...]" into *p (zeroed first;
 * capacity EVICT_UNLIMITED, block_tokens 16, no oracle: the caller sets
 * them) and *ops. Unknown names list the known ones; keys are checked
 * against ops->param_keys. Returns SIM_OK or SIM_EINVAL with *err
 * (src "--policy"). */
int evict_spec_parse(const char *spec, const struct evict_ops **ops, evict_params *p, sim_err *err);
/* evict_spec_parse that also takes "none" (no prefix cache, as `run
 * --policy none`): SIM_OK with *ops NULL; "none" with parameters is
 * refused, and an unknown name lists none among the known ones. */
int evict_spec_parse_or_none(const char *spec, const struct evict_ops **ops, evict_params *p,
                             sim_err *err);
/* The value given for key, or NULL. */
const char *evict_param_get(const evict_params *p, const char *key);
/* Reads key as a number in [lo, hi] (def when absent). Returns SIM_OK or
 * SIM_EINVAL with *err naming "policy:key" and the range. */
int evict_param_number(const evict_params *p, const char *key, double def, double lo, double hi,
                       double *out, sim_err *err);
/* Reads key as a duration > 0: a number with a unit ns, us, ms, s, m or h,
 * or plain seconds ("300s", "300ms", "300"). def when absent. Returns
 * SIM_OK or SIM_EINVAL with *err. */
int evict_param_duration(const evict_params *p, const char *key, sim_time def, sim_time *out,
                         sim_err *err);

/* ---- Belady's oracle ---- */

/* Creates an empty oracle; returns owned or NULL (out of memory). */
evict_oracle *evict_oracle_create(void);
/* Records the next access (ordinal o->n) as one to key. Returns SIM_OK or
 * SIM_ENOMEM. */
int evict_oracle_add(evict_oracle *o, uint64_t key);
/* Ends recording and frees the building map (next_use stays). */
void evict_oracle_finish(evict_oracle *o);
/* Frees either kind; NULL is a no-op. */
void evict_oracle_destroy(evict_oracle *o);

/* Creates an empty time oracle (EVICT_ORACLE_TIMES); returns owned or NULL
 * (out of memory). Memory: 12 bytes per use while building, then 8 per use,
 * 8 per distinct key and a key map of 16 to 32 bytes per key. */
evict_oracle *evict_oracle_times_create(void);
/* Records that a request will use key at time t_ns (>= 0; any order).
 * Returns SIM_OK or SIM_ENOMEM (SIM_ENOMEM too past 2^32 - 2 keys). */
int evict_oracle_add_use(evict_oracle *o, uint64_t key, sim_time t_ns);
/* Ends recording: groups the uses by key and sorts each key's times.
 * Returns SIM_OK or SIM_ENOMEM (then the oracle may only be destroyed). */
int evict_oracle_times_finish(evict_oracle *o);
/* The uses of key in a finished time oracle: returns how many (0 for a key
 * never recorded) and points *uses_ns at them, ascending (borrowed from the
 * oracle). */
int64_t evict_oracle_key_uses(const evict_oracle *o, uint64_t key, const sim_time **uses_ns);

#ifdef __cplusplus
}
#endif
#endif /* SIM_EVICT_H */
