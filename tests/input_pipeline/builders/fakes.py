"""Tiny fake manual directories for the builder tests: real codecs, a few frames each."""
import os
import re

import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from input_pipeline import video_io
from input_pipeline.builders import base
from input_pipeline.builders import get_builder

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


def prepare(name, manual_dir, data_dir, config='res128', **kwargs):
  """Builds data set `name` from manual_dir into data_dir; returns the builder."""
  builder = get_builder(name, data_dir=os.fspath(data_dir), config=config,
                        num_workers=kwargs.pop('num_workers', 0), **kwargs)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)))
  return builder


def examples(builder, split):
  """{id: (label, video shape, mean grey level of each frame)} of a prepared split."""
  out = {}
  for ex in tfds.as_numpy(builder.as_dataset(split)):
    video = ex['video']
    out[ex['id'].decode()] = (int(ex['label']), video.shape,
                              video.reshape(len(video), -1).mean(1).round().astype(int))
  return out
