"""Start-up time of the package and of every tool's ``--help`` (goal: under 1.5 s each).

    python benchmarks/startup_time.py [--repeat 7] [--python PATH] [--repo DIR]
                                      [--only test.py infer.py ...]

Every Python script under ``tools/`` is timed with ``--help`` (the tools import torch
and OpenMMLab after parsing their arguments); the last column says whether its median
is under the goal. The table ends with the slowest tool.

Each command runs in a fresh interpreter, ``--repeat`` times after one warm-up run;
the median and the range of the wall times are printed, with the machine's load
average (timings on a loaded machine are not comparable). ``--repo`` times another
checkout of tedloc_mm (e.g. an older commit, ``git worktree add``) with the same
interpreter, the checkout first on ``PYTHONPATH``; ``--python`` another interpreter: a
before / after comparison on one machine.
"""
import argparse
import glob
import os
import os.path as osp
import statistics
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: seconds: what a tool's --help should stay under on a 2-core machine
GOAL_S = 1.5
IMPORTS = (
    ('import numpy, cv2, numba (floor)', ['-c', 'import numpy, cv2, numba']),
    ('import tedloc_mm', ['-c', 'import tedloc_mm']),
    ('import tedloc_mm.evaluation', ['-c', 'import tedloc_mm.evaluation']),
)


def tool_commands(repo: str = REPO):
    """(name, argv) of ``<tool> --help`` for every script under ``repo/tools/``."""
    tools = sorted(glob.glob(osp.join(repo, 'tools', '*.py'))
                   + glob.glob(osp.join(repo, 'tools', '*', '*.py')))
    return [(f'{osp.relpath(t, repo)} --help', [osp.relpath(t, repo), '--help'])
            for t in tools]


def time_command(python: str, args, repeat: int, repo: str = REPO):
    env = dict(os.environ, PYTHONPATH=repo)
    times = []
    for i in range(repeat + 1):
        start = time.perf_counter()
        subprocess.run([python, *args], cwd=repo, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if i:  # the first run warms the page cache and bytecode caches
            times.append(time.perf_counter() - start)
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--repeat', type=int, default=7)
    p.add_argument('--python', default=sys.executable)
    p.add_argument('--repo', default=REPO, help='the checkout of tedloc_mm to time')
    p.add_argument('--only', nargs='+', default=None,
                   help='time only the tools whose path ends with one of these names')
    args = p.parse_args()
    where = subprocess.run([args.python, '-c', 'import tedloc_mm; print(tedloc_mm.__file__)'],
                           cwd=args.repo, env=dict(os.environ, PYTHONPATH=args.repo),
                           capture_output=True, text=True).stdout.strip()
    print(f'python: {args.python}; tedloc_mm: {where}; '
          f'load average before: {os.getloadavg()[0]:.2f}')
    tools = tool_commands(args.repo)
    if args.only:
        tools = [(n, c) for n, c in tools if c[0].endswith(tuple(args.only))]
    print(f'| command | median s | min - max s | under {GOAL_S} s |\n|---|---|---|---|')
    medians = {}
    for name, cmd in (IMPORTS if not args.only else ()) + tuple(tools):
        t = time_command(args.python, cmd, args.repeat, args.repo)
        med = statistics.median(t)
        under = ('yes' if med < GOAL_S else '**no**') if name.startswith('tools/') else ''
        if name.startswith('tools/'):
            medians[name] = med
        print(f'| {name} | {med:.2f} | {min(t):.2f} - {max(t):.2f} | {under} |', flush=True)
    if medians:
        slowest = max(medians, key=medians.get)
        print(f'slowest tool: {slowest} {medians[slowest]:.2f} s; '
              f'{sum(m >= GOAL_S for m in medians.values())} of {len(medians)} at or over '
              f'{GOAL_S} s')
    print(f'load average after: {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
    main()
