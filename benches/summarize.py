#!/usr/bin/env python3
"""Summarize RESULT lines written by benches/run.sh.

usage: summarize.py FILE [FILE...]

Counts lines with rep>=1 and ok=1 (rep=0 is the untimed check run). Prints markdown
tables: medians per tool and N, the ratios nslab/other (build and teardown; below 1 means
nslab is faster), and the issue's targets with the figures reached.

Each target ratio comes with a 90% bootstrap interval (the reps of each tool and N resampled
with replacement, 2000 times, with a fixed seed so a file always summarizes the same). A
target is MET when the whole interval meets it, MISSED when none of it does, and WITHIN NOISE
otherwise: on these shared 2-vCPU machines the same binaries gave teardown ratios of 0.74 and
1.34 an hour apart, so one median against a bound of 1.0 decides nothing on its own.
"""
import random
import re
import statistics as st
import sys
from collections import defaultdict

KV = re.compile(r'(\w+)=(\S+)')


def med(xs):
    return st.median(xs) if xs else float('nan')


RESAMPLES = 2000


def interval(stat, *samples):
    """90% bootstrap interval of `stat(*medians)` over independent resamples of `samples`."""
    rng = random.Random(15)
    vals = []
    for _ in range(RESAMPLES):
        meds = [st.median(rng.choices(xs, k=len(xs))) for xs in samples]
        vals.append(stat(*meds))
    vals.sort()
    return vals[int(0.05 * RESAMPLES)], vals[int(0.95 * RESAMPLES) - 1]


def verdict(lo, hi, meets):
    """MET when the whole interval meets the goal, MISSED when none of it does (the goals
    here are bounds, so the interval's ends decide)."""
    if meets(lo) and meets(hi):
        return 'MET'
    if not meets(lo) and not meets(hi):
        return 'MISSED'
    return 'WITHIN NOISE'


