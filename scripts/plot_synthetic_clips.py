r"""Writes a PNG grid of synthetic `reversal_pairs` clips, one row per class.

  .venv/bin/python scripts/plot_synthetic_clips.py --out=docs/synthetic_clips.png

Clips are rendered with the same seeds as the builder's train split (so they are the
stored clips before JPEG encoding) and drawn by ``tps_jax.visualize.plot_clips`` (the
notebook's figure), ``--frames`` evenly spaced frames each.
"""
import sys
from pathlib import Path

from absl import app
from absl import flags
import matplotlib
matplotlib.use('Agg')

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from input_pipeline.synthetic import render  # pylint: disable=g-import-not-at-top
from input_pipeline.synthetic import reversal_pairs  # pylint: disable=g-import-not-at-top
from tps_jax import visualize  # pylint: disable=g-import-not-at-top
from tps_jax import apps  # pylint: disable=g-import-not-at-top

FLAGS = flags.FLAGS
flags.DEFINE_string('out', 'docs/synthetic_clips.png', 'PNG to write')
flags.DEFINE_enum('builder_config', 'small', ['tiny', 'small', 'large'], 'reversal_pairs config')
flags.DEFINE_integer('frames', 8, 'frames shown per clip')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  args = FLAGS

  cfg = {c.name: c for c in reversal_pairs.ReversalPairs.BUILDER_CONFIGS}[args.builder_config]
  labels = list(range(len(render.CLASS_NAMES)))
  # Index `label` of the train split has class `label` (labels go round robin).
  clips = [render.render_clip((cfg.seed, reversal_pairs.SPLIT_IDS['train'], label),
                              render.clip_label(label), cfg.spec) for label in labels]
  fig = visualize.plot_clips(clips, labels, render.CLASS_NAMES, num_shown_frames=args.frames)
  fig.suptitle(f'reversal_pairs/{args.builder_config}: odd rows are the time reversal of even '
               'rows\' distribution', fontsize=8)
  fig.subplots_adjust(top=0.93)
  Path(args.out).parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(args.out, dpi=80)
  print(f'wrote {args.out}')


if __name__ == '__main__':
  apps.run(main, 'scripts/plot_synthetic_clips.py')
