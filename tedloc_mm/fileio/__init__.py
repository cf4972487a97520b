"""Things on disk: images, WSOL metadata, class names, the CAM store, anchor files and
checkpoints (read without running code from them), label PNGs exported for
MMSegmentation.

The bottom layer: it imports nothing else of tedloc_mm, and importing this package
imports none of its modules (names are resolved on first use), so that the evaluator,
which needs the metadata reader only, starts without torch.
"""
import importlib

_EXPORTS = {
    'image_io': ('IMAGE_SUFFIXES', 'ImageReadError', 'MissingImageError', 'decode_image', 'read_image'),
    'wsol_metadata': ('LOCALIZATION_FILES', 'WSOLMetadataError', 'read_wsol_split'),
    'class_names': ('ClassNamesError', 'check_unique_names', 'class_names_from_folders',
                    'clean_class_name', 'read_class_names'),
    'wsol_writer': ('WSOLSplitWriter', 'mask_to_box', 'write_image', 'write_lines'),
    'cam_store': ('CAMStore', 'CAMStoreWriter', 'open_cam_store', 'quantize_cam'),
    'anchor_file': ('load_anchor_file', 'save_anchor_file'),
    'seg_labels': ('IGNORE_INDEX', 'SegLabelError', 'check_label', 'read_label_png',
                   'seg_classes', 'voc_palette', 'write_label_png'),
    'seg_layout': ('SegExportWriter', 'read_seg_meta'),
    'checkpoint': ('CheckpointReadError', 'UnsafeCheckpointError', 'TRUST_ENV',
                   'load_local_checkpoint', 'trusted_checkpoints', 'is_trusted_checkpoint'),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f'{__name__}.{_WHERE[name]}'), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
