#!/usr/bin/env python
"""Reproduce the paper's TeD-Loc results (Table 1; Tables 2, 4, 5 with --ablations) in one
command, from the files a user brings.

    python tools/reproduce_paper.py --dataset cub --data-root data/CUB_200_2011 \\
        --val-metadata wsolevaluation/metadata/CUB/val \\
        --eva-checkpoint eva_large_patch14_196.in22k_ft_in22k_in1k.safetensors \\
        --clip-checkpoint ViT-B-16.pt --text-checkpoint open_clip_vit_l14.bin \\
        --work-dir work_dirs/paper_cub [--gpus 4] [--ablations] [--check]
    python tools/reproduce_paper.py --smoke DIR     # the whole chain on CPU, random weights

Every input is checked before any long step (the data set's files and class list, each
weight file's format and shapes, free disk); all problems are printed at once, one line
each with how to fix it, and the exit code is 2. ``--check`` runs the checks alone.
Then each step runs one of the project's tools, its command printed first; a finished
step is skipped on a re-run and a killed one resumes (tedloc_mm/workflow/steps.py):

1. metadata: CUB: the release converted (tools/dataset_converters/cub.py) plus the val
   split (``--val-metadata``: wsolevaluation's CUBV2, or ``--val-per-class N`` carved from
   train); ILSVRC: wsolevaluation's metadata under DATA_ROOT/metadata, used as it is
2. the EVA-01-L file converted for the encoder (tools/model_converters/eva_to_mmpretrain.py)
3. the class anchors with the config's text tower (``anchor_text``; tools/build_text_anchors.py)
4. the CLIP-ES CAM store of the train split (tools/generate_cams.py clip-es)
5. training (tools/train.py, or tools/dist_train.sh with the NxbM config for --gpus N)
6. the test of the best-on-val checkpoint (tools/test.py / dist_test.sh)
   -> WORK/results/table.{md,json}: the paper's Table 1 row, ours beside the paper's

Runs are configured by a config written to WORK/configs/ that inherits the paper config
and adds lean checkpoints (no frozen encoder in every save); paths are --cfg-options.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: the paper's numbers, Table 1 (MaxBoxAcc, Top-1 Loc, Top-5 Loc) and §4.2's Top-1 CL
PAPER_TABLE1 = {
    'cub': {'MaxBoxAcc': 98.7, 'Top-1 Loc': 91.7, 'Top-5 Loc': 97.6, 'Top-1 Cls': 93.0},
    'ilsvrc': {'MaxBoxAcc': 75.6, 'Top-1 Loc': 70.0, 'Top-5 Loc': 75.1, 'Top-1 Cls': 89.9},
}
#: table column -> WSOLMetric key
COLUMNS = (('MaxBoxAcc', 'wsol/MaxBoxAcc'), ('Top-1 Loc', 'wsol/Top1Loc'),
           ('Top-5 Loc', 'wsol/Top5Loc'), ('Top-1 Cls', 'wsol/Top1Cls'),
           ('MaxBoxAccV2', 'wsol/MaxBoxAccV2'), ('PxAP', 'wsol/PxAP'))
#: --ablations: (row, config under configs/ablations/ or None = the main run, trains?,
#: the paper's CUB values (MaxBoxAcc, and the table))
ABLATIONS = {
    'cub': (('L_KD', 'tedloc_eva-l_lkd_cub.py', True, '62.3 (Table 2)'),
            ('L_KD + P_CL', 'tedloc_eva-l_lkd-pcl_cub.py', True, '95.4 (Table 2)'),
            ('L_KD + P_CL + I_CL (TeD-Loc)', None, False, '98.7 (Table 2)'),
            ('anchor map of the true class', 'tedloc_eva-l_gt-anchor-map_cub.py', False,
             '98.7 (Table 4)'),
            ('without orthogonalization', 'tedloc_eva-l_no-qr_cub.py', True,
             '97.73 (Table 5)')),
    'ilsvrc': (('TeD-Loc', None, False, '75.6 (Table 1)'),
               ('anchor map of the true class', 'tedloc_eva-l_gt-anchor-map_ilsvrc.py', False,
                '77.18 (Table 4)')),
}
#: the CLIP-ES image tower (the paper's pseudo-labels: CLIP-ES with OpenAI's ViT-B/16)
CAM_MODEL = 'ViT-B-16'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog='Details: docs/en/get_started.md#reproduce-the-paper')
    p.add_argument('--dataset', choices=('cub', 'ilsvrc'))
    p.add_argument('--data-root', help='CUB: the CUB_200_2011 folder of the release; '
                   'ILSVRC: the folder of the images with wsolevaluation\'s metadata in '
                   'DATA_ROOT/metadata/{train,val,test} and DATA_ROOT/metadata/class_names.txt')
    p.add_argument('--val-metadata', help='CUB: wsolevaluation\'s metadata/CUB/val (CUBV2, '
                   'the paper\'s val split; its images under DATA_ROOT/images)')
    p.add_argument('--val-per-class', type=int, default=0,
                   help='CUB without CUBV2: carve N train images per class as val (not '
                   'the paper\'s split)')
    p.add_argument('--eva-checkpoint', help='EVA-01-L classification weights (timm\'s '
                   'eva_large_patch14_196.in22k_ft_in22k_in1k, or BAAI\'s file)')
    p.add_argument('--clip-checkpoint', help='OpenAI\'s ViT-B-16.pt archive (CLIP-ES)')
    p.add_argument('--text-checkpoint', help='the open_clip checkpoint of the config\'s '
                   'text tower (CUB: ViT-L-14, ILSVRC: ViT-H-14)')
    p.add_argument('--work-dir', help='everything is written below this folder')
    p.add_argument('--gpus', type=int, default=1, help='GPUs: 1, or 2 / 4 / 8 with the '
                   'NxbM config (the paper\'s total batch)')
    p.add_argument('--device', default=None, help='CAM generation device (default: cuda '
                   'when available, else cpu)')
    p.add_argument('--ablations', action='store_true',
                   help='also Tables 2, 4, 5 (configs/ablations/) at the same budget')
    p.add_argument('--check', action='store_true', help='check the inputs only')
    p.add_argument('--force', action='store_true', help='re-run finished steps')
    p.add_argument('--config', help='another TeD-Loc config instead of the paper\'s (a '
                   'variant, or a tiny one for tests)')
    p.add_argument('--cam-model', default=CAM_MODEL, help='open_clip name of the CLIP-ES '
                   f'image tower in --clip-checkpoint (default {CAM_MODEL}, the paper\'s)')
    p.add_argument('--cfg-options', nargs='+', default=[],
                   help='more KEY=VALUE options of the training and test runs')
    p.add_argument('--smoke', metavar='DIR', help='CPU dry run of the whole CUB chain into '
                   'DIR: random-weight files in the real formats, a small CUB-layout data '
                   'set, the paper config\'s model unchanged; only batch, iterations and '
                   'split sizes shrink')
    args = p.parse_args(argv)
    if not args.smoke:
        missing = [f'--{k.replace("_", "-")}' for k in ('dataset', 'data_root', 'work_dir')
                   if getattr(args, k) is None]
        if missing:
            p.error(f'{", ".join(missing)} required (or --smoke DIR)')
    return args


# ---------------------------------------------------------------------- the plan
class Plan:
    """Paths and configs of one reproduction."""

    def __init__(self, args):
        from mmengine.config import Config
        self.args = args
        self.w = osp.abspath(args.work_dir)
        self.dataset = args.dataset
        self.config = args.config or paper_config(args.dataset, args.gpus)
        self.cfg = Config.fromfile(osp.join(REPO, self.config))
        if self.dataset == 'cub':
            self.images = osp.join(args.data_root, 'images')
            self.metadata = osp.join(self.w, 'data', 'metadata')
        else:
            self.images = args.data_root
            self.metadata = osp.join(args.data_root, 'metadata')
        self.encoder = osp.join(self.w, 'checkpoints', 'encoder_mmpretrain.pth')
        self.anchors = osp.join(self.w, 'anchors.pth')
        self.cams = osp.join(self.w, 'cams', 'train')
        self.results = osp.join(self.w, 'results')
        self.num_classes = self.cfg.model.head.num_classes

    def run_config(self, config: str) -> str:
        """WORK/configs/<name>: ``config`` plus lean checkpoints (the frozen encoder is
        not written at every save; tests and resumes refill it from the encoder file)."""
        from mmengine.config import Config
        cfg = self.cfg if config == self.config else Config.fromfile(osp.join(REPO, config))
        hooks = [dict(h) for h in cfg.get('custom_hooks', [])]
        if not any(str(h.get('type')).endswith('LeanCheckpointHook') for h in hooks):
            hooks.append(dict(type='LeanCheckpointHook'))
        out = osp.join(self.w, 'configs', osp.basename(config))
        os.makedirs(osp.dirname(out), exist_ok=True)
        with open(out, 'w') as f:
            f.write(f'# written by tools/reproduce_paper.py: {config} with lean checkpoints\n'
                    f'_base_ = [{osp.join(REPO, config)!r}]\n'
                    f'custom_hooks = {hooks!r}\n')
        return out

    def options(self, train: bool) -> list:
        """--cfg-options of the runs: data, metadata, CAM store, encoder, anchors."""
        loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader') if train else (
            'val_dataloader', 'test_dataloader')
        opts = []
        for loader in loaders:
            opts += [f'{loader}.dataset.data_root={self.images}',
                     f'{loader}.dataset.metadata_root={self.metadata}']
        if train:
            opts.append(f'train_dataloader.dataset.cam_store={self.cams}')
        return opts + [f'model.backbone.checkpoint={self.encoder}',
                       f'model.head.anchor_file={self.anchors}', *self.args.cfg_options]


def paper_config(dataset: str, gpus: int) -> str:
    """The paper config for ``gpus`` processes: tedloc_eva-l_<dataset>.py, or its NxbM
    variant whose total batch is the paper's."""
    if gpus == 1:
        return f'configs/tedloc_eva-l_{dataset}.py'
    found = sorted(glob.glob(osp.join(REPO, f'configs/tedloc_eva-l_{gpus}xb*_{dataset}.py')))
    if len(found) != 1:
        have = sorted(osp.basename(f) for f in glob.glob(
            osp.join(REPO, f'configs/tedloc_eva-l_*xb*_{dataset}.py')))
        sys.exit(f'--gpus {gpus}: no configs/tedloc_eva-l_{gpus}xbM_{dataset}.py; there are '
                 f'{have} (2, 4 or 8 GPUs; 1 uses configs/tedloc_eva-l_{dataset}.py)')
    return osp.relpath(found[0], REPO)


