#!/usr/bin/env python3
"""Builds the H100 SXM profile subsets that `kvfleet calibrate` fits on.

Usage: python3 subset.py SRC DST
  SRC: the public profiles folder (data/profiles of the kvfleet data drop,
       holding aiconfigurator/ and vidur/)
  DST: this folder (data/profiles/h100-sxm)

Rows are kept only where they can matter for the model presets in
../../models (tiny excluded) at tensor-parallel degrees 1, 2, 4 and 8:
  gemm.csv                  AIConfigurator vLLM 0.24.0 gemm_perf, bfloat16 and fp8
                            (per-tensor) rows whose (n, k) brackets a preset's
                            qkv_proj, o_proj, mlp_up, mlp_down or lm_head shape
                            (the grid values just below and just above each of n, k)
  context_attention.csv     context_attention_perf, head_dim 128, window 0, bf16 KV,
                            (num_heads, num_key_value_heads) of a preset at some TP
  generation_attention.csv  generation_attention_perf, same filter
  allreduce.csv             custom_allreduce_perf, CUDA-graph rows (vllm_graph)
  vidur_layer_ops.csv       Vidur compute/h100 mlp.csv of the four Llama-style models
                            (not phi-2), columns of the ops kvfleet fits
  cpu_overheads_a100.csv    Vidur cpu_overheads/a100, median columns
Latencies stay in milliseconds, values are copied verbatim (no rounding).
Rows are sorted so that the size (m, isl, step, num_tokens) varies fastest
within a shape: `kvfleet calibrate` holds out every K-th row in file order,
which then samples every shape at a spread of sizes (in the upstream order
every K-th row of a 5-shape group would be one and the same shape).
Only the Python standard library is used.
"""
import csv
import json
import os
import sys

TPS = (1, 2, 4, 8)


def presets(models_dir):
    out = []
    for f in sorted(os.listdir(models_dir)):
        if not f.endswith('.json') or f == 'tiny.json':
            continue
        c = json.load(open(os.path.join(models_dir, f)))
        h = c['hidden_size']
        nh = c['num_attention_heads']
        out.append(dict(name=f[:-5], h=h, nh=nh, kvh=c.get('num_key_value_heads', nh),
                        hd=c.get('head_dim', h // nh), inter=c['intermediate_size'],
                        vocab=c['vocab_size']))
    return out


def gemm_shapes(m, t):
    q = m['nh'] * m['hd'] // t
    kv = (m['kvh'] // t if m['kvh'] >= t else 1) * m['hd']
    i = m['inter'] // t
    return [(q + 2 * kv, m['h']), (m['h'], q), (2 * i, m['h']), (m['h'], i),
            (-(-m['vocab'] // t), m['h'])]


def bracket(v, grid):
    lo = [g for g in grid if g <= v]
    hi = [g for g in grid if g >= v]
    return {x for x in (lo[-1] if lo else None, hi[0] if hi else None) if x is not None}


def write(path, header, rows):
    with open(path, 'w', newline='') as f:
        w = csv.writer(f, lineterminator='\n')
        w.writerow(header)
        w.writerows(rows)
    print('%s: %d rows, %d bytes' % (path, len(rows), os.path.getsize(path)))


def main():
    src, dst = sys.argv[1], sys.argv[2]
    models = presets(os.path.join(dst, '..', '..', 'models'))
    heads = {(m['nh'] // t, m['kvh'] // t if m['kvh'] >= t else 1)
             for m in models for t in TPS if m['nh'] % t == 0}
    aic = os.path.join(src, 'aiconfigurator', 'h100_sxm', 'vllm-0.24.0')

    g = list(csv.DictReader(open(os.path.join(aic, 'gemm_perf.csv'))))
    grid_n = sorted({int(r['n']) for r in g})
    grid_k = sorted({int(r['k']) for r in g})
    want = set()
    for m in models:
        for t in TPS:
            if m['nh'] % t:
                continue
            for n, k in gemm_shapes(m, t):
                want |= {(a, b) for a in bracket(n, grid_n) for b in bracket(k, grid_k)}
    cols = ['gemm_dtype', 'm', 'n', 'k', 'latency']
    keep = [r for r in g if r['gemm_dtype'] in ('bfloat16', 'fp8')
            and (int(r['n']), int(r['k'])) in want]
    keep.sort(key=lambda r: (r['gemm_dtype'], int(r['n']), int(r['k']), int(r['m'])))
    write(os.path.join(dst, 'gemm.csv'), cols, [[r[c] for c in cols] for r in keep])

    for name, extra in (('context_attention', ['isl']), ('generation_attention', ['step'])):
        rows = csv.DictReader(open(os.path.join(aic, name + '_perf.csv')))
        cols = ['batch_size'] + extra + ['num_heads', 'num_key_value_heads', 'head_dim',
                                         'kv_cache_dtype', 'latency']
        keep = [r for r in rows if r['head_dim'] == '128' and r['window_size'] == '0'
                and r['kv_cache_dtype'] == 'bfloat16'
                and (int(r['num_heads']), int(r['num_key_value_heads'])) in heads]
        keep.sort(key=lambda r: tuple(int(r[c]) for c in
                                      ['num_heads', 'num_key_value_heads', 'batch_size'] + extra))
        write(os.path.join(dst, name + '.csv'), cols, [[r[c] for c in cols] for r in keep])

    rows = csv.DictReader(open(os.path.join(aic, 'custom_allreduce_perf.csv')))
    cols = ['num_gpus', 'message_size', 'latency']
    write(os.path.join(dst, 'allreduce.csv'), cols,
          [[r[c] for c in cols] for r in rows if r['backend'] == 'vllm_graph'])

    ops = ['emb', 'input_layernorm', 'post_attention_layernorm', 'attn_rope', 'mlp_act']
    cfg = ['n_head', 'n_kv_head', 'n_embd', 'n_expanded_embd', 'vocab_size', 'num_tokens',
           'num_tensor_parallel_workers']
    out = []
    for model in ('meta-llama/Llama-2-7b-hf', 'meta-llama/Llama-2-70b-hf',
                  'codellama/CodeLlama-34b-Instruct-hf', 'internlm/internlm-20b'):
        p = os.path.join(src, 'vidur', 'compute', 'h100', model, 'mlp.csv')
        rows = list(csv.DictReader(open(p)))
        rows.sort(key=lambda r: (int(r['num_tensor_parallel_workers']), int(r['num_tokens'])))
        for r in rows:
            out.append([model] + [r[c] for c in cfg] + [r['time_stats.%s.median' % o] for o in ops])
    write(os.path.join(dst, 'vidur_layer_ops.csv'),
          ['model'] + cfg + ['time_stats.%s.median' % o for o in ops], out)

    rows = csv.DictReader(open(os.path.join(src, 'vidur', 'cpu_overheads', 'a100',
                                            'cpu_overheads.csv')))
    cols = ['model_name', 'batch_size', 'tensor_parallel_degree', 'schedule_median',
            'sampler_e2e_median', 'prepare_inputs_e2e_median', 'process_model_outputs_median']
    write(os.path.join(dst, 'cpu_overheads_a100.csv'), cols, [[r[c] for c in cols] for r in rows])


if __name__ == '__main__':
    main()
