"""tps-jax video input pipeline: TFDS / TFRecord clips -> batches for training and eval.

    input_pipeline.prepare(config.dataset)  # main.py: renders or builds it if it is not
    info = input_pipeline.get_dataset_info(config)  # reads what is prepared
    train_it = input_pipeline.create_train_iterator(config, info=info, start_step=step,
                                                    process_index=i, process_count=n)
    eval_it = input_pipeline.create_eval_iterator(config, split, info=info,
                                                  process_index=i, process_count=n)

Modules, in pipeline order: `registry` (every data set, described once), `features`
(format), `readers`, `sampling`, `transforms`, `randaugment`, `pipeline` (assembly);
`builders` and `synthetic` make the data sets, `build` prepares them. Batch mixing runs
on device, in `tps_jax.mixing`: nothing here imports JAX, and `registry` imports no
TensorFlow (the names below load their module, and TensorFlow, when first used).
"""
import importlib

_MODULES = dict(create_eval_iterator='pipeline', create_train_iterator='pipeline',
                DatasetInfo='pipeline', get_dataset_info='pipeline', prepare='build')


def __getattr__(name):
  if name in _MODULES:
    return getattr(importlib.import_module(f'input_pipeline.{_MODULES[name]}'), name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