# ---------------------------------------------------------------------- checks
def check_inputs(plan: Plan) -> list:
    """Every problem of the inputs, one line each with its fix (empty: all good)."""
    from tedloc_mm.workflow import paper_inputs as pi
    a, cfg = plan.args, plan.cfg
    problems = []
    text = cfg.get('anchor_text')
    if text is None:
        problems.append(f'{plan.config}: no anchor_text (the anchors\' text tower): add '
                        "anchor_text = dict(model=..., templates=...)")
    num_train = 0
    if plan.dataset == 'cub':
        problems += pi.check_cub_release(a.data_root, plan.num_classes)
        split_file = osp.join(a.data_root or '', 'train_test_split.txt')
        if osp.isfile(split_file):
            with open(split_file) as f:
                num_train = sum(1 for line in f if line.split()[-1:] == ['1'])
        if a.val_metadata:
            problems += pi.check_wsol_metadata(
                osp.dirname(a.val_metadata.rstrip('/')), [osp.basename(a.val_metadata.rstrip('/'))],
                None, '--val-metadata', f'give wsolevaluation\'s metadata/CUB/val ({pi.WSOLEVAL})')
        elif a.val_per_class <= 0:
            problems.append('CUB val split: give --val-metadata wsolevaluation/metadata/CUB/val '
                            f'(CUBV2, the paper\'s; {pi.WSOLEVAL}; its images under '
                            'DATA_ROOT/images), or --val-per-class 5 (carved from train, '
                            'not the paper\'s)')
    else:
        fix = (f'copy wsolevaluation\'s metadata/ILSVRC/{{train,val,test}} ({pi.WSOLEVAL}) and a '
               '1000-line class_names.txt there (docs/en/data_preparation.md#ilsvrc-2012)')
        if not a.data_root or not osp.isdir(a.data_root):
            problems.append(f'--data-root {a.data_root}: no such folder: the ILSVRC images, '
                            'with wsolevaluation\'s metadata in DATA_ROOT/metadata')
        else:
            problems += pi.check_wsol_metadata(plan.metadata, ('train', 'val', 'test'),
                                               plan.num_classes, '--data-root', fix)
            ids = osp.join(plan.metadata, 'train', 'image_ids.txt')
            num_train = pi.count_lines(ids) if osp.isfile(ids) else 0
    problems += pi.check_eva_file(a.eva_checkpoint, cfg.model.backbone)
    problems += pi.check_openai_clip_file(a.clip_checkpoint, a.cam_model)
    if text is not None:
        problems += pi.check_text_tower_file(a.text_checkpoint, text['model'],
                                             cfg.model.head.in_channels)
    # converted encoder (as large as the file), lean checkpoints and logs: 1 GB
    problems += pi.check_free_disk(plan.w, num_train,
                                   pi.file_size(a.eva_checkpoint) + 10 ** 9)
    return problems


