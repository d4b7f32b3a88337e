r"""Builds one of the tps-jax TFDS data sets from its manual directory (``build.prepare``).

    python -m tps_jax.apps.build --dataset=ssv2 --manual_dir=/data/ssv2 \
        --data_dir=~/tensorflow_datasets [--builder_config=res128] [--num_workers=16] \
        [--skip_unreadable] [--overwrite]
    python -m tps_jax.apps.build --config=configs/ssv2_tps.py --manual_dir=/data/ssv2 \
        --data_dir=~/tensorflow_datasets

Data sets (``input_pipeline.registry``; the config name or the TFDS name): ssv2
(something_something_v2), ssv1, k400 (kinetics400), diving48, custom (custom_videos);
see each builder's MANUAL_DOWNLOAD_INSTRUCTIONS, or docs/datasets.md. With ``--config``, the
data set, builder config, manual and data dirs and ``skip_unreadable`` are the config's
``dataset`` section (the data ``main.py --config=...`` then reads); a flag given as well
wins. Videos are decoded, resized and JPEG-encoded in --num_workers processes, with a
progress bar and log lines in clips/s with the time left.

A build that stops (a bad video, Ctrl-C) keeps what it encoded: the same command
resumes. Building again into a data dir prepared from other inputs (an annotation
fixed, a video replaced) is refused with what changed; --overwrite rebuilds.
"""
import sys
import time

from absl import app
from absl import flags
from ml_collections import config_flags

from configs import data_table
from input_pipeline import build
from input_pipeline import builders
from input_pipeline import registry
from tps_jax import apps

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'experiment config: build its dataset section', lock_config=True)
_DATASET = flags.DEFINE_enum(
    'dataset', None, sorted(set(registry.buildable()) | set(builders.BUILDERS)),
    'data set: a configs/data_table.py name or its TFDS name')
_BUILDER_CONFIG = flags.DEFINE_string('builder_config', None,
                                      'builder config (res256 default, res128)')
_MANUAL_DIR = flags.DEFINE_string('manual_dir', None, 'folder with the downloaded data')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data dir (default: TFDS\'s)')
_NUM_WORKERS = flags.DEFINE_integer('num_workers', None,
                                    'decoding processes (default: all cores; 0: none)')
_SKIP = flags.DEFINE_bool('skip_unreadable', None,
                          'skip missing/empty/truncated/undecodable videos, listed in '
                          'skipped_<split>.txt')
_OVERWRITE = flags.DEFINE_bool('overwrite', False,
                               'rebuild even if the data dir holds this data set already')
_CLASS_NAMES = flags.DEFINE_string('class_names', None,
                                   'custom_videos: file of class names, one per line')
_MAX_EXAMPLES = flags.DEFINE_integer('max_examples_per_split', None,
                                     'write at most this many clips per split (a dry run)')


def _arguments():
  """``(dataset section, kwargs of build.prepare)`` from the flags and ``--config``."""
  d = _CONFIG.value.dataset if _CONFIG.value is not None else None
  if d is not None:
    if _DATASET.present and registry.get(_DATASET.value).name != d.name:
      sys.exit(f'build: --dataset={_DATASET.value} but the config builds {d.name}: '
               'pass one of them')
    if d.name not in registry.buildable():
      sys.exit(f'build: config.dataset.name={d.name!r} is not built from a manual '
               f'directory (main.py prepares it); built ones: '
               f'{", ".join(registry.buildable())}')
  elif _DATASET.value is not None:
    d = data_table.dataset_config(registry.get(_DATASET.value).name)
  for flag, field in ((_MANUAL_DIR, 'manual_dir'), (_DATA_DIR, 'data_dir'),
                      (_BUILDER_CONFIG, 'builder_config'), (_SKIP, 'skip_unreadable')):
    if d is not None and flag.present:  # a flag given as well wins
      d[field] = flag.value
  if d is None or d.manual_dir is None:
    sys.exit('build: pass --dataset (or --config) and --manual_dir (or '
             '--config.dataset.manual_dir)')
  if _CLASS_NAMES.value and builders.builder_class(d.name).name != 'custom_videos':
    sys.exit(f'build: --class_names only applies to custom_videos, not {d.name}')
  return d, dict(num_workers=_NUM_WORKERS.value, overwrite=_OVERWRITE.value,
                 class_names=_CLASS_NAMES.value, max_examples_per_split=_MAX_EXAMPLES.value)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  dataset, kwargs = _arguments()
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  tfds.disable_progress_bar()  # ours counts clips/s; TFDS's would draw over it
  start = time.time()
  try:
    builder = build.prepare(dataset, explicit=True, **kwargs)
  except (builders.Interrupted, KeyboardInterrupt):  # 130, as any program stopped by SIGINT
    print('interrupted: the clips encoded so far are kept; run the same command again '
          'to resume', file=sys.stderr)
    sys.exit(130)
  except builders.BuildError as e:
    sys.exit(f'error: {e}')  # already one line naming the data set, split and file
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
  apps.run(main, 'build')
