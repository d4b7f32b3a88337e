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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

flags.DEFINE_list('archs', ['tps', 'swin2d', 'tsm', 'video_swin'], 'synthetic_<arch>.py configs')
flags.DEFINE_string('workdir_root', os.path.join(ROOT, 'workdir', 'synthetic_results'),
                    'one workdir per architecture (removed first: every run starts fresh)')
flags.DEFINE_string('data_dir', None, 'TFDS data dir (default: TFDS default)')
flags.DEFINE_string('output', os.path.join(ROOT, 'docs', 'synthetic_results'),
                    'writes OUTPUT.md and OUTPUT.json')
flags.DEFINE_integer('timeout', 3600, 'seconds per run')
FLAGS = flags.FLAGS

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


def run(arch: str) -> dict:
  """Trains one architecture with main.py; returns its row of the table."""
  config = os.path.join('configs', f'synthetic_{arch}.py')
  workdir = os.path.join(FLAGS.workdir_root, arch)
  subprocess.run(['rm', '-rf', workdir], check=True)
  cmd = [sys.executable, 'main.py', f'--config={config}', f'--workdir={workdir}']
  if FLAGS.data_dir:
    cmd.append(f'--config.dataset.data_dir={FLAGS.data_dir}')
  t0 = time.time()
  result = subprocess.run(cmd, cwd=ROOT, timeout=FLAGS.timeout, capture_output=True, text=True)
  wall = time.time() - t0
  if result.returncode:
    raise RuntimeError(f'{" ".join(cmd)} failed:\n{result.stderr[-3000:]}')
  summary = json.load(open(os.path.join(workdir, 'metrics.json')))
  split = summary['eval']
  ev = split[sorted(split)[0]]
  per_class = json.load(open(os.path.join(workdir, f'eval_{sorted(split)[0]}.json')))
  return dict(arch=arch, model=NAMES.get(arch, arch), config=config,
              val_top1=ev['top1'], val_top5=ev['top5'],
              mean_class_accuracy=ev['mean_class_accuracy'],
              per_class_accuracy=per_class['per_class_accuracy'],
              gflops_per_clip=gflops_per_clip(config), params=summary['num_params'],
              train_step_seconds=summary['train_step_seconds'],
              batch_size=summary['config']['batch_size'], steps=summary['step'],
              wall_seconds=wall)


def table(rows) -> str:
  lines = ['| model | val top-1 | mean class acc. | GFLOPs / clip | params | step time (s) '
           '| wall time |', '|---|---|---|---|---|---|---|']
  for r in rows:
    lines.append(f'| {r["model"]} | {100 * r["val_top1"]:.1f}% | '
                 f'{100 * r["mean_class_accuracy"]:.1f}% | {r["gflops_per_clip"]:.3f} | '
                 f'{r["params"] / 1e3:.0f} K | {r["train_step_seconds"]:.3f} | '
                 f'{r["wall_seconds"] / 60:.1f} min |')
  return '\n'.join(lines)


def main(argv):
  del argv
  rows = [run(arch) for arch in FLAGS.archs]
  machine = f'{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores'
  r0 = rows[0]
  md = (f'<!-- written by scripts/synthetic_results.py; do not edit -->\n'
        f'Synthetic `reversal_pairs` validation set ({len(rows)} runs of `main.py`, '
        f'{r0["steps"]} steps of {r0["batch_size"]} clips each, from scratch, on {machine}; '
        'step time = median seconds per training step; wall time includes start-up, '
        'compilation and evaluation, and data generation for the first run).\n\n'
        + table(rows) + '\n')
  os.makedirs(os.path.dirname(FLAGS.output), exist_ok=True)
  with open(FLAGS.output + '.md', 'w') as f:
    f.write(md)
  with open(FLAGS.output + '.json', 'w') as f:
    json.dump(dict(machine=machine, rows=rows), f, indent=1)
  print(md)


if __name__ == '__main__':
  app.run(main)
