"""Every data set tps-jax knows, as stored: names, builders, splits, labels (no TensorFlow
or JAX imported here).

Storage facts only: how a data set is trained on (sampling, sizes, augmentation, test
views) is the recipe of ``configs/data_table.py``. The config tables, the build app
(``tps_jax.apps.build``), preparing (``input_pipeline.build``) and prediction
(``tps_jax.predict``) read these specs. Adding a data set: docs/extending_datasets.md.
"""
import dataclasses
import re
from typing import Dict, Optional, Sequence, Tuple

# How the video builders store frames, by builder config name: res256 is the paper's
# storage (short side 256, random/centre 224 crops at train/test); res128 is for quick
# runs at 112 pixels. Read by the builders (their BUILDER_CONFIGS) and by prediction.
VIDEO_STORAGE = {
    'res256': dict(min_resize=256, fps=None, max_frames=None, jpeg_quality=90,
                   description='Short side resized to 256 pixels.'),
    'res128': dict(min_resize=128, fps=None, max_frames=None, jpeg_quality=90,
                   description='Short side resized to 128 pixels (for 112-pixel models).'),
}
_VIDEO_CONFIGS = tuple(VIDEO_STORAGE)

# SSv2 classes whose meaning mirrors under a horizontal flip: "... from left to right" /
# "... from right to left" (pulling 86/87, pushing 93/94) and "Turning the camera left /
# right while filming something" (166/167). The official SSv1 config uses the same list.
SS_FLIP_PAIRS = ((86, 87), (93, 94), (166, 167))


def mirrored(name: str) -> str:
  """A label text with left and right swapped: the class a horizontal flip turns it into."""
  return re.sub(r'\b(left|right)\b', lambda m: 'right' if m.group(1) == 'left' else 'left',
                name)


def mirrored_pairs(class_names: Sequence[str]) -> Tuple[Tuple[int, int], ...]:
  """The ``(a, b)`` class pairs whose texts differ by left <-> right only (SS*'s "from left
  to right" / "from right to left", "Turning the camera left / right ..."), so any subset
  or relabelling of SSv2/SSv1 flips the right labels."""
  index = {n: i for i, n in enumerate(class_names)}
  return tuple((i, index[mirrored(n)]) for i, n in enumerate(class_names)
               if index.get(mirrored(n), -1) > i)


# The synthetic set's mirrored pairs: left<->right motion, clockwise<->counter-clockwise.
SYNTHETIC_FLIP_PAIRS = ((0, 1), (6, 7))


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """One data set: how it is built, stored and split, and facts of its label set.

  Attributes:
    name: the name configs use (``base.get_config('ssv2', ...)``).
    tfds_name: registered TFDS name ('' for a TFRecord directory).
    builder_module: module whose import registers the TFDS builder.
    builder_configs: builder config names; the first is the default.
    splits: role (train / eval / test) -> split name.
    class_names_from: where the class names come from (for messages and docs/datasets.md).
    flip_pairs: (a, b): labels that swap under a horizontal flip.
    manual: True when the builder reads a manual directory (a download).
    format: 'tfds' or 'tfrecord'.
  """
  name: str
  tfds_name: str
  builder_module: str
  builder_configs: Tuple[str, ...]
  splits: Dict[str, str]
  class_names_from: str
  flip_pairs: Tuple[Tuple[int, int], ...] = ()
  manual: bool = True
  format: str = 'tfds'

  @property
  def no_flip_classes(self) -> Tuple[int, ...]:
    return tuple(sorted(k for pair in self.flip_pairs for k in pair))

  @property
  def default_builder_config(self) -> Optional[str]:
    return self.builder_configs[0] if self.builder_configs else None


def _splits(eval_split='validation', test='validation'):
  return dict(train='train', eval=eval_split, test=test)


SPECS: Dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec('synthetic', 'reversal_pairs', 'input_pipeline.synthetic', ('small',),
                _splits(test='test'), 'input_pipeline.synthetic.render.CLASS_NAMES',
                SYNTHETIC_FLIP_PAIRS, manual=False),
    DatasetSpec('synthetic_tiny', 'reversal_pairs', 'input_pipeline.synthetic', ('tiny',),
                _splits(test='test'), 'input_pipeline.synthetic.render.CLASS_NAMES',
                SYNTHETIC_FLIP_PAIRS, manual=False),
    DatasetSpec('synthetic_mini', 'reversal_pairs', 'input_pipeline.synthetic', ('mini',),
                _splits(test='test'), 'input_pipeline.synthetic.render.CLASS_NAMES',
                SYNTHETIC_FLIP_PAIRS, manual=False),
    DatasetSpec('ssv2', 'something_something_v2', 'input_pipeline.builders.ssv2',
                _VIDEO_CONFIGS, _splits(),
                'something-something-v2-labels.json (index = its value)', SS_FLIP_PAIRS),
    DatasetSpec('ssv1', 'something_something_v1', 'input_pipeline.builders.ssv1',
                _VIDEO_CONFIGS, _splits(),
                'something-something-v1-labels.csv (index = line)', SS_FLIP_PAIRS),
    DatasetSpec('k400', 'kinetics400', 'input_pipeline.builders.kinetics400',
                _VIDEO_CONFIGS, _splits(), 'sorted labels of the train CSV'),
    DatasetSpec('diving48', 'diving48', 'input_pipeline.builders.diving48',
                _VIDEO_CONFIGS, _splits('test', 'test'),
                'Diving48_vocab.json (the four words joined by spaces)'),
    DatasetSpec('custom', 'custom_videos', 'input_pipeline.builders.custom', _VIDEO_CONFIGS,
                _splits(test='test'),
                'class_names / classes.txt, else the sorted labels of the annotation files'),
    DatasetSpec('tfrecord', '', '', (), _splits(test='test'),
                'manifest.json of the TFRecord directory', manual=False, format='tfrecord'),
)}


def get(name: str) -> DatasetSpec:
  """The spec of a config name ('ssv2') or a TFDS name ('something_something_v2').

  Raises:
    ValueError: unknown name; the message lists the valid ones.
  """
  if name in SPECS:
    return SPECS[name]
  for spec in SPECS.values():
    if spec.tfds_name and spec.tfds_name == name:
      return spec
  raise ValueError(f'unknown data set {name!r}; valid names: {", ".join(SPECS)}')


def buildable() -> Dict[str, DatasetSpec]:
  """Config name -> spec of the data sets built from a manual directory (``build.py``)."""
  return {n: s for n, s in SPECS.items() if s.manual}
