"""tps-jax video input pipeline: TFDS / TFRecord clips -> batches for training and eval.

    info = input_pipeline.get_dataset_info(config)
    train_it = input_pipeline.create_train_iterator(config, start_step=step,
                                                    process_index=i, process_count=n)
    eval_it = input_pipeline.create_eval_iterator(config, split, process_index=i,
                                                  process_count=n)
    video, targets = input_pipeline.mixing.mix_batch(rng, video, targets, config)

Modules, in pipeline order: `features` (format), `readers`, `sampling`, `transforms`,
`randaugment`, `pipeline` (assembly), `mixing` (on device, JAX); `synthetic` is the
embedded data set.
"""
from input_pipeline import mixing
from input_pipeline.pipeline import create_eval_iterator
from input_pipeline.pipeline import create_train_iterator
from input_pipeline.pipeline import DatasetInfo
from input_pipeline.pipeline import get_dataset_info
