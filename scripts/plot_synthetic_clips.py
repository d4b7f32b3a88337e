r"""Writes a PNG grid of synthetic `reversal_pairs` clips, one row per class.

  .venv/bin/python scripts/plot_synthetic_clips.py --out=docs/synthetic_clips.png

Clips are rendered with the same seeds as the builder's train split (so they are the
stored clips before JPEG encoding); every `--stride`-th frame is shown.
"""
import argparse
import sys
from pathlib import Path

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from input_pipeline.synthetic import render  # pylint: disable=g-import-not-at-top
from input_pipeline.synthetic import reversal_pairs  # pylint: disable=g-import-not-at-top


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default='docs/synthetic_clips.png')
  parser.add_argument('--config', default='small', help='builder config: tiny|small|large')
  parser.add_argument('--stride', type=int, default=4, help='show every stride-th frame')
  args = parser.parse_args()

  cfg = {c.name: c for c in reversal_pairs.ReversalPairs.BUILDER_CONFIGS}[args.config]
  shown = range(0, cfg.spec.num_frames, args.stride)
  num_classes = len(render.CLASS_NAMES)
  fig, axes = plt.subplots(num_classes, len(shown), figsize=(len(shown) * 0.9,
                                                              num_classes * 0.95))
  for label in range(num_classes):
    # Index `label` of the train split has class `label` (labels go round robin).
    frames = render.render_clip((cfg.seed, reversal_pairs.SPLIT_IDS['train'], label),
                                render.clip_label(label), cfg.spec)
    for col, t in enumerate(shown):
      ax = axes[label, col]
      ax.imshow(frames[t])
      ax.set_xticks([])
      ax.set_yticks([])
      if col == 0:
        ax.set_ylabel(f'{label} {render.CLASS_NAMES[label]}', rotation=0, ha='right',
                      va='center', fontsize=7)
      if label == 0:
        ax.set_title(f't={t}', fontsize=7)
  fig.suptitle(f'reversal_pairs/{args.config}: odd rows are the time reversal of even '
               'rows\' distribution', fontsize=8)
  fig.subplots_adjust(left=0.3, right=0.99, top=0.93, bottom=0.01, wspace=0.05, hspace=0.05)
  Path(args.out).parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(args.out, dpi=80)
  print(f'wrote {args.out}')


if __name__ == '__main__':
  main()
