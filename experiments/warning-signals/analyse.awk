# analyse.awk: cliff and alarm times of every run of the warning-signals
# sweep, then lead times and false alarms per signal and threshold.
# Input (run.sh writes them with the sqlite3 CLI, all CSV, one file each):
#   base.csv  point,rep,ttft_s        requests arriving before EARLY s, by ttft
#   bins.csv  point,rep,bin,ttft_s    completed requests by arrival bin, ttft
#   tl.csv    point,rep,t_s,busy_frac,batch_mean,kv_util_mean,waiting_mean
# Variables: BIN (s), K (the cliff factor), RAMPS and CONTROLS (the points
# that are ramps and constant-load controls, as "0 1 2"). Writes one line
# per run to RUNS (point,rep,base p99,cliff s), each run's p99 per bin to
# P99 (point,rep,bin start s,p99 s) and the table to stdout.
# Percentile: nearest rank, the ceil(0.99 n)-th smallest value.
BEGIN {
    FS = ","
    nsig = split("busy_frac batch_mean kv_util_mean waiting_mean", sig, " ")
    split("0.5 0.9 0.99 1", thr1, " ")          # busy_frac
    split("32 64 128 192", thr2, " ")           # batch_mean (of 256 slots)
    split("0.1 0.2 0.3 0.5", thr3, " ")         # kv_util_mean
    split("0.5 1 5 20", thr4, " ")              # waiting_mean
    for (j = 1; j <= 4; j++) {
        th[1, j] = thr1[j]; th[2, j] = thr2[j]; th[3, j] = thr3[j]; th[4, j] = thr4[j]
    }
}
function flush_base() {
    if (bn > 0) base[bkey] = bv[int(0.99 * bn + 0.999999)]
    bn = 0
}
function flush_bin() {
    if (cn > 0)
        printf "%s,%d,%.6g\n", ckey, cbin * BIN, cv[int(0.99 * cn + 0.999999)] >P99
    if (cn > 0 && !(ckey in cliff) && ckey in base &&
        cv[int(0.99 * cn + 0.999999)] > K * base[ckey])
        cliff[ckey] = cbin * BIN
    cn = 0
}
FILENAME ~ /base.csv$/ {
    key = $1 "," $2
    if (key != bkey) { flush_base(); bkey = key; runs[key] = 1 }
    bv[++bn] = $3
    next
}
FILENAME ~ /bins.csv$/ {
    if (!basedone) { flush_base(); basedone = 1 }
    key = $1 "," $2
    if (key != ckey || $3 != cbin) { flush_bin(); ckey = key; cbin = $3 }
    cv[++cn] = $4
    next
}
FILENAME ~ /tl.csv$/ {
    if (!bindone) { flush_bin(); bindone = 1 }
    key = $1 "," $2
    n = ++ntl[key]
    tt[key, n] = $3
    for (s = 1; s <= nsig; s++) {
        val[key, n, s] = $(3 + s) + 0
        if (index(" " CONTROLS " ", " " $1 " ") > 0 && (!(s in ctlmax) || $(3 + s) + 0 > ctlmax[s]))
            ctlmax[s] = $(3 + s) + 0
    }
    for (s = 1; s <= nsig; s++)
        for (j = 1; j <= 4; j++)
            if (!((key, s, j) in alarm) && $(3 + s) + 0 >= th[s, j])
                alarm[key, s, j] = $3 + BIN   # known at the end of its interval
    next
}
END {
    # a fifth threshold per signal: just above the largest value any control
    # interval reached, the lowest threshold with no false alarm here
    for (s = 1; s <= nsig; s++) {
        th[s, 5] = ctlmax[s] * 1.000001 + 1e-9
        for (key in ntl)
            for (n = 1; n <= ntl[key]; n++)
                if (val[key, n, s] >= th[s, 5]) { alarm[key, s, 5] = tt[key, n] + BIN; break }
    }
    nrp = split(RAMPS, rp, " ")
    ncp = split(CONTROLS, cp, " ")
    for (key in runs) {
        split(key, kr, ",")
        printf "%s,%s,%.6g,%s\n", kr[1], kr[2], base[key],
            (key in cliff) ? cliff[key] : "" >RUNS
    }
    printf "signal,threshold,cliffs,alarmed,warned_before,lead_mean_s,lead_min_s,lead_max_s"
    for (i = 1; i <= nrp; i++) printf ",lead_mean_p%s_s", rp[i]
    for (i = 1; i <= ncp; i++) printf ",alarms_p%s", cp[i]
    printf ",false_alarm_share\n"
    for (s = 1; s <= nsig; s++)
        for (j = 1; j <= 5; j++) {
            nc = na = nw = nctl = nfa = 0; sum = 0; mn = 1e18; mx = -1e18
            for (i = 1; i <= nrp; i++) { psum[rp[i]] = 0; pn[rp[i]] = 0 }
            for (i = 1; i <= ncp; i++) pfa[cp[i]] = 0
            for (key in runs) {
                split(key, kr, ",")
                if (index(" " RAMPS " ", " " kr[1] " ") > 0) {
                    if (!(key in cliff)) continue
                    nc++
                    if (!((key, s, j) in alarm)) continue
                    na++
                    lead = cliff[key] - alarm[key, s, j]
                    if (lead > 0) nw++
                    sum += lead; if (lead < mn) mn = lead; if (lead > mx) mx = lead
                    psum[kr[1]] += lead; pn[kr[1]]++
                } else if (index(" " CONTROLS " ", " " kr[1] " ") > 0) {
                    nctl++
                    if ((key, s, j) in alarm) { nfa++; pfa[kr[1]]++ }
                }
            }
            printf "%s,%s,%d,%d,%d,%s,%s,%s", sig[s], j < 5 ? th[s, j] : sprintf("%.4g (controls' max)", ctlmax[s]), nc, na, nw,
                na ? sprintf("%.0f", sum / na) : "", na ? mn : "", na ? mx : ""
            for (i = 1; i <= nrp; i++)
                printf ",%s", pn[rp[i]] ? sprintf("%.0f", psum[rp[i]] / pn[rp[i]]) : ""
            for (i = 1; i <= ncp; i++) printf ",%d", pfa[cp[i]]
            printf ",%s\n", nctl ? sprintf("%.2f", nfa / nctl) : ""
        }
}
