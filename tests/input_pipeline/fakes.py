"""Test helpers: configs, and tiny TFRecord data sets of solid-colour JPEG clips."""
import io

import ml_collections
import numpy as np
from PIL import Image
import tensorflow as tf

from configs import data_table
from input_pipeline import features


def make_config(name='synthetic_tiny', data_dir=None, *, batch_size=8, eval_batch_size=6,
                seed=0):
  """A locked config with the dataset/input sections of `name` and the top-level fields."""
  config = ml_collections.ConfigDict()
  config.dataset = data_table.dataset_config(name)
  config.input = data_table.input_config(name)
  config.dataset.data_dir = data_dir
  config.batch_size = batch_size
  config.eval_batch_size = eval_batch_size
  config.seed = seed
  config.lock()
  return config


def jpeg(value, size=16):
  """A complete JPEG of a flat grey frame."""
  buf = io.BytesIO()
  Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(buf, format='JPEG')
  return buf.getvalue()


def clip(label, num_frames=6, *, clip_id=None, frames=None):
  """A record dict: `frames` (JPEG bytes list) default to flat frames of increasing grey."""
  if frames is None:
    frames = [jpeg(10 * t) for t in range(num_frames)]
  return {'frames': frames, 'label': label, 'id': clip_id or f'clip{label}'}


def write_split(directory, split, clips, class_names, *, num_shards=2, name='fake',
                manifest_splits=None):
  """Writes `clips` as `num_shards` TFRecord files + manifest.json; returns split files."""
  files = {}
  for shard in range(num_shards):
    filename = f'{split}-{shard:05d}-of-{num_shards:05d}.tfrecord'
    part = clips[shard::num_shards]
    with tf.io.TFRecordWriter(str(directory / filename)) as writer:
      for c in part:
        label_text = class_names[c['label']] if 0 <= c['label'] < len(class_names) else ''
        writer.write(features.encode_sequence_example(c['frames'], c['label'], label_text,
                                                      c['id']))
    files[filename] = len(part)
  splits = dict(manifest_splits or {})
  splits[split] = files
  features.write_manifest(str(directory), name, class_names, splits)
  return splits
