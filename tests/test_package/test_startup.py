"""What starting up costs in modules: `import tedloc_mm`, the evaluation package and the
evaluator tool (a drop-in for wsolevaluation's script) import neither torch nor MMPretrain
nor matplotlib (timings: benchmarks/startup_time.py); matplotlib comes only with a plot."""
import json
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HEAVY = ('torch', 'torchvision', 'mmpretrain', 'mmseg', 'mmcv', 'open_clip', 'timm',
         'matplotlib')

PROBE = r"""
import json, runpy, sys
what = sys.argv[1]
if what == 'tool':
    sys.argv = ['eval_scoremaps.py', '--help']
    try:
        runpy.run_path(sys.argv_tool, run_name='__main__')
    except SystemExit:
        pass
else:
    __import__(what)
print(json.dumps(sorted(m for m in %r if m in sys.modules)))
""" % (HEAVY, )


def _heavy_after(what: str):
    code = PROBE.replace('sys.argv_tool', repr(osp.join(ROOT, 'tools', 'analysis_tools',
                                                         'eval_scoremaps.py')))
    proc = subprocess.run([sys.executable, '-c', code, what], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_tedloc_mm_imports_no_heavy_library():
    assert _heavy_after('tedloc_mm') == []


def test_evaluation_imports_neither_torch_nor_mmpretrain():
    assert _heavy_after('tedloc_mm.evaluation') == []
    assert _heavy_after('tedloc_mm.evaluation.scoremap_dir') == []
    assert _heavy_after('tedloc_mm.evaluation.wsol_analysis') == []
    assert _heavy_after('tedloc_mm.evaluation.per_image_results') == []


def test_the_plot_module_imports_matplotlib_only_to_plot():
    assert _heavy_after('tedloc_mm.analysis.wsol_curves') == []


def test_the_evaluator_tool_starts_without_torch():
    assert _heavy_after('tool') == []


def test_the_metric_class_is_still_importable_from_evaluation():
    out = subprocess.run([sys.executable, '-c', 'from tedloc_mm.evaluation import WSOLMetric;'
                          'from tedloc_mm.registry import METRICS;'
                          "print(METRICS.get('WSOLMetric') is WSOLMetric)"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == 'True', out.stderr[-2000:]


TOOL_PROBE = r"""
import json, runpy, sys
sys.argv = [sys.argv[1], '--help']
try:
    runpy.run_path(sys.argv[0], run_name='__main__')
except SystemExit:
    pass
print(json.dumps(sorted(m for m in %r if m in sys.modules)))
""" % (HEAVY, )


def test_every_tools_help_imports_no_heavy_library():
    """Each tool parses its arguments before importing torch / OpenMMLab models, so that
    --help (and a refused option value) answers at once (times: benchmarks/startup_time.py)."""
    import glob
    tools = sorted(glob.glob(osp.join(ROOT, 'tools', '*.py'))
                   + glob.glob(osp.join(ROOT, 'tools', '*', '*.py')))
    heavy = {}
    for tool in tools:
        proc = subprocess.run([sys.executable, '-c', TOOL_PROBE, tool], capture_output=True,
                              text=True, cwd=ROOT, timeout=300)
        assert proc.returncode == 0, (tool, proc.stderr[-3000:])
        assert 'usage:' in proc.stdout, tool
        found = json.loads(proc.stdout.strip().splitlines()[-1])
        if found:
            heavy[osp.relpath(tool, ROOT)] = found
    assert heavy == {}
