r"""Training input-pipeline throughput: clips/s per CPU core (read + decode + augment).

Times the train pipeline of a data-set config with a tf.data thread pool of `--threads`
and reports clips/s and clips/s per thread, for the config's own recipe ('demo') and with
the official SSv2 appearance augmentation added ('official': RandAugment 2 ops at
magnitude 9 + random erasing 0.25). Writes JSON and prints a Markdown table row:

  .venv/bin/python benchmarks/input_pipeline_throughput.py --dataset=synthetic \
      --threads=1 --out=docs/input_pipeline_throughput.json
"""
import json
import os
import platform
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ml_collections  # pylint: disable=g-import-not-at-top

from configs import data_table  # pylint: disable=g-import-not-at-top
from input_pipeline import pipeline  # pylint: disable=g-import-not-at-top
from tps_jax import apps  # pylint: disable=g-import-not-at-top

FLAGS = flags.FLAGS
flags.DEFINE_string('dataset', 'synthetic', 'a name of configs/data_table.py')
flags.DEFINE_string('data_dir', None, 'TFDS data dir (default: TFDS default)')
flags.DEFINE_integer('threads', 1, 'tf.data threads (= CPU cores used)')
flags.DEFINE_integer('batch_size', 16, 'clips per batch')
flags.DEFINE_integer('batches', 40, 'timed batches')
flags.DEFINE_integer('warmup', 10, 'untimed batches first')
flags.DEFINE_string('out', 'docs/input_pipeline_throughput.json', 'JSON to write')


def measure(dataset, data_dir, recipe, threads, batch_size, batches, warmup):
  """Clips per second of the training pipeline after `warmup` batches."""
  config = ml_collections.ConfigDict()
  config.dataset = data_table.dataset_config(dataset)
  config.dataset.data_dir = data_dir
  config.input = data_table.input_config(dataset)
  config.input.num_threads = threads
  config.input.num_parallel_calls = threads
  if recipe == 'official':
    config.input.randaugment_num_ops = 2
    config.input.random_erasing_prob = 0.25
  config.batch_size = batch_size
  config.eval_batch_size = batch_size
  config.seed = 0
  config.lock()
  ds, _ = pipeline.train_dataset(config)
  iterator = iter(ds)
  for _ in range(warmup):
    next(iterator)
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  return batches * batch_size / (time.perf_counter() - start), config.input


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  args = FLAGS
  rows = []
  for recipe in ('demo', 'official'):
    clips_per_s, c = measure(args.dataset, args.data_dir, recipe, args.threads,
                             args.batch_size, args.batches, args.warmup)
    rows.append({
        'dataset': args.dataset, 'recipe': recipe, 'threads': args.threads,
        'clip': f'{c.num_frames}x{c.image_size}x{c.image_size}',
        'clips_per_s': round(clips_per_s, 1),
        'clips_per_s_per_core': round(clips_per_s / args.threads, 1),
        'cpu': platform.processor() or platform.machine(), 'cpu_count': os.cpu_count()})
  with open(args.out, 'w') as f:
    json.dump(rows, f, indent=1)
  print('| data set | recipe | clip (T x H x W) | clips/s per core |')
  print('| --- | --- | --- | --- |')
  for r in rows:
    print(f"| {r['dataset']} | {r['recipe']} | {r['clip']} | {r['clips_per_s_per_core']} |")
  print(f'wrote {args.out}')


if __name__ == '__main__':
  apps.run(main, 'benchmarks/input_pipeline_throughput.py')
