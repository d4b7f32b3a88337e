"""What every tps-jax TFDS builder shares: configs, annotation helpers, the parallel writer.

A builder subclasses :class:`VideoBuilder` and implements ``_read_annotations``, which
turns the manual directory into class names and a list of :class:`Clip` per split.
This module then checks that every file exists, decodes + resizes + JPEG-encodes the
clips in worker processes (order kept, memory bounded) and yields them to the single
TFDS writer process. Errors name the data set, the split, the annotation entry
(``train.txt:4``) and the file, on one line.

Release scale. Encoded clips are also kept in a resume cache (``<data_dir>/downloads/
tps_resume/``, chunks of encoded clips keyed by file, size and mtime) until the build
succeeds: after a failure or a Ctrl-C the next build reads them instead of decoding again.
The prepared data keeps a fingerprint of its inputs (annotation files; video names,
sizes and mtimes): building into the same data dir from changed inputs is refused with
one line saying what changed, unless the build is asked to overwrite.
"""
import collections
import csv
import dataclasses
import functools
import gzip
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import signal
import struct
import time

from absl import logging
from etils import epath
import tensorflow_datasets as tfds
import tqdm

from input_pipeline import features
from input_pipeline import registry
from input_pipeline import video_io
from input_pipeline.builders import BuildError

# Stored with the prepared data: what it was built from (see `fingerprint`).
FINGERPRINT = 'inputs_fingerprint.json.gz'
SKIP_HINT = ('(to skip missing or unreadable videos: --skip_unreadable, or '
             'config.dataset.skip_unreadable=True with main.py)')


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


# res256 (the paper's storage) and res128: registry.VIDEO_STORAGE.
STANDARD_CONFIGS = tuple(VideoConfig(name=name, **storage)
                         for name, storage in registry.VIDEO_STORAGE.items())


def default_num_workers():
  return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()


class StaleDataError(BuildError):
  """The prepared data was built from other inputs than the manual directory holds now."""


class VideoBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the tps-jax builders: clips from a manual directory, written in parallel.

  Builder keyword arguments (``tfds.builder(name, **kwargs)``, or ``builder_kwargs``
  of ``tfds.load``) set how the inputs are handled; they do not change the format:

  Args:
    num_workers: decoding processes; 0 decodes in the writer process. Default: all cores.
    skip_unreadable: skip missing, empty, truncated or undecodable videos instead of
      stopping at the first one; each split's skipped entries are listed in
      ``skipped_<split>.txt`` in the prepared data directory and counted in the log and
      ``info.metadata``.
    **kwargs: for ``tfds.core.GeneratorBasedBuilder`` (data_dir, config, version).
  """
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  BUILDER_CONFIGS = list(STANDARD_CONFIGS)
  DESCRIPTION = ''
  HOMEPAGE = ''
  CITATION = ''
  PROGRESS_LOG_SECONDS = 60  # clips/s and ETA in the log (the bar only draws on a tty)

  def __init__(self, *, num_workers=None, skip_unreadable=False, **kwargs):
    self._num_workers = default_num_workers() if num_workers is None else num_workers
    self._skip_unreadable = skip_unreadable
    super().__init__(**kwargs)

  def _read_annotations(self, manual_dir):
    """Returns (class_names in index order, {split: [Clip, ...]}) from the manual dir."""
    raise NotImplementedError

  @property
  def resume_dir(self):
    """Where encoded clips wait until the build succeeds (a later build reuses them).

    A local directory: the cache is appended to and read at offsets. Beside the data on a
    local disk; for a ``gs://`` data dir under ``~/.cache/tps_jax/resume/gs/<bucket>/...``.
    """
    root = os.fspath(self.data_dir_root)
    if '://' in root:
      root = os.path.join(os.path.expanduser('~/.cache/tps_jax/resume'),
                          root.replace('://', '/', 1))
    return os.path.join(root, 'downloads', 'tps_resume', self.name,
                        self.builder_config.name, str(self.version))

  def read_inputs(self, manual_dir):
    """(class_names, {split: [Clip]}, fingerprint) of a manual directory."""
    manual_dir = os.fspath(manual_dir)
    _READ_FILES.clear()
    class_names, splits = self._read_annotations(manual_dir)
    return class_names, splits, fingerprint(manual_dir, list(_READ_FILES), splits)

  def changed_inputs(self, manual_dir):
    """What differs between the manual dir and the prepared data's inputs ([]: nothing).

    None when the prepared data has no fingerprint (prepared before they were kept).
    """
    path = epath.Path(self.data_dir) / FINGERPRINT  # local or gs://
    if not path.is_file():
      return None
    stored = json.loads(gzip.decompress(path.read_bytes()).decode('utf-8'))
    return compare_fingerprints(stored, self.read_inputs(manual_dir)[2])

  def download_and_prepare(self, *, download_config=None, **kwargs):
    """TFDS's, but refuses prepared data built from other inputs, and resumes.

    With ``download_config.manual_dir`` set and the data already prepared, the inputs
    are compared with the prepared data's fingerprint: a difference raises
    :class:`StaleDataError` (one line) unless ``download_mode`` overwrites
    (``tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS``; ``build.py --overwrite``).
    """
    config = download_config or tfds.download.DownloadConfig()
    manual_dir = config.manual_dir
    if manual_dir and self.is_prepared() and not config.download_mode.overwrite_dataset:
      changes = self.changed_inputs(manual_dir)
      if changes:
        raise StaleDataError(
            f'{self.name}/{self.builder_config.name} in {self.data_dir} was prepared from '
            f'other inputs than {manual_dir}: {"; ".join(changes)}; rebuild it with '
            f'--overwrite (python -m tps_jax.apps.build --dataset={self.name} '
            f'--manual_dir={manual_dir} --data_dir={self.data_dir_root} '
            f'--builder_config={self.builder_config.name} --overwrite)')
      if changes is None:
        logging.warning('%s: %s has no %s (prepared by an older version): cannot check '
                        'that it matches %s', self.name, self.data_dir, FINGERPRINT, manual_dir)
    super().download_and_prepare(download_config=config, **kwargs)
    shutil.rmtree(self.resume_dir, ignore_errors=True)  # built: the cache is not needed

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
    class_names, splits, inputs = self.read_inputs(manual_dir)
    self.info.features['label'].names = list(class_names)
    # Every entry is checked before the (long) encoding starts.
    checked = self._check_clips(splits, inputs['videos'])
    (epath.Path(self.data_dir) / FINGERPRINT).write_bytes(
        gzip.compress(json.dumps(inputs).encode('utf-8')))
    return {split: self._generate_examples(split, clips, skipped, inputs['videos'][split])
            for split, (clips, skipped) in checked.items()}

  def _check_clips(self, splits, stats):
    """Returns {split: (clips whose file exists and is not empty, skipped [(clip, reason)])}.

    Raises on a missing or zero-byte file (unless skipping), on an id listed twice in a
    split, and on an id of an evaluation split that is also in train (leakage).
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
        _, size, _, is_dir = stats[split][clip.id]
        problem = ('no such file' if size < 0 else
                   'empty (zero-byte) video file' if size == 0 and not is_dir else None)
        if problem is None:
          present.append(clip)
        elif self._skip_unreadable:
          skipped.append((clip, f'{problem}: {clip.path}'))
        else:
          raise BuildError(f'{self.name} {split}: {clip.where}: {problem}: {clip.path} '
                           f'{SKIP_HINT}')
      checked[split] = present, skipped
    return checked

  def _generate_examples(self, split, clips, skipped, stats):
    """Encodes clips in worker processes and yields (id, example) in annotation order.

    Clips already in the resume cache are read from it; newly encoded ones are added
    to it as they come, and kept when the build stops early (error or Ctrl-C).
    """
    config = self.builder_config
    storage = dict(min_resize=config.min_resize, fps=config.fps,
                   max_frames=config.max_frames, quality=config.jpeg_quality)
    encode = functools.partial(encode_clip, **storage)
    cache = EncodeCache(self.resume_dir, split)
    keys = {c.id: cache.key(storage, stats[c.id]) for c in clips}
    cached = {c.id for c in clips if keys[c.id] in cache}
    todo = [c for c in clips if c.id not in cached]
    if len(todo) < len(clips):
      logging.info('%s %s: %d of %d clips already encoded (resume cache %s)', self.name,
                   split, len(clips) - len(todo), len(clips), self.resume_dir)
    rate = Throughput(f'{self.name} {split}', len(todo), self.PROGRESS_LOG_SECONDS)
    progress = tqdm.tqdm(total=len(clips), desc=f'{self.name} {split}', unit='clip',
                         smoothing=0.1, dynamic_ncols=True)
    encoded = iter(ordered_map(encode, todo, self._num_workers))
    try:
      with progress:
        for clip in clips:
          if clip.id in cached:
            result = cache.get(keys[clip.id])
            if result is None:  # damaged in the cache (warned): encode it here
              result = encode(clip)
              cache.put(keys[clip.id], result)
          else:
            _, result = next(encoded)
            cache.put(keys[clip.id], result)
            rate.update()
          progress.update()
          if isinstance(result, str):  # the worker's VideoReadError message
            if not self._skip_unreadable:
              raise BuildError(f'{self.name} {split}: {clip.where}: {result} {SKIP_HINT}')
            skipped.append((clip, result))
            continue
          yield clip.id, {'video': [io.BytesIO(b) for b in result], 'label': clip.label,
                          'id': clip.id}
    finally:
      cache.close()
      encoded.close()  # stops the worker pool
    rate.log(final=True)
    self._write_skipped(split, skipped)

  def _write_skipped(self, split, skipped):
    self.info.metadata[f'skipped_{split}'] = len(skipped)
    if not skipped:
      return
    path = epath.Path(self.data_dir) / f'skipped_{split}.txt'
    path.write_text(''.join(f'{c.where}\t{c.path}\t{reason}\n' for c, reason in skipped))
    logging.warning('%s %s: skipped %d unreadable or missing videos, listed in %s',
                    self.name, split, len(skipped), path.name)


