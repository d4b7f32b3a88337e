"""What every tps-jax TFDS builder shares: configs, annotation helpers, the parallel writer.

A builder subclasses :class:`VideoBuilder` and implements ``_read_annotations``, which
turns the manual directory into class names and a list of :class:`Clip` per split.
This module then checks that every file exists, decodes + resizes + JPEG-encodes the
clips in worker processes (order kept, memory bounded) and yields them to the single
TFDS writer process. Errors name the data set, the split, the annotation entry
(``train.txt:4``) and the file, on one line.
"""
import collections
import csv
import dataclasses
import functools
import io
import json
import multiprocessing
import os

from absl import logging
from etils import epath
import tensorflow_datasets as tfds
import tqdm

from input_pipeline import features
from input_pipeline import video_io
from input_pipeline.builders import BuildError


@dataclasses.dataclass(frozen=True)
class Clip:
  """One example to write.

  Attributes:
    path: video file or frame folder.
    label: class index.
    id: stored as the example's ``id`` (and TFDS key): the source video id / path.
    where: the annotation entry that listed it, for error messages (``train.txt:4``).
  """
  path: str
  label: int
  id: str
  where: str


@dataclasses.dataclass
class VideoConfig(tfds.core.BuilderConfig):
  """How frames are stored; named configs of every builder differ only in these.

  Attributes:
    min_resize: short side in pixels after resizing (up or down); None keeps the size.
    fps: resample videos to this frame rate; None keeps every frame (frame folders are
      always kept as they are).
    max_frames: keep at most this many frames per clip; None keeps all.
    jpeg_quality: quality of the stored JPEG frames.
  """
  min_resize: int | None = 256
  fps: float | None = None
  max_frames: int | None = None
  jpeg_quality: int = 90


# res256 is the paper's storage (short side 256, random/centre 224 crops at train/test);
# res128 is for quick runs at 112 pixels.
STANDARD_CONFIGS = (
    VideoConfig(name='res256', description='Short side resized to 256 pixels.'),
    VideoConfig(name='res128', min_resize=128,
                description='Short side resized to 128 pixels (for 112-pixel models).'),
)


def default_num_workers():
  return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()


class VideoBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the tps-jax builders: clips from a manual directory, written in parallel.

  Builder keyword arguments (``tfds.builder(name, **kwargs)``, or ``builder_kwargs``
  of ``tfds.load``) set how the inputs are handled; they do not change the format:

  Args:
    num_workers: decoding processes; 0 decodes in the writer process. Default: all cores.
    skip_unreadable: skip missing or undecodable videos instead of stopping at the
      first one; each split's skipped entries are listed in ``skipped_<split>.txt`` in
      the prepared data directory and counted in the log and ``info.metadata``.
    **kwargs: for ``tfds.core.GeneratorBasedBuilder`` (data_dir, config, version).
  """
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  BUILDER_CONFIGS = list(STANDARD_CONFIGS)
  DESCRIPTION = ''
  HOMEPAGE = ''
  CITATION = ''

  def __init__(self, *, num_workers=None, skip_unreadable=False, **kwargs):
    self._num_workers = default_num_workers() if num_workers is None else num_workers
    self._skip_unreadable = skip_unreadable
    super().__init__(**kwargs)

  def _read_annotations(self, manual_dir):
    """Returns (class_names in index order, {split: [Clip, ...]}) from the manual dir."""
    raise NotImplementedError

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self, description=self.DESCRIPTION, features=features.tfds_features(None),
        homepage=self.HOMEPAGE, citation=self.CITATION, metadata=tfds.core.MetadataDict())

  def _split_generators(self, dl_manager):
    try:
      manual_dir = dl_manager.manual_dir
    except AssertionError as e:  # TFDS appends the (long) instructions to the message.
      message = str(e).split(' Create it')[0].splitlines()[0]
      raise BuildError(f'{self.name}: {message} (see {type(self).__module__}.'
                       f'{type(self).__name__}.MANUAL_DOWNLOAD_INSTRUCTIONS)') from None
    class_names, splits = self._read_annotations(os.fspath(manual_dir))
    self.info.features['label'].names = list(class_names)
    # Every entry is checked before the (long) encoding starts.
    checked = self._check_clips(splits)
    return {split: self._generate_examples(split, clips, skipped)
            for split, (clips, skipped) in checked.items()}

  def _check_clips(self, splits):
    """Returns {split: (clips whose file exists, skipped [(clip, reason)])}.

    Raises on a missing file (unless skipping), on an id listed twice in a split, and
    on an id of an evaluation split that is also in train (leakage).
    """
    checked, train_ids = {}, {c.id: c for c in splits.get('train', ())}
    for split, clips in splits.items():
      present, skipped, seen = [], [], {}
      for clip in clips:
        first = seen.setdefault(clip.id, clip)
        if first is not clip:
          raise BuildError(f'{self.name} {split}: {clip.where}: duplicate {clip.id!r} '
                           f'(first at {first.where})')
        if split != 'train' and clip.id in train_ids:
          raise BuildError(f'{self.name} {split}: {clip.where}: {clip.id!r} is also in '
                           f'train ({train_ids[clip.id].where})')
        if os.path.exists(clip.path):
          present.append(clip)
        elif self._skip_unreadable:
          skipped.append((clip, f'no such file: {clip.path}'))
        else:
          raise BuildError(f'{self.name} {split}: {clip.where}: no such file: {clip.path}')
      checked[split] = present, skipped
    return checked

  def _generate_examples(self, split, clips, skipped):
    """Encodes clips in worker processes and yields (id, example) in annotation order."""
    config = self.builder_config
    encode = functools.partial(
        encode_clip, min_resize=config.min_resize, fps=config.fps,
        max_frames=config.max_frames, quality=config.jpeg_quality)
    progress = tqdm.tqdm(total=len(clips), desc=f'{self.name} {split}', unit='clip',
                         smoothing=0.1, dynamic_ncols=True)
    with progress:
      for clip, result in ordered_map(encode, clips, self._num_workers):
        progress.update()
        if isinstance(result, str):  # the worker's VideoReadError message
          if not self._skip_unreadable:
            raise BuildError(f'{self.name} {split}: {clip.where}: {result}')
          skipped.append((clip, result))
          continue
        yield clip.id, {'video': [io.BytesIO(b) for b in result], 'label': clip.label,
                        'id': clip.id}
    self._write_skipped(split, skipped)

  def _write_skipped(self, split, skipped):
    self.info.metadata[f'skipped_{split}'] = len(skipped)
    if not skipped:
      return
    path = epath.Path(self.data_dir) / f'skipped_{split}.txt'
    path.write_text(''.join(f'{c.where}\t{c.path}\t{reason}\n' for c, reason in skipped))
    logging.warning('%s %s: skipped %d unreadable or missing videos, listed in %s',
                    self.name, split, len(skipped), path.name)


def encode_clip(clip, *, min_resize, fps, max_frames, quality):
  """Worker: a Clip -> list of JPEG bytes, or the one-line reason it cannot be read."""
  try:
    frames = video_io.read_video_or_frames(
        clip.path, min_resize=min_resize, fps=fps, max_frames=max_frames, threads=1)
  except video_io.VideoReadError as e:
    return str(e)
  return video_io.encode_jpeg(frames, quality)


def ordered_map(fn, items, num_workers, window_per_worker=8):
  """Yields (item, fn(item)) in order, computed by a process pool.

  Unlike ``Pool.imap``, at most ``num_workers * window_per_worker`` results wait in
  memory when the writer is slower than the workers.
  """
  if num_workers == 0:
    for item in items:
      yield item, fn(item)
    return
  # fork: workers only run numpy/PyAV/Pillow, and need not re-import TensorFlow.
  methods = multiprocessing.get_all_start_methods()
  context = multiprocessing.get_context('fork' if 'fork' in methods else None)
  pending = collections.deque()
  with context.Pool(num_workers) as pool:
    for item in items:
      pending.append((item, pool.apply_async(fn, (item,))))
      if len(pending) >= num_workers * window_per_worker:
        item, result = pending.popleft()
        yield item, result.get()
    while pending:
      item, result = pending.popleft()
      yield item, result.get()


# Annotation helpers: each raises BuildError naming the file (and line) on bad input.
_ENCODING = 'utf-8-sig'  # UTF-8, also when a spreadsheet saved it with a byte-order mark


def require_file(dataset, path):
  """Returns path if it is a file, else raises a BuildError naming the data set."""
  if not os.path.isfile(path):
    raise BuildError(f'{dataset}: missing annotation file {path}')
  return path


def read_json(dataset, path):
  """Parses a JSON annotation file."""
  with open(require_file(dataset, path), encoding=_ENCODING) as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise BuildError(f'{dataset}: {path}:{e.lineno}: invalid JSON: {e.msg}') from None


def read_lines(dataset, path):
  """Yields (line_number, stripped line) for the non-blank, non-# lines of a text file."""
  with open(require_file(dataset, path), encoding=_ENCODING) as f:
    for number, line in enumerate(f, 1):
      line = line.strip()
      if line and not line.startswith('#'):
        yield number, line


def read_csv(dataset, path, *, delimiter=',', header=None):
  """Yields (line_number, row) of a CSV file; a dict per row when ``header`` is given.

  Args:
    dataset: data-set name for error messages.
    path: the CSV file.
    delimiter: field separator.
    header: required column names; the first line must contain them (others ignored).
  """
  with open(require_file(dataset, path), encoding=_ENCODING, newline='') as f:
    reader = csv.reader(f, delimiter=delimiter)
    columns = None
    for row in reader:
      if not row or not ''.join(row).strip():
        continue
      if header is not None and columns is None:
        columns = [c.strip() for c in row]
        missing = [c for c in header if c not in columns]
        if missing:
          raise BuildError(f'{dataset}: {path}:{reader.line_num}: header must have the '
                           f'columns {",".join(header)}; got {",".join(columns)}')
        continue
      if header is not None:
        if len(row) != len(columns):
          raise BuildError(f'{dataset}: {path}:{reader.line_num}: expected {len(columns)} '
                           f'fields ({",".join(columns)}), got {len(row)}')
        row = dict(zip(columns, (v.strip() for v in row)))
      yield reader.line_num, row
