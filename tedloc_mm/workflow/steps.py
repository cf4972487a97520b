"""The step runner of the multi-step drivers (tools/run_synthetic_pipeline.py,
tools/reproduce_paper.py): each step is one of the project's tools, run as a subprocess.

For each step it prints the command (so that it can be re-run by hand), runs it, and marks
it done **only when it exits 0**, in ``STATE_DIR/<name>.json`` (the command, wall and CPU
seconds, peak memory). On the next run a step is skipped when its mark and its outputs
exist; a step without its mark whose ``partial`` path exists (a killed training's
``last_checkpoint``) is re-run with ``resume_args`` (``--resume``) so that it continues
where the killed run stopped. A step whose tool resumes by itself (CAM generation skips
the ids already in the store) simply runs again.

Measured per step (of the step's process tree, from ``os.wait4``): wall seconds, CPU
seconds (user + system), peak resident memory (MiB, the largest process of the tree; it
includes the driver's own resident memory before the exec, recorded as ``driver_rss_mib``:
a step's peak below that value cannot be told apart), and
the 1-minute load average before and after (on a shared machine the wall time depends on
the other load, the CPU seconds much less).
"""
import json
import os
import os.path as osp
import resource
import shlex
import signal
import subprocess
import time
from typing import Callable, Dict, Optional, Sequence

__all__ = ['StepFailed', 'StepRunner', 'insert_before_options']


class StepFailed(RuntimeError):
    """A step's command exited with a non-zero code (the message names step and code)."""


def insert_before_options(cmd: Sequence[str], extra: Sequence[str],
                          options_flag: str = '--cfg-options') -> list:
    """``cmd`` with ``extra`` inserted before ``options_flag`` (whose values run to the
    end of the command line), or appended when there is none."""
    cmd = list(cmd)
    at = cmd.index(options_flag) if options_flag in cmd else len(cmd)
    return cmd[:at] + list(extra) + cmd[at:]


class StepRunner:
    """Run, skip or resume the steps of a driver; keep their times.

    Args:
        state_dir: where the done marks go (``<name>.json`` per step).
        cwd: working directory of every command (the repository root).
        force: re-run every step, done or not.
        env: extra environment variables of the commands (``PYTHONPATH`` gets ``cwd``
            prepended).
        log: where the progress lines go (``print`` by default).
    """

    def __init__(self, state_dir: str, cwd: str, force: bool = False,
                 env: Optional[Dict[str, str]] = None, log: Callable[[str], None] = None):
        self.state_dir = state_dir
        self.cwd = cwd
        self.force = force
        self.env = dict(os.environ, **(env or {}))
        self.env['PYTHONPATH'] = cwd + os.pathsep + self.env.get('PYTHONPATH', '')
        self.log = log or (lambda line: print(line, flush=True))
        #: title -> wall seconds of the steps run by this process
        self.times: Dict[str, float] = {}
        #: title -> dict(cpu_s, peak_rss_mib, load_before, load_after) of those steps
        self.cpu: Dict[str, dict] = {}

    # ---------------------------------------------------------------- state
    def mark_path(self, name: str) -> str:
        return osp.join(self.state_dir, f'{name}.json')

    def is_done(self, name: str, outputs: Sequence[str] = ()) -> bool:
        """The step finished (exit 0) on an earlier run and its outputs still exist."""
        return osp.isfile(self.mark_path(name)) and all(osp.exists(o) for o in outputs)

    def record(self, name: str) -> Optional[dict]:
        """The done mark of step ``name`` (None if it is not done)."""
        path = self.mark_path(name)
        if not osp.isfile(path):
            return None
        with open(path) as f:
            return json.load(f)

    # ---------------------------------------------------------------- running
    def run(self, name: str, title: str, cmd: Sequence[str], outputs: Sequence[str] = (),
            partial: Optional[str] = None, resume_args: Sequence[str] = ('--resume', ),
            where: str = '') -> bool:
        """Run step ``name`` unless done; returns True when it ran now.

        Args:
            name: the step's identifier (file-name safe), unique within a driver.
            title: what the step does, printed and used as its key in :attr:`times`.
            cmd: the command (a list; ``sys.executable`` for Python tools).
            outputs: files or folders the step writes; a done step whose outputs went
                missing runs again.
            partial: a path that exists when a killed run of the step left state to
                continue from (e.g. ``WORK/last_checkpoint`` of a training).
            resume_args: inserted before ``--cfg-options`` when ``partial`` exists.
            where: a prefix of the heading, e.g. ``'3/6'``.

        Raises:
            StepFailed: the command exited with a non-zero code (the step stays undone).
        """
        self.log(f"\n=== [{where or name}] {title}")
        cmd = list(cmd)
        if not self.force and self.is_done(name, outputs):
            self.log('$ ' + shlex.join(cmd))
            self.log(f'    (skipped: done on an earlier run, {self.mark_path(name)}; '
                     '--force re-runs)')
            return False
        if partial is not None and osp.exists(partial) and not self.force:
            cmd = insert_before_options(cmd, resume_args)
            self.log(f'    (resuming: {partial} is left by a run that did not finish)')
        self.log('$ ' + shlex.join(cmd))
        if osp.isfile(self.mark_path(name)):
            os.remove(self.mark_path(name))  # --force or missing outputs: undone until exit 0
        start, load0 = time.time(), os.getloadavg()[0]
        # the child's peak counts the driver's own resident memory until the exec
        driver_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        proc = subprocess.Popen(cmd, cwd=self.cwd, env=self.env)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C or the driver killed: take the step down with it
            proc.send_signal(signal.SIGTERM)
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise StepFailed(f'step {name!r} ({title}) failed with exit code '
                             f'{proc.returncode}; the command is printed above. Re-running '
                             'the driver resumes at this step.')
        wall = round(time.time() - start, 1)
        stats = dict(cpu_s=round(usage.ru_utime + usage.ru_stime, 1),
                     peak_rss_mib=round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
                     driver_rss_mib=round(driver_mib, 1),
                     load_before=round(load0, 2), load_after=round(os.getloadavg()[0], 2))
        self.times[title] = wall
        self.cpu[title] = stats
        os.makedirs(self.state_dir, exist_ok=True)
        with open(self.mark_path(name), 'w') as f:
            json.dump(dict(title=title, cmd=cmd, wall_s=wall, finished=time.time(), **stats),
                      f, indent=2)
        self.log(f"    done in {wall:.0f} s ({stats['cpu_s']:.0f} CPU s, peak "
                 f"{stats['peak_rss_mib']:.0f} MiB, load {load0:.1f})")
        return True
