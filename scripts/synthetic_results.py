"""Runs the default run and its baselines, and writes the README's results table.

    python scripts/synthetic_results.py                      # tps swin2d tsm video_swin
    python scripts/synthetic_results.py --archs=tps,swin2d --data_dir=/tmp/tfds

Each architecture trains with ``configs/synthetic_<arch>.py`` through ``main.py`` (one
subprocess each, so each is timed like the README's command), then the table of
validation top-1, GFLOPs per clip (XLA's count for one eval clip) and train step time is
written to ``docs/synthetic_results.md`` and ``docs/synthetic_results.json``.
"""
import json
import os
import platform
import subprocess
import sys
import time

from absl import app
from absl import flags
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

flags.DEFINE_list('archs', ['tps', 'swin2d', 'tsm', 'video_swin'], 'synthetic_<arch>.py configs')
flags.DEFINE_string('workdir_root', os.path.join(ROOT, 'workdir', 'synthetic_results'),
                    'one workdir per architecture (removed first: every run starts fresh)')
flags.DEFINE_string('data_dir', None, 'TFDS data dir (default: WORKDIR_ROOT/tfds, removed '
                    'first, so the first run wall time includes generating the data set)')
flags.DEFINE_string('output', os.path.join(ROOT, 'docs', 'synthetic_results'),
                    'writes OUTPUT.md and OUTPUT.json')
flags.DEFINE_integer('timeout', 3600, 'seconds per run')
flags.DEFINE_string('readme', os.path.join(ROOT, 'README.md'),
                    'file whose block between the BEGIN/END markers gets the table ("" = none)')
FLAGS = flags.FLAGS

BEGIN = '<!-- BEGIN synthetic_results (scripts/synthetic_results.py) -->'
END = '<!-- END synthetic_results -->'
NAMES = {'tps': 'TPS', 'swin2d': 'Swin-2D', 'tsm': 'TSM-Swin', 'video_swin': 'Video Swin'}


def gflops_per_clip(config_path: str) -> float:
  """XLA's FLOP count of one eval clip (forward pass), from ``tps_jax.profiling``."""
  import importlib  # pylint: disable=g-import-not-at-top
  from tps_jax import profiling  # pylint: disable=g-import-not-at-top
  name = os.path.splitext(os.path.basename(config_path))[0]
  config = importlib.import_module(f'configs.{name}').get_config()
  prof = profiling.Profiler(config, batch=1, frames=config.input.num_frames,
                            size=config.input.eval_image_size, num_classes=10,
                            train_step=False, materialize=False)
  return prof.stats['forward_gflops']


def data_dir() -> str:
  return FLAGS.data_dir or os.path.join(FLAGS.workdir_root, 'tfds')


def pair_accuracy(confusion_csv: str) -> float:
  """Fraction of clips whose predicted class is in the right time-reversal pair (2k, 2k+1).

  A frame-order-blind model can get this right but not the direction inside the pair.
  """
  from tps_jax import visualize  # pylint: disable=g-import-not-at-top
  counts, _ = visualize.read_confusion(confusion_csv)
  pair = np.arange(len(counts)) // 2
  return float(counts[pair[:, None] == pair[None, :]].sum() / counts.sum())


def run(arch: str) -> dict:
  """Trains one architecture with main.py; returns its row of the table."""
  config = os.path.join('configs', f'synthetic_{arch}.py')
  workdir = os.path.join(FLAGS.workdir_root, arch)
  subprocess.run(['rm', '-rf', workdir], check=True)
  cmd = [sys.executable, 'main.py', f'--config={config}', f'--workdir={workdir}',
         f'--config.dataset.data_dir={data_dir()}']
  t0 = time.time()
  result = subprocess.run(cmd, cwd=ROOT, timeout=FLAGS.timeout, capture_output=True, text=True)
  wall = time.time() - t0
  if result.returncode:
    raise RuntimeError(f'{" ".join(cmd)} failed:\n{result.stderr[-3000:]}')
  summary = json.load(open(os.path.join(workdir, 'metrics.json')))
  split = sorted(summary['eval'])[0]
  ev = summary['eval'][split]
  per_class = json.load(open(os.path.join(workdir, f'eval_{split}.json')))
  return dict(arch=arch, model=NAMES.get(arch, arch), config=config,
              val_top1=ev['top1'], val_top5=ev['top5'],
              mean_class_accuracy=ev['mean_class_accuracy'],
              per_class_accuracy=per_class['per_class_accuracy'],
              pair_accuracy=pair_accuracy(os.path.join(workdir, f'confusion_{split}.csv')),
              gflops_per_clip=gflops_per_clip(config), params=summary['num_params'],
              train_step_seconds=summary['train_step_seconds'],
              batch_size=summary['config']['batch_size'], steps=summary['step'],
              wall_seconds=wall)


def table(rows) -> str:
  lines = ['| model | val top-1 | right pair | GFLOPs / clip | params | step time (s) '
           '| wall time |', '|---|---|---|---|---|---|---|']
  for r in rows:
    lines.append(f'| {r["model"]} | {100 * r["val_top1"]:.1f}% | '
                 f'{100 * r["pair_accuracy"]:.1f}% | {r["gflops_per_clip"]:.3f} | '
                 f'{r["params"] / 1e3:.0f} K | {r["train_step_seconds"]:.3f} | '
                 f'{r["wall_seconds"] / 60:.1f} min |')
  return '\n'.join(lines)


def replace_block(path: str, text: str) -> None:
  """Puts `text` between the BEGIN/END markers of `path` (both must be there)."""
  with open(path) as f:
    doc = f.read()
  if BEGIN not in doc or END not in doc:
    raise ValueError(f'{path}: no {BEGIN!r} ... {END!r} block to fill')
  head, rest = doc.split(BEGIN, 1)
  _, tail = rest.split(END, 1)
  with open(path, 'w') as f:
    f.write(f'{head}{BEGIN}\n{text}{END}{tail}')


def main(argv):
  del argv
  if not FLAGS.data_dir:
    subprocess.run(['rm', '-rf', data_dir()], check=True)
  rows = [run(arch) for arch in FLAGS.archs]
  machine = f'{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores'
  r0 = rows[0]
  md = (f'<!-- written by scripts/synthetic_results.py; do not edit -->\n'
        f'Synthetic `reversal_pairs` validation set ({len(rows)} runs of `main.py`, '
        f'{r0["steps"]} steps of {r0["batch_size"]} clips each, from scratch, on {machine}; '
        'right pair = predicted class in the true time-reversal pair, the most a '
        'frame-order-blind model can get right; step time = median seconds per training '
        'step; wall time includes start-up, compilation and evaluation, and generating the '
        'data set for the first run).\n\n'
        + table(rows) + '\n')
  os.makedirs(os.path.dirname(FLAGS.output), exist_ok=True)
  with open(FLAGS.output + '.md', 'w') as f:
    f.write(md)
  with open(FLAGS.output + '.json', 'w') as f:
    json.dump(dict(machine=machine, rows=rows), f, indent=1)
  if FLAGS.readme:
    replace_block(FLAGS.readme, md)
  print(md)


if __name__ == '__main__':
  app.run(main)
