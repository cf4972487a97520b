"""The fields tedloc_mm adds to MMPretrain's :class:`~mmpretrain.structures.DataSample`.

This is the one place where each field is defined; every transform, model and metric
of the package reads and writes exactly these names. Shapes are per image (no batch
dimension). "Input pixels" are coordinates in the network input after all geometric
transforms (``metainfo['img_shape']``); "original pixels" are those of the image file
(``metainfo['ori_shape']``).

Ground truth (set by ``PackWSOLInputs``)
    ``gt_label``         LongTensor (1,): class index (MMPretrain's own field).
    ``gt_bboxes``        FloatTensor (N, 4): boxes x0, y0, x1, y1 in input pixels,
                         moved by every geometric transform. N >= 0.
    ``gt_mask``          UInt8Tensor (H, W) or absent: 1 = object pixel (PxAP data).
    ``ignore_mask``      UInt8Tensor (H, W) or absent: 1 = pixel excluded from PxAP.

Metainfo (set by ``PackWSOLInputs``)
    ``img_id``           str: the image's id in the WSOL metadata (its relative path).
    ``img_path``         str: the file that was read.
    ``ori_shape``        (h, w) of the image file; ``img_shape`` (h, w) of the input.
    ``ori_gt_bboxes``    ndarray float64 (N, 4): the boxes as read from the metadata, in
                         original pixels, untouched by transforms. WSOLMetric rescales
                         these to the evaluation size with the protocol's truncation.

Pseudo-labels (training only; set by ``PseudoLabelSampler`` + ``PackWSOLInputs``)
    ``pseudo_label_map`` LongTensor (h', w') on the sampler's grid over the input
                         image: cell (i, j) is the input pixel at its centre,
                         ((j + 1/2) W / w', (i + 1/2) H / h'); the head maps it onto
                         the decoder's grid. 1 = sampled FG pixel (omega+), 0 =
                         sampled BG pixel, -1 = not sampled this step (ignored).

Predictions (set by the model in ``predict`` mode)
    ``pred_score``       FloatTensor (K,): class probabilities, softmax f(h, .).
    ``pred_label``       LongTensor (1,): argmax of ``pred_score``.
    ``pred_map``         FloatTensor (H, W): the localization map in input pixels
                         (``img_shape``), not normalised; WSOLMetric min-max
                         normalises it as the protocol says.
"""

#: the names above, for code that copies or checks them
GT_FIELDS = ('gt_label', 'gt_bboxes', 'gt_mask', 'ignore_mask')
PSEUDO_LABEL_FIELD = 'pseudo_label_map'
PRED_FIELDS = ('pred_score', 'pred_label', 'pred_map')
META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
             'flip_direction', 'ori_gt_bboxes')

#: pseudo_label_map values
PSEUDO_FG, PSEUDO_BG, PSEUDO_IGNORE = 1, 0, -1
