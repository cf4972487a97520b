"""Back-ends of the multi-step drivers (tools/run_synthetic_pipeline.py,
tools/reproduce_paper.py): the step runner, and the reproduction's input checks and
smoke-run files. The top layer: drivers chain the tools, which use everything below."""
from .config_options import (ConfigOptionError, config_values, evaluator_options,
                             find_by_type, hook_options, schedule_options,
                             transform_options)
from .steps import StepFailed, StepRunner, insert_before_options

__all__ = ['StepFailed', 'StepRunner', 'insert_before_options', 'ConfigOptionError',
           'config_values', 'evaluator_options', 'find_by_type', 'hook_options', 'schedule_options',
           'transform_options']
