"""Builds one of the tps-jax TFDS data sets from its manual directory.

The library of ``python -m tps_jax.apps.build`` (its command lines are there). Data sets
(``input_pipeline.registry``; the config name or the TFDS name): ssv2
(something_something_v2), ssv1, k400 (kinetics400), diving48, custom (custom_videos);
see each builder's MANUAL_DOWNLOAD_INSTRUCTIONS, or docs/datasets.md. Videos are decoded,
resized and JPEG-encoded in ``num_workers`` processes, with a progress bar and log lines
in clips/s with the time left; the result is read with ``tfds.load(name, data_dir=...)``.

A build that stops (a bad video, Ctrl-C) keeps what it encoded: the same call resumes.
Building again into a data dir prepared from other inputs (an annotation fixed, a video
replaced) is refused with what changed; ``overwrite`` rebuilds.
"""
from input_pipeline import builders


def build(dataset, manual_dir, *, data_dir=None, config=None, num_workers=None,
          skip_unreadable=False, overwrite=False, class_names=None,
          max_examples_per_split=None):
  """Prepares the data set and returns its builder.

  Already prepared data is reused when it was built from the same inputs; from other
  inputs it is refused (``base.StaleDataError``) unless ``overwrite``.

  Args:
    dataset: a registry name (ssv2) or TFDS name (something_something_v2).
    manual_dir: the folder holding the downloaded videos and annotation files.
    data_dir: where TFDS writes the data set (None: TFDS's default).
    config: builder config name (None: the builder's default, res256).
    num_workers: decoding processes (None: all cores).
    skip_unreadable: skip and list missing/undecodable videos instead of stopping.
    overwrite: rebuild prepared data (after changing the inputs).
    class_names: custom_videos only: a file of class names, one per line.
    max_examples_per_split: write at most this many clips per split.

  Returns:
    The prepared ``tfds.core.DatasetBuilder``.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  cls = builders.builder_class(dataset)
  kwargs = dict(data_dir=data_dir, config=config, num_workers=num_workers,
                skip_unreadable=skip_unreadable)
  if class_names is not None:
    if cls.name != 'custom_videos':
      raise ValueError('class_names only applies to custom_videos')
    kwargs['class_names'] = class_names
  builder = cls(**kwargs)
  builder.reused = builder.is_prepared() and not overwrite  # for the summary line
  mode = (tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if overwrite else
          tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=manual_dir, max_examples_per_split=max_examples_per_split,
      download_mode=mode))
  return builder
