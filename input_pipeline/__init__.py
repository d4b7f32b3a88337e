"""tps-jax video input pipeline: TFDS / TFRecord clips -> batches for training and eval.

    info = input_pipeline.get_dataset_info(config)
    train_it = input_pipeline.create_train_iterator(config, info=info, start_step=step,
                                                    process_index=i, process_count=n)
    eval_it = input_pipeline.create_eval_iterator(config, split, info=info,
                                                  process_index=i, process_count=n)

Modules, in pipeline order: `registry` (every data set, described once), `features`
(format), `readers`, `sampling`, `transforms`, `randaugment`, `pipeline` (assembly);
`builders` and `synthetic` make the data sets. Batch mixing runs on device, in
`tps_jax.mixing`: nothing here imports JAX, and `registry` imports no TensorFlow (the
names below load the pipeline, and TensorFlow, when first used).
"""
import importlib

_PIPELINE_NAMES = ('create_eval_iterator', 'create_train_iterator', 'DatasetInfo',
                   'get_dataset_info')


def __getattr__(name):
  if name in _PIPELINE_NAMES:
    return getattr(importlib.import_module('input_pipeline.pipeline'), name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