# ---------------------------------------------------------------------- steps
def run_steps(plan: Plan):
    from tedloc_mm.workflow import StepRunner
    a, py = plan.args, sys.executable
    steps = StepRunner(osp.join(plan.w, 'steps'), REPO, force=a.force)
    n = 6
    start = time.time()
    os.makedirs(plan.results, exist_ok=True)

    def step(i, name, title, cmd, outputs=(), partial=None):
        where = f'{i}/{n}' if isinstance(i, int) else i
        steps.run(name, title, cmd, outputs, partial=partial, where=where)
        print(f'    [{where}: {(time.time() - start) / 60:.1f} min so far]', flush=True)

    if plan.dataset == 'cub':
        convert = [py, 'tools/dataset_converters/cub.py', a.data_root, '--out', plan.metadata]
        if not a.val_metadata:
            convert += ['--val-per-class', str(a.val_per_class)]
        step(1, 'metadata', 'CUB-200-2011 -> WSOL metadata (train, test' +
             (', val carved from train)' if not a.val_metadata else ')'), convert,
             [osp.join(plan.metadata, 'class_names.txt')])
        if a.val_metadata:
            step(1, 'val_metadata', 'the CUBV2 val split (wsolevaluation)',
                 [py, '-c', 'import shutil, sys; shutil.copytree(sys.argv[1], sys.argv[2], '
                  'dirs_exist_ok=True)', a.val_metadata, osp.join(plan.metadata, 'val')],
                 [osp.join(plan.metadata, 'val', 'image_ids.txt')])
    bb = plan.cfg.model.backbone
    step(2, 'encoder', 'the EVA file -> the encoder\'s layout',
         [py, 'tools/model_converters/eva_to_mmpretrain.py', '--variant',
          bb.get('variant', 'eva01'), '--img-size', str(bb.img_size), '--patch-size',
          str(bb.patch_size), a.eva_checkpoint, plan.encoder], [plan.encoder])
    text = plan.cfg.anchor_text  # the text tower: the config's (one source)
    step(3, 'anchors', f"class anchors ({text['model']} text tower, {plan.num_classes} "
         'classes)',
         [py, 'tools/build_text_anchors.py', '--class-file',
          osp.join(plan.metadata, 'class_names.txt'), '--model', text['model'],
          '--templates', text['templates'], '--checkpoint', a.text_checkpoint,
          '--out', plan.anchors], [plan.anchors])
    device = a.device or _default_device()
    # a killed run re-runs: the tool skips the images already in the store
    step(4, 'cams', f'CLIP-ES CAMs of the train split ({a.cam_model}, {device})',
         [py, 'tools/generate_cams.py', 'clip-es', '--model', a.cam_model, '--checkpoint',
          a.clip_checkpoint, '--data-root', plan.images, '--metadata-root', plan.metadata,
          '--split', 'train', '--out', plan.cams, '--device', device,
          *(['--num-workers', '0'] if a.smoke or a.config else [])], [plan.cams])
    best = train_and_test(plan, step, plan.config, 'train', 'tedloc', 5, 6,
                          osp.join(plan.results, 'test_metrics.json'))
    table = write_table(plan)
    print('\n' + table)
    if a.ablations:
        run_ablations(plan, step, best)
    print(f'results: {plan.results}/table.md, table.json; steps and times: {plan.w}/steps/')