# Annotation files read by the helpers below during `read_inputs` (for the fingerprint).
_READ_FILES = []


def _stat(path):
  """(size, mtime_ns, is_dir) of a path; size -1 when it does not exist."""
  try:
    st = os.stat(path)
  except OSError:
    return -1, 0, False
  return st.st_size, st.st_mtime_ns, os.path.isdir(path)


def _relative(path, root):
  rel = os.path.relpath(path, root)
  return path if rel.startswith('..') else rel


def fingerprint(manual_dir, annotation_files, splits):
  """What the data is built from: annotation files (size, mtime, sha256) and videos.

  Returns:
    {'annotations': {path: [size, mtime_ns, sha256]}, 'videos': {split: {id: [path,
    size, mtime_ns, is_dir]}}}; paths relative to manual_dir when inside it, and a
    size of -1 for a missing video.
  """
  annotations = {}
  for path in annotation_files:
    with open(path, 'rb') as f:
      digest = hashlib.sha256(f.read()).hexdigest()
    size, mtime, _ = _stat(path)
    annotations[_relative(path, manual_dir)] = [size, mtime, digest]
  videos = {split: {c.id: [_relative(c.path, manual_dir), *_stat(c.path)] for c in clips}
            for split, clips in splits.items()}
  return {'annotations': annotations, 'videos': videos}


def compare_fingerprints(old, new, examples=2):
  """Short descriptions of what differs between two `fingerprint`s ([]: the same)."""
  changes = []
  files_old, files_new = old['annotations'], new['annotations']
  for path in sorted(set(files_old) | set(files_new)):
    if path not in files_new:
      changes.append(f'{path} no longer read')
    elif path not in files_old:
      changes.append(f'{path} is new')
    elif files_old[path][2] != files_new[path][2]:
      changes.append(f'{path} changed')
  for split in sorted(set(old['videos']) | set(new['videos'])):
    a, b = old['videos'].get(split, {}), new['videos'].get(split, {})
    kinds = {'changed (size or mtime)': [i for i in b if i in a and a[i] != b[i]],
             'added': [i for i in b if i not in a], 'removed': [i for i in a if i not in b]}
    for kind, ids in kinds.items():
      if ids:
        shown = ', '.join(str((b.get(i) or a[i])[0]) for i in ids[:examples])
        more = f', ... {len(ids) - examples} more' if len(ids) > examples else ''
        changes.append(f'{split}: {len(ids)} video{"s" * (len(ids) > 1)} {kind} '
                       f'({shown}{more})')
  return changes


