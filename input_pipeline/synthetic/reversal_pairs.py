"""TFDS builder of `reversal_pairs`: the embedded synthetic temporal-reasoning data set.

Ten classes in five time-reversal pairs, rendered procedurally (no download):

=====  ==========================  ==========================  =====================
pair   forward (even label)        reversed (odd label)        horizontal flip
=====  ==========================  ==========================  =====================
0      0 moving_left_to_right      1 moving_right_to_left      0 <-> 1 swap
1      2 moving_up                 3 moving_down               invariant
2      4 approaching (growing)     5 receding (shrinking)      invariant
3      6 rotating_clockwise        7 rotating_counterclockwise 6 <-> 7 swap
4      8 appearing (fade / grow)   9 disappearing              invariant
=====  ==========================  ==========================  =====================

A clip of an odd class is the exact time reversal of a clip drawn from the even class's
distribution, plus i.i.d. per-frame noise, so a frame-order-blind model cannot beat 50%.
Object shape (checkerboard-textured), colour (bright, random hue), size, speed, timing and
start position are random; rotating objects turn about a pivot near one end, like a clock
hand. Backgrounds are dark, muted colour fields with stripes and static clutter; 0-2 dimmer
distractor shapes wander on stationary random walks (no net direction); brightness
flickers; i.i.d. pixel noise; JPEG-encoded frames. The object is kept brighter than
everything else on purpose: the set tests the direction of time, not figure-ground
separation, and must be learnable from scratch by a small model on a CPU in minutes.
Labels go round robin over the 10 classes, so every split is exactly balanced; split and
clip index seed each clip, so the data set is identical on every machine.

Configs: `tiny` (tests, seconds), `mini` (the CI guard, 8 x 32 x 32: the demo's model
input, rendered at that size), `small` (the CPU demo, 32 x 64 x 64), `large`.
"""
import dataclasses
import io
import multiprocessing
import os

import tensorflow_datasets as tfds

from input_pipeline import features
from input_pipeline.synthetic import render

SPLIT_IDS = {'train': 0, 'validation': 1, 'test': 2}


@dataclasses.dataclass(eq=False)
class ReversalPairsConfig(tfds.core.BuilderConfig):
  """Size of the renders and of each split."""
  spec: render.RenderSpec = render.RenderSpec()
  num_examples: tuple[tuple[str, int], ...] = ()  # (split, count) pairs
  seed: int = 0


class ReversalPairs(tfds.core.GeneratorBasedBuilder):
  """Synthetic clips whose classes differ only in the direction of time."""

  VERSION = tfds.core.Version('1.1.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.',
                   '1.1.0': 'Dark muted backgrounds, bright objects, dimmer distractors: '
                            'learnable from scratch on a CPU.'}
  BUILDER_CONFIGS = [
      ReversalPairsConfig(
          name='tiny', description='16 frames of 32x32, 40/20/20 clips: for tests.',
          spec=render.RenderSpec(num_frames=16, height=32, width=32),
          num_examples=(('train', 40), ('validation', 20), ('test', 20))),
      ReversalPairsConfig(
          name='mini', description='8 frames of 32x32, 2000/500/500 clips: the CI guard.',
          spec=render.RenderSpec(num_frames=8, height=32, width=32),
          num_examples=(('train', 2000), ('validation', 500), ('test', 500))),
      ReversalPairsConfig(
          name='small', description='32 frames of 64x64, 4000/1000/1000 clips: the CPU demo.',
          spec=render.RenderSpec(num_frames=32, height=64, width=64),
          num_examples=(('train', 4000), ('validation', 1000), ('test', 1000))),
      ReversalPairsConfig(
          name='large', description='32 frames of 112x112, 20000/2000/2000 clips.',
          spec=render.RenderSpec(num_frames=32, height=112, width=112),
          num_examples=(('train', 20000), ('validation', 2000), ('test', 2000))),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=features.tfds_features(render.CLASS_NAMES),
        metadata=tfds.core.MetadataDict(flip_pairs=render.FLIP_PAIRS),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    return {split: self._generate_examples(split, count)
            for split, count in self.builder_config.num_examples}

  def _generate_examples(self, split, count):
    cfg = self.builder_config
    jobs = (((cfg.seed, SPLIT_IDS[split]), i, cfg.spec) for i in range(count))
    for index, label, jpegs in _imap(render.render_encoded, jobs, count):
      yield index, {
          'video': [io.BytesIO(j) for j in jpegs],
          'label': label,
          'id': f'{split}_{index:06d}',
      }


def _imap(fn, jobs, count):
  """Ordered map over worker processes (fork: the workers use only numpy and PIL)."""
  workers = min(os.cpu_count() or 1, 8)
  if workers == 1 or count < 200 or 'fork' not in multiprocessing.get_all_start_methods():
    yield from map(fn, jobs)
    return
  with multiprocessing.get_context('fork').Pool(workers) as pool:
    yield from pool.imap(fn, jobs, chunksize=32)
