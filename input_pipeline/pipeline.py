"""The train and eval pipelines: read -> sample -> decode -> augment -> batch.

Order (big_vision): per-process split -> shuffle -> repeat -> map -> batch(global //
processes, drop_remainder) -> prefetch. Frame indices are sampled before JPEG decoding.

Resumable training order. The stream of a process is a concatenation of epochs; epoch e
is its share of the records in an order that is a stateless function of (seed, process,
e) (file order, interleave, block shuffle; `readers.record_stream`), and every element's
augmentation is keyed by (seed, process, its position in the stream). Starting at step k
computes the position k * local_batch, opens that epoch and skips the records before the
position without parsing or decoding them: the batches are exactly batch k, k+1, ... of
a run started at 0. Records dropped with `skip_corrupt=True` shift later batches by one
element each, so exactness then holds up to the dropped records.
"""
import dataclasses
import functools
import math
from typing import Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from input_pipeline import build
from input_pipeline import randaugment
from input_pipeline import readers
from input_pipeline import registry
from input_pipeline import sampling
from input_pipeline import transforms


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What the model and the training loop need to know about a data set.

  Attributes:
    name: the data set's name in `configs/data_table.py`.
    num_classes: number of classes.
    class_names: label index -> name.
    num_examples: split -> number of examples (all processes).
    flip_label_map: int array (num_classes,): label after a horizontal flip (identity
      for flip-invariant classes).
    no_flip_classes: classes that are never flipped in 'no_flip_classes' mode.
  """
  name: str
  num_classes: int
  class_names: list[str]
  num_examples: dict[str, int]
  flip_label_map: np.ndarray
  no_flip_classes: tuple[int, ...]


def _source(config, split) -> readers.Source:
  d = config.dataset
  if d.format == 'tfds':
    return readers.tfds_source(build.prepared_builder(d), split, d.name)
  if d.format == 'tfrecord':
    return readers.tfrecord_source(d.data_dir, split, d.name)
  raise ValueError(f"config.dataset.format={d.format!r} is not one of ['tfds', 'tfrecord']")


def get_dataset_info(config) -> DatasetInfo:
  """Describes the prepared `config.dataset`; never prepares it (`build.prepare` does).

  Call it once per run and pass the result to the iterators.

  Raises:
    features.NotPreparedError: nothing prepared there; one line naming the data dir and
      how to prepare it.
  """
  d = config.dataset
  if d.format == 'tfds':
    builder = build.prepared_builder(d)
    class_names = list(builder.info.features['label'].names)
    num_examples = {s: builder.info.splits[s].num_examples for s in builder.info.splits}
  else:
    splits = readers.tfrecord_manifest(d.data_dir, d.name)['splits']
    sources = {s: _source(config, s) for s in splits}
    class_names = list(next(iter(sources.values())).class_names)
    num_examples = {s: src.num_examples for s, src in sources.items()}
  num_classes = len(class_names)
  flip_pairs, no_flip_classes = _flip_classes(d, class_names)
  flip_label_map = np.arange(num_classes)
  for a, b in flip_pairs:
    _check_class(a, num_classes, 'flip_pairs')
    _check_class(b, num_classes, 'flip_pairs')
    flip_label_map[a], flip_label_map[b] = b, a
  for k in no_flip_classes:
    _check_class(k, num_classes, 'no_flip_classes')
  return DatasetInfo(name=d.name, num_classes=num_classes, class_names=class_names,
                     num_examples=num_examples, flip_label_map=flip_label_map,
                     no_flip_classes=tuple(no_flip_classes))


def _flip_classes(d, class_names):
  """``config.dataset.flip_pairs`` / ``no_flip_classes``; SS*'s official pairs re-derived
  from the label texts when they do not fit these labels (a subset, a relabelling)."""
  pairs = tuple(tuple(p) for p in d.flip_pairs)
  if pairs != registry.SS_FLIP_PAIRS or all(
      b < len(class_names) and registry.mirrored(class_names[a]) == class_names[b]
      for a, b in pairs):
    return pairs, tuple(d.no_flip_classes)
  derived = registry.mirrored_pairs(class_names)
  logging.info('%s: SS* flip pairs %s do not fit these %d labels; derived from the left/right '
               'label texts: %s', d.name, pairs, len(class_names), derived)
  no_flip = tuple(d.no_flip_classes)
  if no_flip == tuple(sorted(k for p in pairs for k in p)):  # the default follows the pairs
    no_flip = tuple(sorted(k for p in derived for k in p))
  return derived, no_flip


def _check_class(k, num_classes, field):
  if not 0 <= k < num_classes:
    raise ValueError(f'config.dataset.{field}: class {k} outside [0, {num_classes}): set the '
                     f'classes of these labels (--config.dataset.{field}=...) or () for none')


def _local_batch(global_batch: int, process_count: int, field: str) -> int:
  if global_batch % process_count:
    raise ValueError(f'config.{field}={global_batch} is not divisible by '
                     f'process_count={process_count}')
  return global_batch // process_count


def _decode_sampled(frames, indices):
  """Decodes frames[indices] (any shape), decoding each distinct frame once."""
  flat = tf.reshape(indices, [-1])
  unique, position = tf.unique(flat)
  decoded = transforms.decode_frames(tf.gather(frames, unique))
  return tf.gather(decoded, position)


def preprocess_train(element, seed, input_config, info: DatasetInfo):
  """One training clip: {'video': float32 (T, S, S, 3) normalised, 'label': int32}; with
  ``config.input.augment_on='device'`` the uint8 crop before any flip or augmentation.

  Args:
    element: a reader element (JPEG frames, label, id).
    seed: int tensor [2]; every random draw of this clip derives from it.
    input_config: `config.input`.
    info: gives the flip label map and the no-flip classes.
  """
  c = input_config
  s_sample, s_crop, s_flip, s_augment, s_erase = tf.unstack(
      tf.random.experimental.stateless_split(seed, 5))
  frames = element['frames']
  indices = sampling.sample_indices(tf.shape(frames)[0], c, seed=s_sample)[0]
  video = _decode_sampled(frames, indices)
  shape = tf.shape(video)
  if c.random_resized_crop:
    box = transforms.random_resized_crop_box(shape[1], shape[2], s_crop, c.crop_scale,
                                             c.crop_ratio)
  else:
    box = transforms.eval_crop_boxes(shape[1], shape[2], 1, c.image_size / c.min_resize)[0]
  video = transforms.crop_and_resize(video, box, c.image_size)
  if c.augment_on == 'device':  # the rest runs in the train step (tps_jax.augment)
    video = tf.cast(tf.round(tf.clip_by_value(video, 0.0, 255.0)), tf.uint8)
    video = tf.ensure_shape(video, [c.num_frames, c.image_size, c.image_size, 3])
    return {'video': video, 'label': tf.cast(element['label'], tf.int32)}
  video, label = transforms.flip(
      video, element['label'], s_flip, mode=c.flip_mode, prob=c.flip_prob,
      no_flip_classes=tuple(info.no_flip_classes),
      flip_label_map=info.flip_label_map.tolist())
  video = randaugment.randaugment(video, s_augment, num_ops=c.randaugment_num_ops,
                                  magnitude=c.randaugment_magnitude)
  video = transforms.normalize(video, c.mean, c.std)
  video = transforms.random_erasing(video, s_erase, prob=c.random_erasing_prob,
                                    mode=c.random_erasing_mode)
  video = tf.ensure_shape(video, [c.num_frames, c.image_size, c.image_size, 3])
  return {'video': video, 'label': tf.cast(label, tf.int32)}


def num_test_views(input_config) -> int:
  return input_config.test_num_clips * input_config.test_num_crops


def preprocess_eval(element, input_config, views: Optional[Tuple[int, int]] = None):
  """One test clip as its views: {'video': (V, T, S, S, 3), 'label', 'id', 'mask': True}.

  ``views`` = (clips, crops), default the test protocol's (``test_num_clips``,
  ``test_num_crops``; :func:`tps_jax.evaluation.protocol_views` chooses): V = clips
  temporal clips x crops spatial crops, clip-major; 'id' is the record's video id ('' when
  the element has none).
  """
  c = input_config
  num_clips, num_crops = views or (c.test_num_clips, c.test_num_crops)
  frames = element['frames']
  indices = sampling.sample_indices(tf.shape(frames)[0], c, num_clips=num_clips)
  video = _decode_sampled(frames, indices)  # (clips * T, H, W, 3)
  shape = tf.shape(video)
  boxes = transforms.eval_crop_boxes(shape[1], shape[2], num_crops,
                                     c.eval_image_size / c.min_resize)
  t = c.num_frames
  views = [transforms.crop_and_resize(video[k * t:(k + 1) * t], box, c.eval_image_size)
           for k in range(num_clips) for box in boxes]
  video = transforms.normalize(tf.stack(views), c.mean, c.std)
  video = tf.ensure_shape(video, [num_clips * num_crops, t, c.eval_image_size,
                                  c.eval_image_size, 3])
  return {'video': video, 'label': tf.cast(element['label'], tf.int32),
          'id': element['id'] if 'id' in element else tf.constant(''),
          'mask': tf.constant(True)}


def _decoded(ds, fn, bad: readers.BadRecords, parallel):
  """``ds.map(fn)`` where a record whose decoding fails (JPEG data corrupt inside, which
  the marker check of ``readers.validate`` cannot see) is a named, skippable bad record.

  Each element is mapped in its own one-element dataset whose errors are caught, so a
  failure drops that record only; ``bad`` then raises or counts it.
  """
  def one(*args):
    clip_id = args[-1]['id']
    out = tf.data.Dataset.from_tensors(args).map(lambda *a: (fn(*a), True)).ignore_errors()
    blank = tf.nest.map_structure(lambda s: tf.zeros(s.shape, s.dtype), out.element_spec[0])
    failed = tf.data.Dataset.from_tensors((blank, False))
    return out.concatenate(failed).take(1).map(lambda x, ok: (x, ok, clip_id))

  def keep(x, ok, clip_id):
    del x
    return tf.cond(ok, lambda: tf.constant(True), lambda: tf.reshape(
        tf.py_function(bad.undecodable, [clip_id], tf.bool), []))

  ds = ds.interleave(one, cycle_length=parallel, block_length=1, num_parallel_calls=parallel,
                     deterministic=True)
  return ds.filter(keep).map(lambda x, ok, clip_id: x)


def _options(input_config):
  options = tf.data.Options()
  options.deterministic = True
  if input_config.num_threads > 0:
    options.threading.private_threadpool_size = input_config.num_threads
    options.threading.max_intra_op_parallelism = 1
  return options


def _parallel(input_config):
  n = input_config.num_parallel_calls
  return tf.data.AUTOTUNE if n < 0 else n


def train_dataset(config, *, start_step: int = 0, process_index: int = 0,
                  process_count: int = 1, info: DatasetInfo | None = None):
  """The infinite, resumable training tf.data pipeline of one process.

  Returns:
    (dataset of {'video', 'label'} batches, readers.BadRecords of this pipeline).
  """
  c = config.input
  info = info or get_dataset_info(config)
  source = _source(config, config.dataset.splits.train)
  local_batch = _local_batch(config.batch_size, process_count, 'batch_size')
  ranges = readers.process_ranges(source.shards, process_index, process_count)
  per_epoch = sum(take for _, _, take in ranges)
  if per_epoch == 0:
    raise ValueError(f'{source.name} {source.split}: no records for process '
                     f'{process_index} of {process_count}')
  start_epoch, offset = divmod(start_step * local_batch, per_epoch)
  root = tf.constant([config.seed, process_index], tf.int64)
  shuffle_root = tf.random.experimental.stateless_fold_in(root, 0)
  augment_root = tf.random.experimental.stateless_fold_in(root, 1)

  bad = readers.BadRecords(source.name, source.split, config.dataset.skip_corrupt)

  def epoch(e):
    return readers.record_stream(
        ranges, cycle_length=c.cycle_length, shuffle_block=c.shuffle_buffer,
        shuffle_key=tf.random.experimental.stateless_fold_in(shuffle_root, e), bad=bad)

  def parse(i, record):
    return i, source.parse(record)

  def keep(i, element):
    del i
    return bad.keep(element, info.num_classes)

  def preprocess(i, element):
    seed = tf.random.experimental.stateless_fold_in(augment_root, i)
    return preprocess_train(element, seed, c, info)

  ds = tf.data.Dataset.range(start_epoch, 2**62).flat_map(epoch)
  ds = ds.enumerate(start=start_epoch * per_epoch).skip(offset)
  ds = ds.map(parse, num_parallel_calls=_parallel(c)).filter(keep)
  ds = _decoded(ds, preprocess, bad, _parallel(c))
  ds = ds.batch(local_batch, drop_remainder=True).prefetch(c.prefetch)
  return ds.with_options(_options(c)), bad


def eval_dataset(config, split: str, *, process_index: int = 0, process_count: int = 1,
                 info: DatasetInfo | None = None, views: Optional[Tuple[int, int]] = None):
  """The finite eval pipeline of one process, padded to whole batches.

  Every process yields the same number of batches (that of the process with the most
  records); padding elements have mask False.

  Returns:
    (dataset of {'video', 'label', 'id', 'mask'} batches, readers.BadRecords, batches).
  """
  c = config.input
  info = info or get_dataset_info(config)
  source = _source(config, split)
  local_batch = _local_batch(config.eval_batch_size, process_count, 'eval_batch_size')
  counts = [sum(t for _, _, t in readers.process_ranges(source.shards, p, process_count))
            for p in range(process_count)]
  num_batches = math.ceil(max(counts) / local_batch)
  ranges = readers.process_ranges(source.shards, process_index, process_count)
  views = views or (c.test_num_clips, c.test_num_crops)
  padding = {
      'video': tf.zeros([views[0] * views[1], c.num_frames, c.eval_image_size, c.eval_image_size, 3]),
      'label': tf.constant(0, tf.int32), 'id': tf.constant(''), 'mask': tf.constant(False)}
  pad = tf.data.Dataset.from_tensors(padding).repeat()
  bad = readers.BadRecords(source.name, split, config.dataset.skip_corrupt)
  if ranges:
    ds = readers.record_stream(ranges, cycle_length=1, bad=bad)
    ds = ds.map(source.parse, num_parallel_calls=_parallel(c))
    ds = ds.filter(functools.partial(bad.keep, num_classes=info.num_classes))
    ds = _decoded(ds, functools.partial(preprocess_eval, input_config=c, views=views), bad, _parallel(c))
    pad = ds.concatenate(pad)
  ds = pad.take(num_batches * local_batch).batch(local_batch).prefetch(c.prefetch)
  return ds.with_options(_options(c)), bad, num_batches


def _numpy_batches(ds, bad: readers.BadRecords):
  """Iterates a dataset as numpy dicts; errors while reading become one-line errors."""
  iterator = ds.as_numpy_iterator()
  while True:
    try:
      batch = next(iterator)
    except StopIteration:
      batch = None
    except tf.errors.OpError as e:
      raise bad.reraise(e) from None
    if bad.error:  # a bad record without skip_corrupt: dropped in the graph, raised here
      raise readers.BadRecordError(bad.error)
    if batch is None:
      return
    yield batch


def create_train_iterator(config, *, start_step: int = 0, process_index: int = 0,
                          process_count: int = 1, info: DatasetInfo | None = None):
  """Infinite iterator of {'video': float32 (B, T, H, W, 3), 'label': int32 (B,)}.

  B = config.batch_size // process_count. Resumable: with the same config and seed,
  the batches from `start_step=k` are batches k, k+1, ... of a run from step 0.
  """
  ds, bad = train_dataset(config, start_step=start_step, process_index=process_index,
                          process_count=process_count, info=info)
  return _numpy_batches(ds, bad)


def create_eval_iterator(config, split: str, *, process_index: int = 0,
                         process_count: int = 1, info: DatasetInfo | None = None,
                         views: Optional[Tuple[int, int]] = None):
  """Finite iterator of {'video': (B, V, T, H, W, 3), 'label', 'id' (bytes), 'mask': (B,)}.

  B = config.eval_batch_size // process_count, V = clips * crops of ``views`` (default
  the test protocol's).
  Over all processes every example of `split` appears exactly once with mask True; the
  last batches are padded (mask False) so that all processes yield as many batches.
  """
  ds, bad, _ = eval_dataset(config, split, process_index=process_index,
                            process_count=process_count, info=info, views=views)
  return _numpy_batches(ds, bad)