def pack_result(result) -> bytes:
  """An encoded clip as plain bytes (no pickle: the cache must never run code).

  ``b'E' + utf-8 message`` for a read error; ``b'J'``, the frame count and each frame's
  length (little-endian uint64), then the JPEGs back to back.
  """
  if isinstance(result, str):
    return b'E' + result.encode()
  lengths = [len(b) for b in result]
  return b''.join([b'J', struct.pack(f'<{len(lengths) + 1}Q', len(lengths), *lengths),
                   *result])


def unpack_result(data: bytes):
  """The inverse of :func:`pack_result`; ValueError when ``data`` is not one."""
  if data[:1] == b'E':
    return data[1:].decode()
  if data[:1] != b'J' or len(data) < 9:
    raise ValueError('not an encoded clip')
  (n,) = struct.unpack_from('<Q', data, 1)
  if 9 + 8 * n > len(data):
    raise ValueError(f'frame count {n} does not fit')
  lengths = struct.unpack_from(f'<{n}Q', data, 9)
  offset = 9 + 8 * n
  if offset + sum(lengths) != len(data):
    raise ValueError('frame lengths do not add up')
  frames = []
  for length in lengths:
    frames.append(data[offset:offset + length])
    offset += length
  return frames


def _index_entries(path):
  """The ``[key, offset, length, sha256]`` entries of a chunk's index; ValueError if bad."""
  with open(path) as f:
    entries = json.load(f)
  if not isinstance(entries, list) or not all(
      isinstance(e, list) and len(e) == 4 and isinstance(e[0], str) and isinstance(e[3], str)
      and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in e[1:3])
      for e in entries):
    raise ValueError('not a list of [key, offset, length, sha256] (an older or damaged index)')
  return entries


class EncodeCache:
  """Encoded clips (JPEG lists or read errors) on disk, by a key of file + storage.

  Chunk files ``<split>-<n>.bin`` hold :func:`pack_result` bytes back to back;
  ``<split>-<n>.json`` (written when a chunk is closed, also on errors and Ctrl-C) indexes
  them with each entry's SHA-256. A chunk without its index (the process was killed) is
  ignored; a damaged index or entry is named in a warning and its clips are encoded again.
  """

  def __init__(self, directory, split, chunk_size=256):
    self.directory, self.split, self.chunk_size = directory, split, chunk_size
    os.makedirs(directory, exist_ok=True)
    self._index = {}  # key -> (file, offset, length, sha256)
    self._numbers = [-1]
    for name in sorted(os.listdir(directory)):
      stem, ext = os.path.splitext(name)
      number = stem.rsplit('-', 1)[-1]
      if ext != '.json' or not stem.startswith(split + '-') or not number.isdigit():
        continue
      self._numbers.append(int(number))
      try:
        entries = _index_entries(os.path.join(directory, name))
      except (OSError, ValueError) as e:
        logging.warning('resume cache %s is unreadable (%s): its clips are encoded again',
                        os.path.join(directory, name), str(e).splitlines()[0][:200])
        continue
      for key, offset, length, digest in entries:
        self._index[key] = (os.path.join(directory, stem + '.bin'), offset, length, digest)
    self._file, self._entries = None, []

  @staticmethod
  def key(storage, stat):
    """Key of one clip: its path, size, mtime and how it is stored."""
    return hashlib.sha1(json.dumps([storage, stat]).encode()).hexdigest()

  def __contains__(self, key):
    return key in self._index

  def get(self, key):
    """The cached result of key; None when absent or damaged (named in a warning)."""
    if key not in self._index:
      return None
    path, offset, length, digest = self._index[key]
    try:
      with open(path, 'rb') as f:
        f.seek(offset)
        data = f.read(length)
      if hashlib.sha256(data).hexdigest() != digest:
        raise ValueError('does not match its checksum (truncated or corrupted)')
      return unpack_result(data)
    except (OSError, ValueError, UnicodeDecodeError) as e:
      logging.warning('resume cache %s at offset %d: %s; the clip is encoded again', path,
                      offset, str(e).splitlines()[0][:200])
      del self._index[key]
      return None

  def put(self, key, result):
    """Appends a result; a chunk is closed (indexed) every chunk_size results."""
    if self._file is None:
      self._numbers.append(max(self._numbers) + 1)
      self._path = os.path.join(self.directory, f'{self.split}-{self._numbers[-1]:05d}')
      self._file = open(self._path + '.bin', 'wb')
    data = pack_result(result)
    self._entries.append((key, self._file.tell(), len(data), hashlib.sha256(data).hexdigest()))
    self._file.write(data)
    if len(self._entries) >= self.chunk_size:
      self.close()

  def close(self):
    """Indexes the open chunk (its results are then found by later builds)."""
    if self._file is None:
      return
    self._file.close()
    for key, offset, length, digest in self._entries:
      self._index[key] = (self._path + '.bin', offset, length, digest)
    with open(self._path + '.json.tmp', 'w') as f:
      json.dump(self._entries, f)
    os.replace(self._path + '.json.tmp', self._path + '.json')
    self._file, self._entries = None, []


