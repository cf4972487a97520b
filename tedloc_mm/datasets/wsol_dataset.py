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
from typing import Any, List, Optional

from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope

from tedloc_mm.registry import DATASETS, SCOPE
from tedloc_mm.fileio.image_io import ImageReadError
from tedloc_mm.fileio.class_names import read_class_names
from tedloc_mm.fileio.wsol_metadata import LOCALIZATION_FILES, read_wsol_split

BAD_IMAGE_POLICIES = ('error', 'skip')


def _loader_share() -> int:
    """How many processes split one pass over the data set: ranks x DataLoader workers."""
    from mmengine.dist import get_world_size
    from torch.utils.data import get_worker_info
    info = get_worker_info()
    return get_world_size() * (info.num_workers if info is not None else 1)


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
        bad_image_policy (str): what an image file that cannot be read (missing,
            0-byte, truncated, not an image: an
            :class:`~tedloc_mm.fileio.image_io.ImageReadError` of the pipeline) does.
            ``'error'`` (default): stop with that error, which names the file.
            ``'skip'`` (training only): log the image id and the reason, count it,
            and let MMEngine's ``BaseDataset.__getitem__`` draw another random image
            (its refetch loop, at most ``max_refetch`` tries in a row).
        cam_store (str, optional): the CAM store of this split's pseudo-labels
            (``tools/generate_cams.py --out``); every data info carries it as
            ``cam_store``, where ``LoadCAM`` without a store of its own reads it, so
            pipelines need no path.
        max_bad_image_fraction (float): with ``'skip'``, raise once the distinct bad
            images one loading process has met exceed this fraction of its share of
            the data set. Counts are per process: each rank and each DataLoader worker
            keeps its own, and its share is ``len(dataset) / (world_size x
            num_workers)`` (what it loads per epoch). Default 0.001.
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
                 bad_image_policy: str = 'error',
                 max_bad_image_fraction: float = 0.001,
                 cam_store: Optional[str] = None,
                 **kwargs):
        if bad_image_policy not in BAD_IMAGE_POLICIES:
            raise ValueError(f'bad_image_policy must be one of {BAD_IMAGE_POLICIES}, got '
                             f'{bad_image_policy!r}')
        if bad_image_policy == 'skip' and kwargs.get('test_mode'):
            raise ValueError("bad_image_policy='skip' is a training policy: evaluation "
                             'must see every image of its split (test_mode=True)')
        if not 0 <= max_bad_image_fraction <= 1:
            raise ValueError(f'max_bad_image_fraction must be in [0, 1], got '
                             f'{max_bad_image_fraction}')
        self.bad_image_policy = bad_image_policy
        self.max_bad_image_fraction = max_bad_image_fraction
        #: indices of the images this process found unreadable (skip policy)
        self.bad_image_indices = set()
        self.localization_files = tuple(localization_files)
        self.split = split
        self.metadata_root = metadata_root or osp.join(data_root, 'metadata')
        if class_names_file is None:
            class_names_file = osp.join(self.metadata_root, 'class_names.txt')
        self.class_names_file = class_names_file
        self.mask_root = mask_root or data_root
        self.box_policy = box_policy
        self.cam_store = cam_store
        self.check_images = check_images
        self.skip_missing_images = skip_missing_images
        metainfo = kwargs.pop('metainfo', None) or {}
        if class_names_file and 'classes' not in metainfo:
            metainfo = dict(metainfo, classes=tuple(read_class_names(class_names_file)))
        # the pipeline's transforms build in our scope, whatever the config's
        with DefaultScope.overwrite_default_scope(SCOPE):
            super().__init__(data_root=data_root, metainfo=metainfo, **kwargs)

    def load_data_list(self) -> List[dict]:
        classes = self.metainfo.get('classes')
        split_dir = osp.join(self.metadata_root, self.split)
        infos = read_wsol_split(split_dir, num_classes=len(classes) if classes else None,
                                box_policy=self.box_policy,
                                localization_files=self.localization_files,
                                class_names_file=self.class_names_file or None)
        data_list, missing = [], []
        for info in infos:
            info['img_path'] = osp.join(self.data_root, info['img_id'])
            if self.cam_store is not None:
                info['cam_store'] = self.cam_store
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

    def prepare_data(self, idx) -> Any:
        """The pipeline's output for image ``idx``; ``None`` (MMEngine then draws another
        image) when the image is unreadable and ``bad_image_policy='skip'``."""
        if self.bad_image_policy == 'error':
            return super().prepare_data(idx)
        try:
            return super().prepare_data(idx)
        except ImageReadError as e:
            self._count_bad_image(idx, e)
            return None

    def _count_bad_image(self, idx: int, error: ImageReadError):
        self.bad_image_indices.add(idx)
        n_bad = len(self.bad_image_indices)
        share = len(self) / _loader_share()
        limit = self.max_bad_image_fraction * share
        MMLogger.get_current_instance().warning(
            f'skipped unreadable image {error.img_id or error.path!r} ({error.reason}); '
            f'{n_bad} bad image(s) in this process so far, limit {limit:g} '
            f"(bad_image_policy='skip', max_bad_image_fraction="
            f'{self.max_bad_image_fraction})')
        if n_bad > limit:
            raise RuntimeError(
                f'{n_bad} unreadable images met by this loading process exceed '
                f'max_bad_image_fraction={self.max_bad_image_fraction} of its share of '
                f'{share:g} images of {self.data_root!r} (split {self.split!r}); the '
                f'latest: {error}. Fix or remove the files, or raise the fraction.'
            ) from error


@DATASETS.register_module()
class CUBWSOLDataset(WSOLDataset):
    """CUB-200-2011 in the WSOL metadata format (see ``tools/dataset_converters/cub.py``)."""


@DATASETS.register_module()
class ILSVRCWSOLDataset(WSOLDataset):
    """ILSVRC 2012 in the WSOL metadata format (``wsolevaluation/metadata/ILSVRC``)."""


@DATASETS.register_module()
class OpenImagesWSOLDataset(WSOLDataset):
    """OpenImages30k of ``wsolevaluation`` (pixel masks with ignore regions)."""
