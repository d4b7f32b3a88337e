"""Tiny fake manual directories for the builder tests: real codecs, a few frames each."""
import os
import re

import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from configs import data_table
from input_pipeline import build
from input_pipeline import registry
from input_pipeline import video_io
from input_pipeline.builders import base

HEIGHT, WIDTH, FRAMES = 32, 48, 8
# The end of a missing / unreadable video error: it names the flags that skip it.
SKIP_HINT = re.escape(base.SKIP_HINT)


def frames(seed, num_frames=FRAMES, height=HEIGHT, width=WIDTH):
  """A clip whose frame t is a flat grey level 20 * t + seed (easy to check after codecs)."""
  levels = (20 * np.arange(num_frames) + seed) % 256
  return np.broadcast_to(levels[:, None, None, None],
                         (num_frames, height, width, 3)).astype(np.uint8)


def write_video(path, seed=0, **kwargs):
  """Encodes frames(seed) to path (codec from the extension) and returns the path."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  video_io.write_video(path, frames(seed, **kwargs))
  return path


def write_frames(folder, seed=0, **kwargs):
  """Writes frames(seed) as 00001.jpg, 00002.jpg, ... into folder."""
  os.makedirs(folder, exist_ok=True)
  for t, frame in enumerate(frames(seed, **kwargs), 1):
    Image.fromarray(frame).save(os.path.join(folder, f'{t:05d}.jpg'))
  return folder


def write_text(path, text):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w', encoding='utf-8') as f:
    f.write(text)
  return path


def dataset(name, data_dir, config='res128', manual_dir=None, skip_unreadable=False):
  """The `dataset` config section of data set `name` (registry or TFDS name) in data_dir."""
  d = data_table.dataset_config(registry.get(name).name)
  d.data_dir, d.builder_config = os.fspath(data_dir), config
  d.manual_dir = manual_dir and os.fspath(manual_dir)
  d.skip_unreadable = skip_unreadable
  return d


def prepare(name, manual_dir, data_dir, config='res128', skip_unreadable=False, **kwargs):
  """Builds data set `name` from manual_dir into data_dir as the build app does (in this
  process, ``num_workers=0`` unless given); returns the builder."""
  kwargs.setdefault('num_workers', 0)
  return build.prepare(dataset(name, data_dir, config, manual_dir, skip_unreadable),
                       explicit=True, **kwargs)


def examples(builder, split):
  """{id: (label, video shape, mean grey level of each frame)} of a prepared split."""
  out = {}
  for ex in tfds.as_numpy(builder.as_dataset(split)):
    video = ex['video']
    out[ex['id'].decode()] = (int(ex['label']), video.shape,
                              video.reshape(len(video), -1).mean(1).round().astype(int))
  return out
