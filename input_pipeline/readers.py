"""Readers (dmvr phase 1): records of one split -> parsed, validated clip elements.

Two sources give the same element, ``{'frames': string[T] JPEG, 'label': int64,
'label_text': string, 'id': string}``: TFDS builders (files found through the builder's
split info, examples parsed by its features with ``SkipDecoding``) and plain TFRecord
directories of ``SequenceExample`` with a ``manifest.json`` (``features.py``).

Per-process reading is an even split of the split's concatenated records: process p of
P reads records [p*N//P, (p+1)*N//P) as (file, skip, take) ranges, so every process
reads only its own part, counts differ by at most one, and any number of files works.
"""
import dataclasses
import os
from typing import Callable

from absl import logging
from etils import epath
import tensorflow as tf

from input_pipeline import features


class BadRecordError(ValueError):
  """A record that cannot be used (one line: data set, split, record id, reason)."""


@dataclasses.dataclass(frozen=True)
class Source:
  """The records of one split and how to parse them.

  Attributes:
    name: data set name, for messages.
    split: split name.
    shards: (file path, records to skip, records to take) in reading order.
    parse: scalar serialized record -> element (see module docstring).
    class_names: label index -> name.
  """
  name: str
  split: str
  shards: tuple[tuple[str, int, int], ...]
  parse: Callable[[tf.Tensor], dict]
  class_names: tuple[str, ...]

  @property
  def num_examples(self) -> int:
    return sum(take for _, _, take in self.shards)


