/* vidur.c: Vidur's processed request traces (microsoft/vidur, MLSys'24), such
 * as splitwise_conv.csv and splitwise_code.csv.
 *
 * Header arrived_at,num_prefill_tokens,num_decode_tokens, found by name;
 * extra columns (num_total_tokens, pd_ratio, ...) are allowed and ignored.
 * arrived_at is seconds (finite, >= 0, non-decreasing); plain decimals
 * convert to ns exactly. The length-only files Vidur also ships (the arxiv
 * summarization stats: num_prefill_tokens,num_decode_tokens,num_total_tokens,
 * pd_ratio) have no arrival times and are refused with a message that says
 * so. The row engine lives in csv.c. */
#include "config.h"
#include "trace_int.h"

static int vidur_time(void *ctx, const trace__lines *l, int col, const char *field, const char *s,
                      int64_t *out_ns, sim_err *err) {
    (void)ctx;
    return trace__parse_seconds(l, col, field, s, out_ns, err);
}

static const trace__reqcsv_desc vidur_desc = {
    .fmt_name = "vidur",
    .time_col = "arrived_at",
    .prompt_col = "num_prefill_tokens",
    .output_col = "num_decode_tokens",
    .parse_time = vidur_time,
    .ctx_size = 0,
};

int trace__vidur_open(trace__lines *l, trace__impl *out, sim_err *err) {
    int rc = trace__lines_next(l, err);
    if (rc < 0)
        goto err;
    if (rc == 1) {
        if (!trace__csv_line_has(l->buf, "arrived_at") &&
            trace__csv_line_has(l->buf, "num_prefill_tokens")) {
            sim_err_set(err, l->path, l->line_no, 0,
                        "header: expected an 'arrived_at' column (vidur: "
                        "'arrived_at,num_prefill_tokens,num_decode_tokens'), got '%.80s' "
                        "(a length-only file has no arrival times to replay)",
                        l->buf);
            rc = SIM_EPARSE;
            goto err;
        }
        trace__lines_unread(l);
    }
    return trace__reqcsv_open(l, &vidur_desc, out, err);

err:
    trace__lines_close(l);
    return rc;
}
