"""The demo once per seed, and every number with its spread (``--seeds`` of the demo
driver, tools/run_synthetic_pipeline.py).

    python tools/run_synthetic_pipeline.py --seeds 0 1 2 [--ablations] [other options]
    bash tools/run_demo.sh --seeds 0 1 2

runs ``tools/run_synthetic_pipeline.py --seed S --work-dir WORK/seed_S [other options]``
for each seed S (the benchmark's and the training's seed; each seed its own work dir,
so a re-run skips the finished steps of each), then writes

- ``WORK/results/seeds.md`` and ``seeds.json``: per row of the demo's table and per
  metric the mean, the standard deviation (sample, n - 1) and each seed's value; the
  json also holds each seed's linear-probe C and val accuracies;
- with ``--ablations``: ``WORK/results/seeds_ablations.md`` / ``.json``, the same for
  the ablation table.

Only the driver's output files are read (``results/table.json``, ``ablations.json``,
``classifier/linear_probe.json`` of each seed's work dir), so the driver's steps stay
its own.
"""
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
from typing import Dict, List, Sequence

#: options of the driver that --seeds sets per seed (removed from the passed-on argv)
PER_SEED_OPTIONS = ('--seeds', '--seed', '--work-dir')


def passed_on_argv(argv: Sequence[str]) -> List[str]:
    """``argv`` of the driver without ``--seeds S...``, ``--seed S`` and
    ``--work-dir DIR`` (both ``--opt value`` and ``--opt=value`` forms)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            if not arg.startswith('-') or _is_number(arg):
                continue  # a value of the option being removed
            skip = False
        name = arg.split('=', 1)[0]
        if name in PER_SEED_OPTIONS:
            skip = '=' not in arg
            continue
        out.append(arg)
    return out


def _is_number(text: str) -> bool:
    try:
        int(text)
        return True
    except ValueError:
        return False


def spread(values: Sequence[float]) -> Dict:
    """dict(mean, std (sample, n - 1; 0.0 for one value), n)."""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return dict(mean=mean, std=std, n=len(values))


def aggregate(per_seed: Dict[int, Dict[str, Dict[str, float]]]) -> Dict:
    """``{seed: {row: {metric: value}}}`` -> ``{row: {metric: dict(mean, std, n,
    values={seed: value})}}``, rows and metrics in the first seed's order. A row or
    metric missing from a seed, or a non-number, is an error naming it."""
    seeds = list(per_seed)
    first = per_seed[seeds[0]]
    out = {}
    for row, metrics in first.items():
        out[row] = {}
        for metric in metrics:
            values = {}
            for s in seeds:
                v = per_seed[s].get(row, {}).get(metric)
                if not isinstance(v, (int, float)) or isinstance(v, bool):
                    raise ValueError(f'seed {s}: row {row!r}, metric {metric!r} is {v!r}, '
                                     'not a number')
                values[s] = float(v)
            out[row][metric] = dict(spread(list(values.values())), values=values)
    return out


def markdown(agg: Dict, seeds: Sequence[int], title: str) -> str:
    """A table of mean ± std per row and metric, then one table per seed."""
    metrics = list(next(iter(agg.values())))
    lines = [f'{title}: mean ± std (sample std, n - 1) over seeds '
             + ', '.join(map(str, seeds)), '',
             '| row | ' + ' | '.join(metrics) + ' |', '|' + '---|' * (len(metrics) + 1)]
    for row, cells in agg.items():
        lines.append(f'| {row} | ' + ' | '.join(
            f"{c['mean']:.2f} ± {c['std']:.2f}" for c in cells.values()) + ' |')
    for s in seeds:
        lines += ['', f'seed {s}:', '', '| row | ' + ' | '.join(metrics) + ' |',
                  '|' + '---|' * (len(metrics) + 1)]
        for row, cells in agg.items():
            lines.append(f'| {row} | ' + ' | '.join(
                f"{c['values'][s]:.2f}" for c in cells.values()) + ' |')
    return '\n'.join(lines) + '\n'


def _ablation_rows(table: list) -> Dict[str, Dict[str, float]]:
    """ablations.json (a list of rows) -> {'row [map]': {metric: value}}: the row name
    alone is not unique (the full model is scored with two maps)."""
    skip = ('row', 'map', 'paper')
    return {f"{r['row']} [{r['map']}]": {k: v for k, v in r.items() if k not in skip}
            for r in table}


def _load(path: str):
    if not osp.isfile(path):
        raise SystemExit(f'--seeds: {path} is missing: did the run of that seed finish?')
    with open(path) as f:
        return json.load(f)


def collect(work_dir: str, seeds: Sequence[int], ablations: bool) -> Dict[str, str]:
    """Read each seed's tables under ``work_dir/seed_S`` and write the seeds tables into
    ``work_dir/results``; returns {stem: markdown text}."""
    res = osp.join(work_dir, 'results')
    os.makedirs(res, exist_ok=True)
    seed_dirs = {s: osp.join(work_dir, f'seed_{s}') for s in seeds}
    tables = {'seeds': {s: _load(osp.join(d, 'results', 'table.json'))
                        for s, d in seed_dirs.items()}}
    if ablations:
        tables['seeds_ablations'] = {
            s: _ablation_rows(_load(osp.join(d, 'results', 'ablations.json')))
            for s, d in seed_dirs.items()}
    probe = {}
    for s, d in seed_dirs.items():
        report = _load(osp.join(d, 'classifier', 'linear_probe.json'))
        probe[s] = {k: report.get(k) for k in ('C', 'C_source', 'val_acc', 'val_acc_per_C')}
    texts = {}
    for stem, per_seed in tables.items():
        agg = aggregate(per_seed)
        title = 'the demo\'s table' if stem == 'seeds' else 'the ablation table'
        text = markdown(agg, seeds, title)
        if stem == 'seeds':
            text += '\nlinear probe per seed: ' + '; '.join(
                f"seed {s}: C = {p['C']} ({p['C_source']}), val Top-1 {p['val_acc']:.2f}"
                for s, p in probe.items()) + '\n'
        with open(osp.join(res, f'{stem}.md'), 'w') as f:
            f.write(text)
        payload = dict(seeds=list(seeds), std='sample (n - 1)', rows=agg,
                       work_dirs={s: seed_dirs[s] for s in seeds})
        if stem == 'seeds':
            payload['linear_probe'] = probe
        with open(osp.join(res, f'{stem}.json'), 'w') as f:
            json.dump(payload, f, indent=2)
        texts[stem] = text
    return texts


def run_seeds(args, argv: Sequence[str], driver: str) -> int:
    """Run ``driver`` (the demo driver script's path) once per seed of ``args.seeds``
    (``argv``: the driver's own
    command line), then :func:`collect`. Returns 0; a failed seed ends the run with its
    exit code and the command."""
    seeds = list(dict.fromkeys(args.seeds))  # once each, in the order given
    rest = passed_on_argv(argv)
    for s in seeds:
        cmd = [sys.executable, driver, *rest, '--seed', str(s),
               '--work-dir', osp.join(args.work_dir, f'seed_{s}')]
        print(f'\n##### seed {s}: ' + ' '.join(cmd), flush=True)
        code = subprocess.run(cmd).returncode
        if code != 0:
            raise SystemExit(f'--seeds: the run of seed {s} failed (exit code {code}): '
                             + ' '.join(cmd))
    texts = collect(args.work_dir, seeds, args.ablations)
    for text in texts.values():
        print('\n' + text)
    res = osp.join(args.work_dir, 'results')
    print(f'results: {res}/' + ', '.join(f'{t}.md, {t}.json' for t in texts))
    return 0