def main():
    res = defaultdict(lambda: defaultdict(list))
    bad = defaultdict(int)
    order = []
    empty = None
    for fn in sys.argv[1:]:
        for line in open(fn):
            if line.startswith('EMPTY'):
                empty = dict(KV.findall(line))
            if not line.startswith('RESULT'):
                continue
            d = dict(KV.findall(line))
            key = (d['tool'], int(d['n']))
            if d['tool'] not in order:
                order.append(d['tool'])
            if int(d.get('rep', 1)) < 1:
                if d.get('ok') != '1':
                    bad[key] += 1
                continue
            if d.get('ok') != '1':
                bad[key] += 1
                continue
            for f in ('build_ms', 'teardown_ms', 'settle_ms', 'build_cpu_ms'):
                res[key][f].append(float(d[f]))
    ns = sorted({k[1] for k in res})
    m = {k: {f: med(v) for f, v in r.items()} for k, r in res.items()}

    print('Medians, ms (wall time of the tool\'s command, process start-up included):\n')
    print('| tool | ' + ' | '.join(f'N={n} build / teardown' for n in ns) + ' | build ms/host at N=max |')
    print('|---|' + '---:|' * (len(ns) + 1))
    for t in order:
        cells = []
        for n in ns:
            r = m.get((t, n))
            cells.append(f"{r['build_ms']:.0f} / {r['teardown_ms']:.0f}" if r else '-')
        last = next((n for n in reversed(ns) if (t, n) in m), None)
        per = f"{m[(t, last)]['build_ms'] / last:.2f}" if last else '-'
        print(f'| {t} | ' + ' | '.join(cells) + f' | {per} |')

    print('\nDetail (median and min..max over the timed runs):\n')
    print('| tool | N | runs | build ms | teardown ms | settle ms | build CPU ms |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    for t in order:
        for n in ns:
            r = res.get((t, n))
            if not r:
                continue
            f = lambda xs: f'{med(xs):.0f} ({min(xs):.0f}..{max(xs):.0f})'
            b = f' (+{bad[(t, n)]} failed)' if bad[(t, n)] else ''
            print(f"| {t} | {n} | {len(r['build_ms'])}{b} | {f(r['build_ms'])} | {f(r['teardown_ms'])} "
                  f"| {med(r['settle_ms']):.0f} | {med(r['build_cpu_ms']):.0f} |")

    mine = [t for t in order if t.startswith('nslab')]
    others = [t for t in order if not t.startswith('nslab')]

    def ratios(title, cell):
        """One row per pair nslab tool / other tool; `cell(a, b)` the text, or None."""
        if not (mine and others):
            return
        print(f'\n{title}:\n')
        print('| ratio | ' + ' | '.join(f'N={n}' for n in ns) + ' |')
        print('|---|' + '---:|' * len(ns))
        for a in mine:
            for b in others:
                cells = [cell(m[(a, n)], m[(b, n)]) if (a, n) in m and (b, n) in m else None
                         for n in ns]
                print(f'| {a} / {b} | ' + ' | '.join(c or '-' for c in cells) + ' |')

    ratios('Ratios nslab/other, build and teardown (< 1: nslab is faster)',
           lambda x, y: f"{x['build_ms'] / y['build_ms']:.2f} / "
                        f"{x['teardown_ms'] / y['teardown_ms']:.2f}")
    # CPU is steadier than wall time on a shared machine (other work takes turns).
    ratios('Build CPU ratios nslab/other (user+sys of the tool, 10 ms ticks)',
           lambda x, y: f"{x['build_cpu_ms'] / y['build_cpu_ms']:.2f}"
           if y['build_cpu_ms'] > 0 else None)

    def line(what, value, goal, ok):
        print(f"- {what}: {value} (target {goal}) {'MET' if ok else 'MISSED'}")

    print('\nTargets (issue 6):\n')
    if empty and 'median_ms' in empty:
        e = float(empty['median_ms'])
        line('`nslab run` of an empty recipe', f"{e:.1f} ms (median of {empty['runs']}, "
             f"{empty['min_ms']}..{empty['max_ms']})", '< 15 ms', e < 15)
    a = m.get(('nslab', 200))
    b = m.get(('batch', 200))
    if a and b:
        r = a['build_ms'] / b['build_ms']
        line('lab(200) build nslab / ip -batch', f'{r:.2f}', '<= 0.62', r <= 0.62)
        r = a['teardown_ms'] / b['teardown_ms']
        line('lab(200) teardown nslab / ip -batch', f"{r:.2f}, nslab settle {a['settle_ms']:.0f} ms",
             '<= 1.0, settle 0', r <= 1.0 and a['settle_ms'] < 1)
        ga, gb = a['teardown_ms'] + a['settle_ms'], b['teardown_ms'] + b['settle_ms']
        print(f"  until the lab's links are gone (teardown + settle): nslab {ga:.0f} ms, "
              f"ip -batch {gb:.0f} ms, ratio {ga / gb:.2f}")
    for t in ('ip', 'ip-move'):
        if a and (t, 200) in m:
            r = m[(t, 200)]['build_ms'] / a['build_ms']
            line(f'lab(200) build {t} / nslab', f'{r:.1f}x', '>= 10x', r >= 10)
    if a and ('floor', 200) in m:
        r = a['build_ms'] / m[('floor', 200)]['build_ms']
        line('lab(200) build nslab / C floor', f'{r:.2f}', '<= 1.5 (on the way)', r <= 1.5)
    if ('nslab', 50) in m and ('nslab', 500) in m:
        p50 = m[('nslab', 50)]['build_ms'] / 50
        p500 = m[('nslab', 500)]['build_ms'] / 500
        line('nslab build ms/host N=500 vs N=50', f'{p500:.2f} / {p50:.2f} = {p500 / p50:.2f}',
             '<= 1.3', p500 / p50 <= 1.3)
    def vals(t, n, f):
        r = res.get((t, n))
        if not r:
            return None
        if f == 'gone_ms':
            # Until the lab's links are gone: the floor returns before the kernel has deleted
            # the host-side veth ends, nslab waits for them.
            return [a + b for a, b in zip(r['teardown_ms'], r['settle_ms'])]
        return r[f]

    def ratio(what, goal, bound, stat, *samples):
        """A target on `stat` of the samples' medians, with its interval."""
        if any(x is None for x in samples):
            return None
        est = stat(*(med(x) for x in samples))
        lo, hi = interval(stat, *samples)
        v = verdict(lo, hi, lambda x: x <= bound)
        print(f'- {what}: {est:.2f} (90% interval {lo:.2f}..{hi:.2f}) (target {goal}) {v}')
        return est

    per_host = lambda big, small, nb, ns_: (big / nb) / (small / ns_)
    if ('nslab', 1000) in res or ('floor', 1000) in res:
        print('\nTargets (issue 15):\n')
    ratio('lab(1000) build nslab / C floor', '<= 1.2', 1.2, lambda a, b: a / b,
          vals('nslab', 1000, 'build_ms'), vals('floor', 1000, 'build_ms'))
    g = ratio('nslab build ms/host N=1000 vs N=100', '<= 1.5', 1.5,
              lambda a, b: per_host(a, b, 1000, 100),
              vals('nslab', 1000, 'build_ms'), vals('nslab', 100, 'build_ms'))
    if g is not None and ('floor', 1000) in res and ('floor', 100) in res:
        fl = [vals('floor', n, 'build_ms') for n in (1000, 100)]
        q = per_host(med(fl[0]), med(fl[1]), 1000, 100)
        lo, hi = interval(lambda a, b: per_host(a, b, 1000, 100), *fl)
        print(f'  the C floor in the same run: {q:.2f} (90% interval {lo:.2f}..{hi:.2f}; the '
              "kernel's own growth, see benches/README.md)")
        samples = [vals('nslab', 1000, 'build_ms'), vals('nslab', 100, 'build_ms')] + fl
        stat = lambda a, b, c, d: per_host(a, b, 1000, 100) / per_host(c, d, 1000, 100)
        lo, hi = interval(stat, *samples)
        print(f'  nslab\'s growth / the floor\'s: {stat(*(med(x) for x in samples)):.2f} '
              f'(90% interval {lo:.2f}..{hi:.2f})')
    ratio('lab(200) build nslab / C floor', '<= 1.15', 1.15, lambda a, b: a / b,
          vals('nslab', 200, 'build_ms'), vals('floor', 200, 'build_ms'))
    for n in ns:
        ratio(f'lab({n}) teardown nslab / C floor', '<= 1.0', 1.0, lambda a, b: a / b,
              vals('nslab', n, 'teardown_ms'), vals('floor', n, 'teardown_ms'))
        ratio(f'lab({n}) teardown + settle nslab / C floor', '<= 1.0', 1.0, lambda a, b: a / b,
              vals('nslab', n, 'gone_ms'), vals('floor', n, 'gone_ms'))
    for k, v in bad.items():
        if v:
            print(f'WARNING: {v} failed run(s) for {k[0]} N={k[1]}', file=sys.stderr)


if __name__ == '__main__':
    main()
