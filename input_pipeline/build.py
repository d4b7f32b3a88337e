"""Preparing a data set: the one place tps-jax builds data (:func:`prepare`).

Training prepares first (``main.py`` on a fresh machine renders the synthetic set, or
builds a download from ``config.dataset.manual_dir``), then asks
``pipeline.get_dataset_info``, which only reads what is prepared. The build app
(``python -m tps_jax.apps.build``, its command lines are there) calls :func:`prepare` too.
Data sets: ``input_pipeline.registry``; what each download's manual dir holds: its
builder's MANUAL_DOWNLOAD_INSTRUCTIONS, or docs/datasets.md. Videos are decoded, resized
and JPEG-encoded in ``num_workers`` processes, with a progress bar and log lines in clips/s
with the time left.

A build that stops (a bad video, Ctrl-C) keeps what it encoded: the same call resumes.
Building again into a data dir prepared from other inputs (an annotation fixed, a video
replaced) is refused with what changed; ``overwrite`` rebuilds.
"""
import importlib

from absl import logging

from input_pipeline import builders
from input_pipeline import features
from input_pipeline import registry


def tfds_builder(dataset_config, **kwargs):
  """The TFDS builder of ``config.dataset``, registered, prepared or not.

  Args:
    dataset_config: ``config.dataset``.
    **kwargs: for the video builders (``num_workers``, ``class_names``).
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  d = dataset_config
  if _manual(d):  # the video builders: skip_unreadable applies
    kwargs['skip_unreadable'] = d.skip_unreadable
  importlib.import_module(d.builder_module)  # registers the builder
  return tfds.builder(d.tfds_name, data_dir=d.data_dir, config=d.builder_config, **kwargs)


def prepared_builder(dataset_config):
  """:func:`tfds_builder` of prepared data; never prepares (``get_dataset_info`` reads it).

  Raises:
    features.NotPreparedError: one line naming the data dir and how to prepare it.
  """
  d = dataset_config
  builder = tfds_builder(d)
  if builder.is_prepared():
    return builder
  _refuse_other_configs(d, builder)
  root, what = builder.data_dir_root, _name(builder)
  if _manual(d):
    how = (f'build it with python -m tps_jax.apps.build --dataset={d.name} '
           f'--manual_dir=DOWNLOAD --data_dir={root} --builder_config={_config_name(builder)}, '
           f'or main.py builds it from config.dataset.manual_dir')
  else:
    how = 'main.py prepares it on first use (input_pipeline.prepare(config.dataset))'
  raise features.NotPreparedError(f'{d.name}: {what} is not prepared under {root}: {how}')


def prepare(dataset_config, *, explicit=False, overwrite=False, num_workers=None,
            class_names=None, max_examples_per_split=None):
  """Prepares ``config.dataset`` unless it is, and returns its TFDS builder.

  Not prepared: the synthetic set is rendered, a download built from
  ``config.dataset.manual_dir`` (honouring ``skip_unreadable``). Prepared: reused; with a
  manual dir, after checking that it was built from the inputs the dir holds now
  (``base.StaleDataError`` in one line, unless ``overwrite``). A TFRecord directory is
  written by whoever made it: nothing to do.

  Args:
    dataset_config: ``config.dataset``.
    explicit: the build app's call, for a builder config named on purpose. Training
      (False) refuses in one line when another builder config of the data set is
      prepared (res128 there, res256 asked for: a multi-hour build that was probably not
      meant) and names a missing manual dir as the config field.
    overwrite: rebuild prepared data (after changing the inputs).
    num_workers: decoding processes (None: all cores).
    class_names: custom only: a file of class names, one per line.
    max_examples_per_split: write at most this many clips per split (a dry run).

  Returns:
    The prepared ``tfds.core.DatasetBuilder`` (None for a TFRecord directory); its
    ``reused`` is True when data already prepared was kept (the build app's summary).

  Raises:
    FileNotFoundError: training's refusals above (one line).
    builders.BuildError: bad manual data (one line); ``builders.Interrupted`` on Ctrl-C.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  d = dataset_config
  if d.format != 'tfds':
    return None
  kwargs = {} if num_workers is None else dict(num_workers=num_workers)
  if class_names is not None:
    if d.tfds_name != 'custom_videos':
      raise ValueError('class_names only applies to custom_videos')
    kwargs['class_names'] = class_names
  builder = tfds_builder(d, **kwargs)
  prepared = builder.is_prepared()
  have_download = bool(d.manual_dir) and tf.io.gfile.isdir(d.manual_dir)
  if not prepared and not explicit:
    _refuse_other_configs(d, builder)
    if _manual(d) and not have_download:
      raise FileNotFoundError(
          f'{d.name}: not prepared under {builder.data_dir_root} and '
          f'config.dataset.manual_dir={d.manual_dir!r} is not a directory (docs/datasets.md, '
          f'"The paper\'s data sets": what the manual dir of {d.tfds_name} holds)')
  builder.reused = prepared and not overwrite
  if builder.reused and not (_manual(d) and have_download):
    return builder  # nothing to compare it with
  if not prepared:
    logging.info('%s: preparing %s in %s', d.name, _name(builder), builder.data_dir_root)
  mode = (tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if overwrite else
          tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
  try:
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=d.manual_dir, try_download_gcs=False, download_mode=mode,
        max_examples_per_split=max_examples_per_split))
  except KeyboardInterrupt:  # one line for main.py; the build app exits 130
    raise builders.Interrupted(
        f'{d.name}: preparing {d.tfds_name} was interrupted (Ctrl-C); the clips encoded '
        f'so far are kept: run the same command again to resume') from None
  return builder


def _manual(d):
  """Built from a download (the video builders), per the registry."""
  spec = registry.SPECS.get(d.name)
  return bool(spec and spec.manual)


def _config_name(builder):
  return builder.builder_config.name if builder.builder_config else None


def _name(builder):
  return '/'.join(filter(None, (builder.name, _config_name(builder))))


def _refuse_other_configs(d, builder):
  """One line when another builder config of the data set is prepared in the data dir."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  spec = registry.SPECS.get(d.name)
  name, root = _config_name(builder), builder.data_dir_root
  others = [c for c in (spec.builder_configs if spec else ()) if c != name
            and tfds.builder(d.tfds_name, data_dir=d.data_dir, config=c).is_prepared()]
  if others:
    raise features.NotPreparedError(
        f'{d.name}: builder config {name} is not prepared under {root} but '
        f'{", ".join(others)} is: set config.dataset.builder_config={others[0]} (and the '
        f'input sizes to match), or build {name} first (python -m tps_jax.apps.build '
        f'--dataset={d.name} --manual_dir=... --data_dir={root} --builder_config={name})')
