"""WSOL datasets in the metadata format of Choe et al. (``wsolevaluation``).

Layout (the defaults; every path can be given explicitly)::

    data_root/                 images, at the paths the metadata names
    data_root/metadata/        ``metadata_root``
        class_names.txt        one class name per line (line i names class i)
        train/ val/ test/      ``image_ids.txt``, ``class_labels.txt``,
                               ``image_sizes.txt``, optional ``localization.txt``

For the metadata shipped with ``wsolevaluation`` set
``metadata_root='<wsolevaluation>/metadata/CUB'`` (or ``ILSVRC``, ``OpenImages``)
and give a ``class_names_file``.
"""
import os.path as osp
from typing import List, Optional

from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger

from tedloc_mm.registry import DATASETS
from .wsol_metadata import LOCALIZATION_FILES, read_class_names, read_wsol_split


@DATASETS.register_module()
class WSOLDataset(BaseDataset):
    """A split of a WSOL dataset; one sample per image.

    Each data info holds ``img_path``, ``img_id`` (the metadata path), ``gt_label``,
    ``meta_size`` ((h, w) from ``image_sizes.txt``) and, if the split has a
    ``localization.txt``, ``ori_gt_bboxes`` (float64 (N, 4), original pixels) plus a
    float32 copy ``gt_bboxes`` that geometric transforms move, or ``mask_paths`` /
    ``ignore_path`` (absolute) that ``LoadWSOLAnnotations`` reads.

    Args:
        data_root (str): image root.
        split (str): split directory under ``metadata_root`` (``train``, ``val``,
            ``test``).
        metadata_root (str, optional): defaults to ``data_root/metadata``.
        class_names_file (str, optional): defaults to
            ``metadata_root/class_names.txt``. ``metainfo['classes']`` is read from it
            and labels must be smaller than its length. ``False`` means no names
            (labels are then only checked to be >= 0).
        mask_root (str, optional): root of mask / ignore paths; defaults to
            ``data_root``.
        box_policy (str): ``'error'`` (default): a box outside its image is an error
            naming file and line; ``'clip'``: clip it, count and log.
        check_images (bool): check at construction that every image file exists.
        skip_missing_images (bool): with ``check_images``, drop images whose file is
            missing, counted and logged, instead of failing. Default False.
        localization_files (tuple[str]): optional box / mask files of a split, read
            when present (see :mod:`.wsol_metadata`).
    """

    def __init__(self,
                 data_root: str,
                 split: str,
                 metadata_root: Optional[str] = None,
                 class_names_file=None,
                 mask_root: Optional[str] = None,
                 box_policy: str = 'error',
                 check_images: bool = True,
                 skip_missing_images: bool = False,
                 localization_files=LOCALIZATION_FILES,
                 **kwargs):
        self.localization_files = tuple(localization_files)
        self.split = split
        self.metadata_root = metadata_root or osp.join(data_root, 'metadata')
        if class_names_file is None:
            class_names_file = osp.join(self.metadata_root, 'class_names.txt')
        self.class_names_file = class_names_file
        self.mask_root = mask_root or data_root
        self.box_policy = box_policy
        self.check_images = check_images
        self.skip_missing_images = skip_missing_images
        metainfo = kwargs.pop('metainfo', None) or {}
        if class_names_file and 'classes' not in metainfo:
            metainfo = dict(metainfo, classes=tuple(read_class_names(class_names_file)))
        super().__init__(data_root=data_root, metainfo=metainfo, **kwargs)

    def load_data_list(self) -> List[dict]:
        classes = self.metainfo.get('classes')
        split_dir = osp.join(self.metadata_root, self.split)
        infos = read_wsol_split(split_dir, num_classes=len(classes) if classes else None,
                                box_policy=self.box_policy,
                                localization_files=self.localization_files)
        data_list, missing = [], []
        for info in infos:
            info['img_path'] = osp.join(self.data_root, info['img_id'])
            if self.check_images and not osp.isfile(info['img_path']):
                missing.append(info['img_path'])
                continue
            if 'ori_gt_bboxes' in info:
                info['gt_bboxes'] = info['ori_gt_bboxes'].astype('float32')
            if 'mask_paths' in info:
                info['mask_paths'] = [osp.join(self.mask_root, p)
                                      for p in info['mask_paths']]
                if info['ignore_path']:
                    info['ignore_path'] = osp.join(self.mask_root, info['ignore_path'])
            data_list.append(info)
        if missing:
            msg = (f'{split_dir}: {len(missing)} of {len(infos)} image files are '
                   f'missing, e.g. {missing[0]}')
            if not self.skip_missing_images:
                raise FileNotFoundError(msg + ' (skip_missing_images=True drops them)')
            MMLogger.get_current_instance().warning(msg + '; skipped them '
                                                    '(skip_missing_images=True)')
        self.num_skipped_images = len(missing)
        return data_list


@DATASETS.register_module()
class CUBWSOLDataset(WSOLDataset):
    """CUB-200-2011 in the WSOL metadata format (see ``tools/dataset_converters/cub.py``)."""


@DATASETS.register_module()
class ILSVRCWSOLDataset(WSOLDataset):
    """ILSVRC 2012 in the WSOL metadata format (``wsolevaluation/metadata/ILSVRC``)."""


@DATASETS.register_module()
class OpenImagesWSOLDataset(WSOLDataset):
    """OpenImages30k of ``wsolevaluation`` (pixel masks with ignore regions)."""
