"""The whole TeD-Loc method on the generated synthetic benchmark, step by step, on CPU.

    python tools/run_synthetic_pipeline.py [--work-dir work_dirs/synthetic_demo] [--quick]

Each step is one of the project's tools; the exact command is printed before it runs,
so any step can be re-run by hand. A step whose output already exists is skipped
(``--force`` re-runs everything). Steps:

1. generate the benchmark          tools/generate_synthetic_benchmark.py
2. train the CAM classifier        tools/train.py configs/synthetic/classifier_*.py
3. CAM pseudo-labels of train      tools/generate_cams.py classifier ...
4. text anchors (random tower)     tools/build_text_anchors.py --random-init
5. train TeD-Loc                   tools/train.py configs/synthetic/tedloc_*.py
6. test TeD-Loc and the CAM baseline on the test split
                                   tools/test.py (WSOLMetric; overlays by the
                                   visualization hook) -> results/table.{md,json}

``--quick`` shrinks every size (the CI test uses it); the numbers are then noise.
"""
import argparse
import json
import os
import os.path as osp
import shlex
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLASSIFIER_CFG = 'configs/synthetic/classifier_eva02-tiny_synthetic.py'
GRADCAM_CFG = 'configs/synthetic/gradcam_eva02-tiny_synthetic.py'
TEDLOC_CFG = 'configs/synthetic/tedloc_eva02-tiny_synthetic.py'
TEXT_MODEL = 'ViT-B-32'  # open_clip text tower, 512 wide = the TeD-Loc config's anchor_dim

#: (row label, metric key) of the results table
TABLE_COLUMNS = (('MaxBoxAcc', 'wsol/MaxBoxAcc'), ('MaxBoxAccV2', 'wsol/MaxBoxAccV2'),
                 ('Top-1 Loc', 'wsol/Top1Loc'), ('Top-5 Loc', 'wsol/Top5Loc'),
                 ('PxAP', 'wsol/PxAP'), ('Top-1 Cls', 'wsol/Top1Cls'),
                 ('best thr', 'wsol/best_thr'))

FULL = dict(gen=[], classifier_iters=1500, tedloc_iters=600, tedloc_val_interval=150)
QUICK = dict(gen=['--train', '40', '--val', '8', '--test', '16', '--num-classes', '5'],
             classifier_iters=300, tedloc_iters=120, tedloc_val_interval=60)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--work-dir', default='work_dirs/synthetic_demo',
                   help='everything is written below this folder')
    p.add_argument('--seed', type=int, default=0, help='benchmark and training seed')
    p.add_argument('--quick', action='store_true', help='tiny sizes (smoke test)')
    p.add_argument('--force', action='store_true', help='re-run steps whose output exists')
    p.add_argument('--num-overlays', type=int, default=8,
                   help='overlay images drawn per tested model')
    return p.parse_args(argv)


