#!/usr/bin/env python3
"""Summarize RESULT lines written by benches/run.sh.

usage: summarize.py FILE [FILE...]

Counts lines with rep>=1 and ok=1 (rep=0 is the untimed check run). Prints markdown
tables: medians per tool and N, the ratios nslab/other (build and teardown; below 1 means
nslab is faster), and the issue's targets with the figures reached.
"""
import re
import statistics as st
import sys
from collections import defaultdict

KV = re.compile(r'(\w+)=(\S+)')


def med(xs):
    return st.median(xs) if xs else float('nan')


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
    f = m.get(('floor', 1000))
    a = m.get(('nslab', 1000))
    if a or f:
        print('\nTargets (issue 15):\n')
    if a and f:
        r = a['build_ms'] / f['build_ms']
        line('lab(1000) build nslab / C floor', f'{r:.2f}', '<= 1.2', r <= 1.2)
    if a and ('nslab', 100) in m:
        p100 = m[('nslab', 100)]['build_ms'] / 100
        p1000 = a['build_ms'] / 1000
        line('nslab build ms/host N=1000 vs N=100', f'{p1000:.2f} / {p100:.2f} = {p1000 / p100:.2f}',
             '<= 1.5', p1000 / p100 <= 1.5)
        if f and ('floor', 100) in m:
            q = (f['build_ms'] / 1000) / (m[('floor', 100)]['build_ms'] / 100)
            print(f'  the C floor in the same run: {q:.2f} (the kernel\'s own growth; see benches/README.md)')
    if ('nslab', 200) in m and ('floor', 200) in m:
        r = m[('nslab', 200)]['build_ms'] / m[('floor', 200)]['build_ms']
        line('lab(200) build nslab / C floor', f'{r:.2f}', '<= 1.15', r <= 1.15)
    for n in ns:
        if ('nslab', n) in m and ('floor', n) in m:
            a_, f_ = m[('nslab', n)], m[('floor', n)]
            r = a_['teardown_ms'] / f_['teardown_ms']
            line(f'lab({n}) teardown nslab / C floor', f'{r:.2f}', '<= 1.0', r <= 1.0)
            # The floor returns before the kernel has deleted the host-side veth ends; nslab
            # waits for them. Until the lab's links are gone, both:
            g = (a_['teardown_ms'] + a_['settle_ms']) / (f_['teardown_ms'] + f_['settle_ms'])
            line(f'lab({n}) teardown + settle nslab / C floor', f'{g:.2f}', '<= 1.0', g <= 1.0)
    for k, v in bad.items():
        if v:
            print(f'WARNING: {v} failed run(s) for {k[0]} N={k[1]}', file=sys.stderr)


if __name__ == '__main__':
    main()
