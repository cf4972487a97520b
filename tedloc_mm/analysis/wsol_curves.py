"""Plot WSOL curves (box accuracy vs CAM threshold, PxAP precision-recall) of one or
several runs on one figure.

The input is the curves dict of :func:`tedloc_mm.evaluation.wsol_analysis.wsol_curves`
(``curves.json`` of ``tools/test.py --analysis-dir`` or ``eval_scoremaps.py
--plot_dir``). Panels, left to right:

1. box accuracy of the largest contour (the box of MaxBoxAcc and Top-k Loc) against
   the CAM threshold, one line per IoU threshold; the best threshold (MaxBoxAcc's)
   is marked with a star on the ``loc_iou`` curve and a dotted vertical line;
   with one run, Top-1 Loc at ``loc_iou`` is drawn too (dash-dot, grey);
2. the same for all contours (MaxBoxAccV2 is the mean of these curves' maxima,
   each maximum marked with a dot);
3. PxAP's precision-recall curve, when any run evaluated masks, drawn as the steps
   whose area is PxAP.

Colour = run, line style = IoU threshold; the legends sit below the panels, outside
the data. matplotlib is imported only here, when a plot is asked for (Agg backend:
no display needed); ``import tedloc_mm.visualization`` does not import it.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np

#: line style of the 1st, 2nd, 3rd ... IoU threshold (0.3, 0.5, 0.7 by default)
IOU_STYLES = ('--', '-', ':', '-.')
#: run colours (matplotlib's tab10, colour-blind friendlier than the default order)
RUN_COLORS = ('#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b',
              '#e377c2', '#7f7f7f')


def _pyplot():
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt
    return plt


def _style(i: int) -> str:
    return IOU_STYLES[i % len(IOU_STYLES)]


def plot_wsol_curves(runs: Sequence[Tuple[str, dict]], out_file: Optional[str] = None,
                     title: Optional[str] = None, dpi: int = 110) -> np.ndarray:
    """Draw the curves of ``runs`` ((label, curves dict) pairs) on one figure.

    Args:
        runs: one or more (legend label, curves dict); runs without boxes get no
            line in panels 1-2, runs without masks none in panel 3.
        out_file: write the figure there (PNG, or any format matplotlib knows).
        title: figure title (default: none).
        dpi: resolution of the written file and the returned array.

    Returns:
        the figure as an RGB uint8 array (H, W, 3), e.g. for a visualizer's
        ``add_image`` (TensorBoard).
    """
    if not runs:
        raise ValueError('no curves to plot')
    plt = _pyplot()
    from matplotlib.lines import Line2D
    has_box = any('box_acc' in c for _, c in runs)
    has_mask = any('pxap' in c for _, c in runs)
    panels = (['largest', 'all'] if has_box else []) + (['pxap'] if has_mask else [])
    if not panels:
        raise ValueError('the curves hold neither box accuracies nor a PxAP curve')
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6), dpi=dpi,
                             squeeze=False)
    axes = dict(zip(panels, axes[0]))
    iou_names = []
    run_handles = []
    for r, (label, curves) in enumerate(runs):
        color = RUN_COLORS[r % len(RUN_COLORS)]
        parts = []
        if 'box_acc' in curves:
            thr = np.asarray(curves['cam_thresholds'])
            ious = [float(t) for t in curves['iou_thrs']]
            loc_key = f'{float(curves["loc_iou"]):g}'
            for i, iou in enumerate(ious):
                key = f'{iou:g}'
                if key not in iou_names:
                    iou_names.append(key)
                style = _style(iou_names.index(key))
                largest = np.asarray(curves['box_acc']['largest'][key])
                every = np.asarray(curves['box_acc']['all'][key])
                axes['largest'].plot(thr, largest, style, color=color, lw=1.6)
                axes['all'].plot(thr, every, style, color=color, lw=1.6)
                best_all = int(np.argmax(every))
                axes['all'].plot(thr[best_all], every[best_all], 'o', color=color, ms=5)
            best = curves['best_thr']
            axes['largest'].axvline(best, color=color, ls=':', lw=1)
            axes['largest'].plot([best], [curves['MaxBoxAcc']], '*', color=color, ms=13,
                                 mec='black', mew=0.6, zorder=5)
            if len(runs) == 1 and 'top1_loc' in curves:
                axes['largest'].plot(thr, curves['top1_loc'], '-.', color='0.45', lw=1.4,
                                     label=f'Top-1 Loc (IoU {loc_key})')
            parts.append(f'MaxBoxAcc {curves["MaxBoxAcc"]:.1f} at thr {best:.2f}, '
                         f'V2 {curves["MaxBoxAccV2"]:.1f}')
        if 'pxap' in curves:
            # steps from recall 0: the area under them is PxAP exactly
            precision = np.asarray(curves['pxap']['precision'])
            recall = np.r_[0.0, curves['pxap']['recall']]
            axes['pxap'].plot(recall, np.r_[precision[:1], precision], '-', color=color,
                              lw=1.6, drawstyle='steps-pre')
            parts.append(f'PxAP {curves["pxap"]["PxAP"]:.1f}')
        run_handles.append(Line2D([], [], color=color, lw=2.5,
                                  label=f'{label}: ' + ', '.join(parts)))
    if has_box:
        for name, ax, what in (('largest', axes['largest'], 'largest contour (MaxBoxAcc)'),
                               ('all', axes['all'], 'all contours (MaxBoxAccV2)')):
            ax.set_title(f'Box accuracy, {what}', fontsize=10)
            ax.set_xlabel('CAM threshold')
            ax.set_ylabel('box accuracy (%)')
            ax.set_xlim(0, 1)
            ax.set_ylim(-2, 102)
            ax.grid(alpha=0.3)
    if has_mask:
        ax = axes['pxap']
        ax.set_title('Pixel precision-recall (PxAP = area)', fontsize=10)
        ax.set_xlabel('recall')
        ax.set_ylabel('precision')
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    handles = []
    if has_box:
        handles += [Line2D([], [], color='black', ls=_style(i), lw=1.6, label=f'IoU {k}')
                    for i, k in enumerate(iou_names)]
        handles.append(Line2D([], [], color='black', marker='*', ls=':', ms=11,
                              label='best CAM threshold (MaxBoxAcc)'))
        handles.append(Line2D([], [], color='black', marker='o', ls='', ms=5,
                              label='maximum of an all-contour curve'))
        if len(runs) == 1 and 'top1_loc' in runs[0][1]:
            handles.append(Line2D([], [], color='0.45', ls='-.', lw=1.4,
                                  label='Top-1 Loc (box and class right)'))
    # two legends below the panels: the runs (colours) left, the line styles right
    if handles:
        fig.legend(handles=run_handles, loc='upper left', bbox_to_anchor=(0.02, 0.0),
                   fontsize=9, frameon=False, title='run (colour)', title_fontsize=9,
                   alignment='left')
        fig.legend(handles=handles, loc='upper right', bbox_to_anchor=(0.98, 0.0),
                   fontsize=9, frameon=False, title='line style', title_fontsize=9,
                   alignment='left')
    else:
        fig.legend(handles=run_handles, loc='upper center', bbox_to_anchor=(0.5, 0.0),
                   fontsize=9, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    if out_file is not None:
        fig.savefig(out_file, bbox_inches='tight', dpi=dpi)
    # the array of what was saved: render with the same tight bounding box
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format='png', bbox_inches='tight', dpi=dpi)
    plt.close(fig)
    buf.seek(0)
    image = plt.imread(buf, format='png')
    return (image[..., :3] * 255).round().astype(np.uint8)


def load_curves(paths: Sequence[str]) -> List[dict]:
    """Read curves JSON files (checked, see
    :func:`tedloc_mm.evaluation.wsol_analysis.check_curves`)."""
    import json

    from tedloc_mm.evaluation.wsol_analysis import check_curves
    out = []
    for path in paths:
        with open(path, encoding='utf-8') as f:
            try:
                curves = json.load(f)
            except json.JSONDecodeError as err:
                raise ValueError(f'{path}: not a JSON file ({err})') from None
        out.append(check_curves(curves, path))
    return out