class Pipeline:

    def __init__(self, args):
        self.args = args
        self.sizes = QUICK if args.quick else FULL
        self.w = args.work_dir
        self.data = osp.join(self.w, 'data')
        self.results = osp.join(self.w, 'results')
        self.times = {}

    # ------------------------------------------------------------------ helpers
    def run(self, step, title, cmd, output):
        """Run ``cmd`` (a list) unless ``output`` exists; print it first."""
        print(f'\n=== [{step}/6] {title}', flush=True)
        print('$ ' + ' '.join(shlex.quote(c) for c in cmd), flush=True)
        if output is not None and osp.exists(output) and not self.args.force:
            print(f'    (skipped: {output} exists; --force re-runs)', flush=True)
            return
        start = time.time()
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
        proc = subprocess.run(cmd, cwd=REPO, env=env)
        if proc.returncode != 0:
            sys.exit(f'step {step} ({title}) failed with exit code {proc.returncode}; '
                     'the command is printed above')
        self.times[title] = time.time() - start
        print(f'    done in {self.times[title]:.0f} s', flush=True)

    def data_options(self):
        """--cfg-options that point the synthetic configs' datasets at this work dir."""
        opts = []
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            opts.append(f'{loader}.dataset.data_root={self.data}')
        return opts

    def classifier_checkpoint(self):
        return osp.join(self.w, 'classifier', f"iter_{self.sizes['classifier_iters']}.pth")

    @staticmethod
    def best_checkpoint(work_dir):
        best = sorted(f for f in os.listdir(work_dir) if f.startswith('best_') and
                      f.endswith('.pth'))
        if not best:
            sys.exit(f'no best_*.pth in {work_dir}: did TeD-Loc training validate?')
        return osp.join(work_dir, best[-1])

    # ------------------------------------------------------------------ steps
    def main(self):
        py = sys.executable
        seed = str(self.args.seed)
        start = time.time()
        self.run(1, 'generate the synthetic benchmark',
                 [py, 'tools/generate_synthetic_benchmark.py', '--out', self.data, '--seed',
                  seed, '--reuse', *self.sizes['gen']],
                 osp.join(self.data, 'metadata', 'test', 'image_ids.txt'))

        iters = self.sizes['classifier_iters']
        num_classes = self._num_classes()
        self.run(2, 'train the CAM classifier (tiny EVA-02)',
                 [py, 'tools/train.py', CLASSIFIER_CFG, '--work-dir',
                  osp.join(self.w, 'classifier'), '--cfg-options', *self.data_options(),
                  f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
                  f'param_scheduler.0.end={min(100, iters // 5)}',
                  f'param_scheduler.1.begin={min(100, iters // 5)}', f'param_scheduler.1.end={iters}',
                  f'default_hooks.checkpoint.interval={iters}',
                  f'model.head.num_classes={num_classes}',
                  f'model.data_preprocessor.num_classes={num_classes}',
                  f'randomness.seed={seed}'],
                 self.classifier_checkpoint())

        cams = osp.join(self.w, 'cams', 'train')
        self.run(3, 'CAM pseudo-labels of the train split (classifier Grad-CAM)',
                 [py, 'tools/generate_cams.py', 'classifier', CLASSIFIER_CFG,
                  self.classifier_checkpoint(), '--data-root', self.data, '--split', 'train',
                  '--out', cams, '--batch-size', '64'],
                 None)  # always run: the tool itself skips ids already in the store

        anchors = osp.join(self.w, 'anchors.pth')
        self.run(4, 'text anchors (random-initialised open_clip text tower)',
                 [py, 'tools/build_text_anchors.py', '--class-file',
                  osp.join(self.data, 'metadata', 'class_names.txt'), '--model', TEXT_MODEL,
                  '--random-init', '--seed', seed, '--out', anchors],
                 anchors)

        tedloc_dir = osp.join(self.w, 'tedloc')
        t_iters, t_val = self.sizes['tedloc_iters'], self.sizes['tedloc_val_interval']
        self.run(5, 'train TeD-Loc (frozen classifier backbone; best MaxBoxAccV2 on val)',
                 [py, 'tools/train.py', TEDLOC_CFG, '--work-dir', tedloc_dir,
                  '--cfg-options', *self.data_options(),
                  f'train_dataloader.dataset.pipeline.1.cam_store={cams}',
                  f'model.backbone.checkpoint={self.classifier_checkpoint()}',
                  f'model.head.anchor_file={anchors}', f'model.head.num_classes={num_classes}',
                  f'train_cfg.max_iters={t_iters}', f'train_cfg.val_interval={t_val}',
                  f'default_hooks.checkpoint.interval={t_val}', f'randomness.seed={seed}'],
                 osp.join(tedloc_dir, 'last_checkpoint'))

        os.makedirs(self.results, exist_ok=True)
        tedloc_json = osp.join(self.results, 'tedloc_test.json')
        self.run(6, 'test TeD-Loc on the test split',
                 [py, 'tools/test.py', TEDLOC_CFG, self.best_checkpoint(tedloc_dir),
                  '--work-dir', osp.join(self.w, 'tedloc_test'), '--out', tedloc_json,
                  '--cfg-options', *self.data_options(),
                  f'model.head.anchor_file={anchors}', f'model.head.num_classes={num_classes}',
                  *self.overlay_options(osp.join(self.results, 'overlays_tedloc'))],
                 tedloc_json)
        cam_json = osp.join(self.results, 'cam_baseline_test.json')
        self.run(6, 'test the CAM baseline (stage-1 classifier Grad-CAM) on the test split',
                 [py, 'tools/test.py', GRADCAM_CFG, self.classifier_checkpoint(),
                  '--work-dir', osp.join(self.w, 'cam_baseline_test'), '--out', cam_json,
                  '--cfg-options', *self.data_options(),
                  f'model.head.num_classes={num_classes}',
                  f'model.data_preprocessor.num_classes={num_classes}',
                  *self.overlay_options(osp.join(self.results, 'overlays_cam_baseline'))],
                 cam_json)
        table = write_table({'CAM baseline (classifier Grad-CAM)': json.load(open(cam_json)),
                             'TeD-Loc': json.load(open(tedloc_json))}, self.results)
        print('\n' + table)
        print(f'results: {self.results}/table.md, table.json, overlays_*/')
        print(f'total wall time of this run: {time.time() - start:.0f} s')

    def overlay_options(self, out_dir):
        """Where the configs' WSOLVisualizationHook writes its overlays, and how many."""
        return [f'custom_hooks.0.out_dir={out_dir}',
                f'custom_hooks.0.num_images={self.args.num_overlays}']

    def _num_classes(self):
        with open(osp.join(self.data, 'metadata', 'class_names.txt')) as f:
            return sum(1 for line in f if line.strip())


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
    with open(osp.join(out_dir, 'table.md'), 'w') as f:
        f.write(text)
    with open(osp.join(out_dir, 'table.json'), 'w') as f:
        json.dump(table, f, indent=2)
    return text


if __name__ == '__main__':
    Pipeline(parse_args()).main()
