r"""Builds one of the tps-jax TFDS data sets from its manual directory.

  python -m input_pipeline.build --dataset=ssv2 --manual_dir=/data/ssv2 \
      --data_dir=~/tensorflow_datasets [--config=res128] [--num_workers=16] \
      [--skip_unreadable] [--overwrite]

Data sets (``input_pipeline.registry``; the config name or the TFDS name): ssv2
(something_something_v2), ssv1, k400 (kinetics400), diving48, custom (custom_videos);
see each builder's MANUAL_DOWNLOAD_INSTRUCTIONS, or the README. Videos are decoded,
resized and JPEG-encoded in --num_workers processes, with a progress bar and log lines
in clips/s with the time left; the result is read with ``tfds.load(name, data_dir=...)``.

A build that stops (a bad video, Ctrl-C) keeps what it encoded: the same command
resumes. Building again into a data dir prepared from other inputs (an annotation
fixed, a video replaced) is refused with what changed; --overwrite rebuilds.
"""
import sys
import time

from absl import app
from absl import flags

from input_pipeline import builders
from input_pipeline import registry

_DATASET = flags.DEFINE_enum(
    'dataset', None, sorted(set(registry.buildable()) | set(builders.BUILDERS)),
    'Data set: a configs/data_table.py name or its TFDS name.')
_MANUAL_DIR = flags.DEFINE_string('manual_dir', None, 'Folder with the downloaded data.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data dir (default: TFDS\'s).')
_CONFIG = flags.DEFINE_string('config', None, 'Builder config (res256 default, res128).')
_NUM_WORKERS = flags.DEFINE_integer('num_workers', None,
                                    'Decoding processes (default: all cores; 0: none).')
_SKIP = flags.DEFINE_bool('skip_unreadable', False,
                          'Skip missing/empty/truncated/undecodable videos, listed in '
                          'skipped_<split>.txt.')
_OVERWRITE = flags.DEFINE_bool('overwrite', False,
                               'Rebuild even if the data dir holds this data set already.')
_CLASS_NAMES = flags.DEFINE_string('class_names', None,
                                   'custom_videos: file of class names, one per line.')
_MAX_EXAMPLES = flags.DEFINE_integer('max_examples_per_split', None,
                                     'Write at most this many clips per split (a dry run).')
flags.mark_flags_as_required(['dataset', 'manual_dir'])


def build(dataset, manual_dir, *, data_dir=None, config=None, num_workers=None,
          skip_unreadable=False, overwrite=False, class_names=None,
          max_examples_per_split=None):
  """Prepares the data set and returns its builder.

  Already prepared data is reused when it was built from the same inputs; from other
  inputs it is refused (``_common.StaleDataError``) unless ``overwrite``.

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
      raise ValueError('--class_names only applies to --dataset=custom_videos')
    kwargs['class_names'] = class_names
  builder = cls(**kwargs)
  builder.reused = builder.is_prepared() and not overwrite  # for the summary line
  mode = (tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if overwrite else
          tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=manual_dir, max_examples_per_split=max_examples_per_split,
      download_mode=mode))
  return builder


def main(argv):
  del argv
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  tfds.disable_progress_bar()  # ours counts clips/s; TFDS's would draw over it
  start = time.time()
  try:
    builder = build(_DATASET.value, _MANUAL_DIR.value, data_dir=_DATA_DIR.value,
                    config=_CONFIG.value, num_workers=_NUM_WORKERS.value,
                    skip_unreadable=_SKIP.value, overwrite=_OVERWRITE.value,
                    class_names=_CLASS_NAMES.value,
                    max_examples_per_split=_MAX_EXAMPLES.value)
  except builders.BuildError as e:
    sys.exit(f'error: {e}')  # already one line naming the data set, split and file
  except KeyboardInterrupt:
    sys.exit('interrupted: the clips encoded so far are kept; run the same command again '
             'to resume')
  info = builder.info
  splits = ', '.join(f'{s} {info.splits[s].num_examples}' +
                     (f' (+{n} skipped)' if (n := info.metadata.get(f'skipped_{s}')) else '')
                     for s in info.splits)
  total = sum(info.splits[s].num_examples for s in info.splits)
  seconds = time.time() - start
  how = ('already prepared from these inputs, reused' if builder.reused else
         f'built in {seconds:.0f} s, {total / max(seconds, 1e-9):.1f} clips/s')
  print(f'{builder.name}/{builder.builder_config.name}: '
        f'{info.features["label"].num_classes} classes, {splits} clips in {builder.data_dir} '
        f'({how})')

if __name__ == '__main__':
  app.run(main)
