"""The tiny classifier runs shared by the tool tests (tests/test_tools/): its config, a
folder data set of 3 colour classes, and how checkpoints are read back."""
import os
import os.path as osp

import cv2
import numpy as np

CONFIG = 'tests/data/configs/tiny_classifier.py'


def _make_folder_dataset(root):
    """3 classes told apart by colour; 8 train and 5 test images per class, 32 px."""
    rng = np.random.default_rng(0)
    colours = [(255, 40, 40), (40, 255, 40), (40, 40, 255)]
    for split, n in (('train', 8), ('test', 5)):
        for c, colour in enumerate(colours):
            os.makedirs(osp.join(root, split, f'class{c}'), exist_ok=True)
            for i in range(n):
                img = rng.integers(0, 80, (32, 32, 3)).astype(np.uint8)
                img[8:24, 8:24] = colour[::-1]  # BGR on disk
                cv2.imwrite(osp.join(root, split, f'class{c}', f'{i}.png'), img)


def _data_opts(data_root):
    return [f'train_dataloader.dataset.data_root={data_root}',
            f'test_dataloader.dataset.data_root={data_root}',
            f'val_dataloader.dataset.data_root={data_root}']


def _state(path):
    # the loader of --resume / load_from: Runner checkpoints load weights_only=True
    from mmengine.runner.checkpoint import CheckpointLoader
    return CheckpointLoader.load_checkpoint(path, map_location='cpu')['state_dict']