def _default_device() -> str:
    import torch
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def train_and_test(plan, step, config, name, title, i_train, i_test, out, ckpt=None):
    """Train ``config`` (unless ``ckpt`` is given), then test its best-on-val checkpoint
    into ``out``; returns the checkpoint tested."""
    py, g = sys.executable, plan.args.gpus
    run_cfg = plan.run_config(config)
    work = osp.join(plan.w, name)
    if ckpt is None:
        train = ([py, 'tools/train.py', run_cfg] if g == 1 else
                 ['bash', 'tools/dist_train.sh', run_cfg, str(g)])
        step(i_train, name, f'train {title} ({osp.basename(config)}, {g} process(es); '
             'iterations and time left in the log lines)',
             train + ['--work-dir', work, '--cfg-options', *plan.options(True)],
             partial=osp.join(work, 'last_checkpoint'))
        ckpt = best_checkpoint(work)
    test = ([py, 'tools/test.py', run_cfg, ckpt] if g == 1 else
            ['bash', 'tools/dist_test.sh', run_cfg, ckpt, str(g)])
    step(i_test, f'test_{name}', f'test {title}: {osp.basename(ckpt)} (chosen on val)',
         test + ['--work-dir', osp.join(work, 'test'), '--out', out, '--cfg-options',
                 *plan.options(False)], [out])
    return ckpt


