"""Start-up time of the package and of the tools that should start fast.

    python benchmarks/startup_time.py [--repeat 7] [--python PATH] [--repo DIR]

Each command runs in a fresh interpreter, ``--repeat`` times after one warm-up run;
the median and the range of the wall times are printed, with the machine's load
average (timings on a loaded machine are not comparable). ``--repo`` times another
checkout of tedloc_mm (e.g. an older commit, ``git worktree add``) with the same
interpreter, the checkout first on ``PYTHONPATH``; ``--python`` another interpreter: a
before / after comparison on one machine.
"""
import argparse
import os
import os.path as osp
import statistics
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
COMMANDS = (
    ('import numpy, cv2, numba (floor)', ['-c', 'import numpy, cv2, numba']),
    ('import tedloc_mm', ['-c', 'import tedloc_mm']),
    ('import tedloc_mm.evaluation', ['-c', 'import tedloc_mm.evaluation']),
    ('eval_scoremaps.py --help', ['tools/analysis_tools/eval_scoremaps.py', '--help']),
    ('tools/test.py --help', ['tools/test.py', '--help']),
)


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
    args = p.parse_args()
    where = subprocess.run([args.python, '-c', 'import tedloc_mm; print(tedloc_mm.__file__)'],
                           cwd=args.repo, env=dict(os.environ, PYTHONPATH=args.repo),
                           capture_output=True, text=True).stdout.strip()
    print(f'python: {args.python}; tedloc_mm: {where}; '
          f'load average before: {os.getloadavg()[0]:.2f}')
    print('| command | median s | min - max s |\n|---|---|---|')
    for name, cmd in COMMANDS:
        t = time_command(args.python, cmd, args.repeat, args.repo)
        print(f'| {name} | {statistics.median(t):.2f} | {min(t):.2f} - {max(t):.2f} |',
              flush=True)
    print(f'load average after: {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
    main()