def tfds_source(builder, split: str, name: str) -> Source:
  """The records of a prepared TFDS builder's split (TFRecord file format)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  if split not in builder.info.splits:
    raise ValueError(f'{name}: no split {split!r} in {builder.data_dir} (splits: '
                     f'{", ".join(builder.info.splits)})')
  file_format = builder.info.file_format
  if file_format is not None and 'tfrecord' not in str(file_format).lower():
    raise ValueError(f'{name}: prepared as {file_format}; the reader needs tfrecord')
  shards = tuple((os.fspath(fi.filename), fi.skip, fi.take)
                 for fi in builder.info.splits[split].file_instructions)
  feats = builder.info.features
  class_names = tuple(feats['label'].names)

  def parse(serialized):
    ex = feats.deserialize_example(serialized,
                                   decoders={'video': tfds.decode.SkipDecoding()})
    label = tf.cast(ex['label'], tf.int64)
    in_range = (label >= 0) & (label < len(class_names))
    text = tf.gather(tf.constant(class_names), tf.where(in_range, label, 0))
    return {'frames': ex['video'], 'label': label,
            'label_text': tf.where(in_range, text, ''), 'id': ex['id']}

  return Source(name, split, shards, parse, class_names)


def tfrecord_manifest(directory, name: str) -> dict:
  """The manifest.json of a TFRecord directory; one-line errors if either is missing."""
  if not directory or not epath.Path(directory).is_dir():  # local or gs://
    raise features.NotPreparedError(f'{name}: TFRecord directory {directory!r} does not '
                                    'exist (config.dataset.data_dir)')
  return features.read_manifest(directory)


def tfrecord_source(directory, split: str, name: str) -> Source:
  """The records of a split of a TFRecord directory described by its manifest.json."""
  manifest = tfrecord_manifest(directory, name)
  if split not in manifest['splits']:
    raise ValueError(f'{name}: no split {split!r} in {directory}/{features.MANIFEST} '
                     f'(splits: {", ".join(manifest["splits"])})')
  shards = []
  for filename, count in manifest['splits'][split]['files'].items():
    path = os.fspath(epath.Path(directory) / filename)
    if not epath.Path(path).is_file():
      raise FileNotFoundError(f'{name} {split}: {path} listed in {features.MANIFEST} '
                              'does not exist')
    shards.append((path, 0, int(count)))
  return Source(name, split, tuple(shards), features.parse_sequence_example,
                tuple(manifest['class_names']))


def process_ranges(shards, process_index: int, process_count: int):
  """This process's contiguous share of the records, as (path, skip, take) ranges.

  Args:
    shards: (path, skip, take) of the whole split, in reading order.
    process_index: this process, in [0, process_count).
    process_count: number of processes splitting the records.

  Returns:
    list of (path, skip, take) with take > 0.
  """
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index={process_index} not in [0, {process_count})')
  total = sum(take for _, _, take in shards)
  lo = process_index * total // process_count
  hi = (process_index + 1) * total // process_count
  out, pos = [], 0
  for path, skip, take in shards:
    a, b = max(lo, pos), min(hi, pos + take)
    if a < b:
      out.append((path, skip + a - pos, b - a))
    pos += take
  return out


def _guarded_range(path, skip, take, bad: 'BadRecords'):
  """The records of one range; a file that ends early (truncated, or a damaged record:
  ``DataLossError``) is reported through ``bad`` with its path and how much was lost."""
  records = tf.data.TFRecordDataset(path).skip(skip).take(take)
  records = records.map(lambda r: (r, True)).ignore_errors()  # a DataLossError ends it
  end = tf.data.Dataset.from_tensors((tf.constant(b''), False))
  def count(n, item):
    record, real = item
    return n + tf.cast(real, tf.int64), (record, real, n)
  def keep(record, real, n):
    del record
    return tf.cond(real | (n >= take), lambda: real, lambda: tf.reshape(  # the end marker
        tf.py_function(bad.truncated, [path, skip + n, take - n], tf.bool), []))
  return records.concatenate(end).scan(tf.constant(0, tf.int64), count).filter(keep).map(
      lambda record, real, n: record)


def record_stream(ranges, *, cycle_length: int = 1, shuffle_key=None,
                  shuffle_block: int = 0, bad: 'BadRecords' = None):
  """Serialized records of the ranges: one pass, optionally shuffled by a stateless key.

  Shuffling (when `shuffle_key`, an int tensor [2], is given) permutes the file order,
  interleaves `cycle_length` files and permutes consecutive blocks of `shuffle_block`
  records, all as stateless functions of the key: the same key gives the same order.
  With `bad`, a file that ends before its range does is named (or, with skip, the rest
  of its range is skipped and counted) instead of failing without a file name.
  """
  paths = tf.constant([p for p, _, _ in ranges])
  skips = tf.constant([s for _, s, _ in ranges], tf.int64)
  takes = tf.constant([t for _, _, t in ranges], tf.int64)
  if shuffle_key is not None:
    k_files, k_blocks = tf.unstack(tf.random.experimental.stateless_split(shuffle_key, 2))
    order = tf.random.experimental.stateless_shuffle(tf.range(len(ranges)), k_files)
    paths, skips, takes = (tf.gather(x, order) for x in (paths, skips, takes))
  files = tf.data.Dataset.from_tensor_slices((paths, skips, takes))
  cycle_length = max(1, min(cycle_length, len(ranges)))
  read = ((lambda path, skip, take: _guarded_range(path, skip, take, bad)) if bad else
          (lambda path, skip, take: tf.data.TFRecordDataset(path).skip(skip).take(take)))
  records = files.interleave(
      read,
      cycle_length=cycle_length, block_length=1, num_parallel_calls=cycle_length,
      deterministic=True)
  if shuffle_key is not None and shuffle_block > 1:
    records = records.batch(shuffle_block).enumerate().map(
        lambda j, block: tf.random.experimental.stateless_shuffle(
            block, tf.random.experimental.stateless_fold_in(k_blocks, j))).unbatch()
  return records


def validate(element, num_classes: int):
  """Checks a parsed element without decoding it: (ok, reason) scalar tensors.

  Rejects: no frames, a label outside [0, num_classes), a frame that is not a complete
  JPEG (no start-of-image marker, or no end-of-image marker: truncated). Every frame is
  checked, not only the sampled ones, so a record is bad or good whatever the sampling.
  """
  frames = element['frames']
  label = element['label']
  has_frames = tf.size(frames) > 0
  label_ok = (label >= 0) & (label < num_classes)
  length = tf.strings.length(frames)
  soi = tf.strings.substr(frames, 0, 2) == b'\xff\xd8'
  eoi = tf.strings.substr(frames, tf.maximum(length - 2, 0), tf.fill(tf.shape(length), 2)
                         ) == b'\xff\xd9'
  jpeg_ok = tf.reduce_all(soi & eoi)
  first_bad = tf.argmin(tf.concat([tf.cast(soi & eoi, tf.int32), [0]], 0),  # [0]: no frames
                        output_type=tf.int32)
  reason = tf.case([
      (~has_frames, lambda: tf.constant('the record has no frames')),
      (~label_ok, lambda: tf.strings.format(
          'label {} outside [0, {})', (label, num_classes))),
      (~jpeg_ok, lambda: tf.strings.format(
          'frame {} is not a complete JPEG (corrupt or truncated)', first_bad)),
  ], default=lambda: tf.constant(''))
  return has_frames & label_ok & jpeg_ok, reason


class BadRecords:
  """Stops on, or counts and logs, the records `validate` rejects (and undecodable records,
  truncated files).

  Used from the tf.data graph through `keep`; without skip a bad record is dropped and its
  error text kept here, and the iterator raises it as one line (`error`, `reraise`).
  """

  def __init__(self, name: str, split: str, skip: bool):
    self.name, self.split, self.skip = name, split, skip
    self.count = 0
    self.error = None

  def _report(self, clip_id, reason):
    clip_id = clip_id.numpy().decode(errors='replace')
    reason = reason.numpy().decode()
    if self.skip:
      self.count += 1
      logging.warning('%s %s: skipped record %r: %s (%d skipped so far; '
                      'config.dataset.skip_corrupt=True)', self.name, self.split, clip_id,
                      reason, self.count)
      return False
    self.error = self.error or (f'{self.name} {self.split}: record {clip_id!r}: {reason} (set '
                                'config.dataset.skip_corrupt=True to skip such records)')
    return False  # the iterator raises it (no exception inside tf.data: no TF traceback)

  def truncated(self, path, position, lost) -> bool:
    """py_function: a file that ended (or broke) at record ``position`` of its range."""
    path, position, lost = path.numpy().decode(), int(position), int(lost)
    if self.skip:
      self.count += lost
      logging.warning('%s %s: %s is truncated or damaged at record %d: skipped the %d '
                      'records after it (%d skipped so far; config.dataset.skip_corrupt=True)',
                      self.name, self.split, path, position, lost, self.count)
      return False
    self.error = self.error or (
        f'{self.name} {self.split}: {path} is truncated or damaged at record {position} '
        f'({lost} records unread; set config.dataset.skip_corrupt=True to skip the rest of '
        'such files)')
    return False

  def undecodable(self, clip_id) -> bool:
    """py_function: a record whose sampled frames fail to decode."""
    return self._report(clip_id, tf.constant('a frame fails to decode (corrupt JPEG data)'))

  def keep(self, element, num_classes: int):
    """tf.data filter predicate: True for good records; bad ones raise or are skipped."""
    ok, reason = validate(element, num_classes)
    return tf.cond(ok, lambda: tf.constant(True), lambda: tf.reshape(tf.py_function(
        self._report, [element['id'], reason], tf.bool), []))

  def reraise(self, error: tf.errors.OpError):
    """A one-line BadRecordError for an error raised while iterating."""
    if self.error:
      return BadRecordError(self.error)
    first = str(error.message).strip().splitlines()[0] if error.message else repr(error)
    return BadRecordError(f'{self.name} {self.split}: {first}')