def best_checkpoint(work_dir: str) -> str:
    best = sorted(f for f in os.listdir(work_dir) if f.startswith('best_') and
                  f.endswith('.pth'))
    if len(best) != 1:
        sys.exit(f'{work_dir}: expected one best_*.pth (the checkpoint kept on val), found '
                 f'{best}: did the training validate?')
    return osp.join(work_dir, best[0])


def write_table(plan: Plan) -> str:
    """results/table.{md,json}: the paper's Table 1 row for this data set, ours and the
    paper's (percent), plus MaxBoxAccV2 and PxAP, which the paper does not report."""
    with open(osp.join(plan.results, 'test_metrics.json')) as f:
        ours = json.load(f)
    paper = PAPER_TABLE1[plan.dataset]
    name = {'cub': 'CUB-200-2011', 'ilsvrc': 'ILSVRC'}[plan.dataset]
    cols = [c for c, _ in COLUMNS]
    lines = [f'| TeD-Loc, {name} | ' + ' | '.join(cols) + ' |', '|' + '---|' * (len(cols) + 1)]
    row_ours = {c: ours.get(k) for c, k in COLUMNS}
    row_paper = {c: paper.get(c) for c in cols}
    for label, row in (('ours', row_ours), ('paper (Table 1; Top-1 Cls from §4.2)', row_paper)):
        lines.append(f'| {label} | ' + ' | '.join(
            'n/a' if row[c] is None else f'{row[c]:.2f}' for c in cols) + ' |')
    note = (f'config {plan.config}, {plan.args.gpus} process(es); '
            + ('SMOKE RUN: random weights, tiny splits and schedule: the numbers mean '
               'nothing' if plan.args.smoke else 'the full schedule'))
    text = '\n'.join(lines) + f'\n\n{note}\n'
    os.makedirs(plan.results, exist_ok=True)
    with open(osp.join(plan.results, 'table.md'), 'w') as f:
        f.write(text)
    with open(osp.join(plan.results, 'table.json'), 'w') as f:
        json.dump(dict(dataset=plan.dataset, config=plan.config, ours=row_ours,
                       paper=row_paper, note=note), f, indent=2)
    return text


def run_ablations(plan: Plan, step, best: str):
    """Tables 2, 4, 5: each ablation config trained like the main run (same data, CAMs,
    anchors, options) and tested; results/ablations.{md,json}."""
    rows = []
    for k, (row, cfg, trains, paper) in enumerate(ABLATIONS[plan.dataset]):
        if cfg is None:
            out = osp.join(plan.results, 'test_metrics.json')
        else:
            stem = cfg[:-3]
            out = osp.join(plan.results, f'ablation_{stem}.json')
            config = osp.join('configs/ablations', cfg)
            if plan.args.gpus > 1:
                sys.exit('--ablations runs in one process (the ablation configs are the '
                         'single-process ones); run it without --gpus')
            train_and_test(plan, step, config, f'ablation_{stem}', row, 'ablations',
                           'ablations', out,
                           ckpt=None if trains else best)
        with open(out) as f:
            m = json.load(f)
        rows.append(dict(row=row, paper=paper, **{c: m.get(key) for c, key in COLUMNS}))
    cols = [c for c, _ in COLUMNS]
    lines = ['| row | ' + ' | '.join(cols) + ' | paper, MaxBoxAcc |',
             '|' + '---|' * (len(cols) + 2)]
    for r in rows:
        lines.append(f"| {r['row']} | " + ' | '.join(
            'n/a' if r[c] is None else f'{r[c]:.2f}' for c in cols) + f" | {r['paper']} |")
    text = '\n'.join(lines) + '\n'
    with open(osp.join(plan.results, 'ablations.md'), 'w') as f:
        f.write(text)
    with open(osp.join(plan.results, 'ablations.json'), 'w') as f:
        json.dump(rows, f, indent=2)
    print('\n' + text)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    import tedloc_mm  # noqa: F401
    if args.smoke:
        from tedloc_mm.workflow.smoke import prepare_smoke
        args = prepare_smoke(args, REPO)
    plan = Plan(args)
    problems = check_inputs(plan)
    if problems:
        print(f'{len(problems)} problem(s) with the inputs; nothing was run:', file=sys.stderr)
        for line in problems:
            print(f'  - {line}', file=sys.stderr)
        return 2
    print(f'inputs OK: {plan.dataset}, {plan.config}, work dir {plan.w}', flush=True)
    if args.check:
        return 0
    from tedloc_mm.workflow import StepFailed
    try:
        run_steps(plan)
    except StepFailed as err:
        print(str(err), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