class Throughput:
  """Logs clips/s and the time left every few seconds (the tqdm bar needs a terminal)."""

  def __init__(self, what, total, every_s):
    self.what, self.total, self.every_s = what, total, every_s
    self.done, self.start = 0, time.monotonic()
    self.last = self.start

  def update(self):
    self.done += 1
    if time.monotonic() - self.last >= self.every_s:
      self.log()

  def log(self, final=False):
    self.last = now = time.monotonic()
    rate = self.done / max(now - self.start, 1e-9)
    if final:
      if self.done:
        logging.info('%s: encoded %d clips in %.0f s (%.1f clips/s)', self.what, self.done,
                     now - self.start, rate)
      return
    eta = (self.total - self.done) / rate if rate else float('inf')
    logging.info('%s: %d/%d clips encoded, %.1f clips/s, ETA %s', self.what, self.done,
                 self.total, rate, format_seconds(eta))


def format_seconds(seconds):
  """3725 -> '1h02m05s'."""
  if seconds == float('inf'):
    return '?'
  minutes, s = divmod(int(seconds), 60)
  h, m = divmod(minutes, 60)
  return f'{h}h{m:02d}m{s:02d}s' if h else f'{m}m{s:02d}s'


def encode_clip(clip, *, min_resize, fps, max_frames, quality):
  """Worker: a Clip -> list of JPEG bytes, or the one-line reason it cannot be read."""
  try:
    frames = video_io.read_video_or_frames(
        clip.path, min_resize=min_resize, fps=fps, max_frames=max_frames, threads=1)
  except video_io.VideoReadError as e:
    return str(e)
  return video_io.encode_jpeg(frames, quality)


def _ignore_sigint():
  signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the writer, not 16 tracebacks


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
  with context.Pool(num_workers, initializer=_ignore_sigint) as pool:
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
  _READ_FILES.append(path)
  return path


def find_annotation(dataset, manual_dir, names, *, skip_dirs=()):
  """The one file called any of ``names`` in manual_dir or one of its direct subfolders.

  Releases and the tools that rename them put annotation files in different places;
  this accepts them all but refuses to guess between two.

  Args:
    dataset: data-set name for error messages.
    manual_dir: the manual directory.
    names: accepted file names, the release's first.
    skip_dirs: subfolders not searched (the video folder: 220k entries).

  Raises:
    BuildError: none found (the message lists the accepted names) or several.
  """
  folders = [manual_dir] + sorted(
      e.path for e in os.scandir(manual_dir) if e.is_dir() and e.name not in skip_dirs)
  found = [os.path.join(d, n) for d in folders for n in names
           if os.path.isfile(os.path.join(d, n))]
  if len(found) == 1:
    return found[0]
  if found:
    listed = ', '.join(os.path.relpath(f, manual_dir) for f in found)
    raise BuildError(f'{dataset}: several annotation files for one role in {manual_dir}: '
                     f'{listed}; keep one')
  raise BuildError(f'{dataset}: missing annotation file: none of {" / ".join(names)} in '
                   f'{manual_dir} or its subfolders (see MANUAL_DOWNLOAD_INSTRUCTIONS)')


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
