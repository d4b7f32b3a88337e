"""Top-k classes of your videos from a trained (``main.py``) or converted checkpoint.

The library of ``python -m tps_jax.apps.predict`` (its command lines are there). A video
(mp4/webm/avi/mkv/mov, or a folder of JPEG frames) is treated as evaluation treats a clip
of the config's data set: decoded and stored as that data set's builder stores it (short
side, JPEG quality), cut into the config's test views (clips x crops, uniform or dense
sampling: ``input_pipeline.pipeline.preprocess_eval``) and scored by
``inference.scores`` (softmax averaged over the views), the function ``steps.eval_step``
calls. A video of the data set therefore gets the probabilities that
``main.py --mode=evaluate`` gives it.

Checkpoints: anything :func:`tps_jax.weights.load_params` reads. Class names: a
labels file (one name per line, as a builder's ``classes.txt``; or JSON, a list or SSv2's
``labels.json`` {name: index}), else those of the config's data set if it is prepared,
else the class indices.

Python (a notebook)::

    predictor = predict.Predictor.load(config, '/path/to/workdir')
    for p in predictor.predict(['a.mp4', 'b.webm'], batch_size=2):
      print(p.video, p.labels[0], p.probs[0])
"""
import collections
import concurrent.futures
import dataclasses
import functools
import json
import os
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Union

import jax
import numpy as np
import tensorflow as tf
import tqdm

from input_pipeline import features
from input_pipeline import pipeline
from input_pipeline import registry
from input_pipeline import sampling
from input_pipeline import video_io
from tps_jax import inference
from tps_jax import models
from tps_jax import weights


@dataclasses.dataclass(frozen=True)
class Prediction:
  """The top-k classes of one video, most probable first.

  Attributes:
    video: the path as given.
    labels: class names.
    indices: class indices.
    probs: softmax probabilities, averaged over the test views.
    error: why the video could not be read (``skip_unreadable``); the lists are empty.
  """
  video: str
  labels: List[str]
  indices: List[int]
  probs: List[float]
  error: Optional[str] = None

  def to_json(self) -> str:
    """One JSONL line: video, labels, indices, probs (and error, for a skipped video)."""
    d = dataclasses.asdict(self)
    if d['error'] is None:
      del d['error']
    return json.dumps(d)


def storage(config) -> Dict[str, Optional[float]]:
  """How the config's data set stores frames: ``min_resize``, ``fps``, ``max_frames``, ``quality``.

  The builder config of ``config.dataset`` (res256: short side 256, JPEG quality 90);
  data sets without one (synthetic, TFRecord directories): short side
  ``config.input.min_resize``, every frame, quality 90.
  """
  d = config.dataset
  spec = registry.SPECS.get(d.name)
  if d.format == 'tfds' and spec is not None and spec.manual:
    c = registry.VIDEO_STORAGE.get(d.builder_config or spec.default_builder_config)
    if c is not None:
      return dict(min_resize=c['min_resize'], fps=c['fps'], max_frames=c['max_frames'],
                  quality=c['jpeg_quality'])
  return dict(min_resize=config.input.min_resize, fps=None, max_frames=None, quality=90)


def read_labels(path: str) -> List[str]:
  """Class names from a file: one per line (blank and ``#`` lines skipped), or JSON.

  JSON: a list of names, or ``{name: index}`` (SSv2's ``labels.json``, indices may be strings).
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f'no such file: {path}')
  with open(path, encoding='utf-8-sig') as f:
    text = f.read()
  if not path.endswith('.json'):
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith('#')]
  try:
    data = json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f'{path}:{e.lineno}: invalid JSON: {e.msg}') from None
  if isinstance(data, dict):
    by_index = {int(i): name for name, i in data.items()}
    if sorted(by_index) != list(range(len(data))):
      raise ValueError(f'{path}: the indices are not 0..{len(data) - 1}')
    return [by_index[i] for i in range(len(data))]
  return [str(name) for name in data]


def dataset_class_names(config) -> Optional[List[str]]:
  """The class names of ``config.dataset`` if it is prepared (never prepares it), else None."""
  try:
    return pipeline.get_dataset_info(config).class_names
  except features.NotPreparedError:
    return None


def class_names(config, num_classes: int, labels: Optional[str] = None) -> List[str]:
  """The names in the file ``labels``, else the prepared data set's, else ``'0' ..
  str(num_classes - 1)``. Errors name the file, not a flag (the app adds its own)."""
  if labels:
    names, source = read_labels(labels), labels
  else:
    spec = registry.SPECS.get(config.dataset.name)
    source = f'data set {config.dataset.name}' + (
        f' (class names from {spec.class_names_from})' if spec else '')
    names = dataset_class_names(config)
    if names is None:
      return [str(i) for i in range(num_classes)]
  if len(names) != num_classes:
    raise ValueError(f'{source} has {len(names)} class names, the checkpoint '
                     f'{num_classes} classes' + ('' if labels else ': give the class names'))
  return names


class Predictor:
  """A model, its parameters and the config's test protocol, ready to score videos.

  Args:
    config: the experiment config (``model``, ``input``'s test views, ``dataset`` storage).
    model: ``tps_jax.models.build_model(config.model, num_classes)``.
    params: its parameters.
    class_names: index -> name, one per class.
  """

  def __init__(self, config, model, params, class_names: Sequence[str]):
    if len(class_names) != model.num_classes:
      raise ValueError(f'{len(class_names)} class names for {model.num_classes} classes')
    models.validate(config.model, config.input.num_frames, config.input.eval_image_size)
    self.config, self.model = config, model
    self.class_names = list(class_names)
    self.storage = storage(config)
    self.params = params
    self._scores = jax.jit(functools.partial(inference.scores, model.apply, config=config))
    self._preprocess = tf.function(
        lambda frames: pipeline.preprocess_eval(
            {'frames': frames, 'label': tf.constant(0, tf.int64)}, config.input)['video'],
        input_signature=[tf.TensorSpec([None], tf.string)])

  @classmethod
  def load(cls, config, checkpoint: str, labels: Optional[str] = None) -> 'Predictor':
    """A predictor of the checkpoint's own classifier (:func:`weights.load_params`), names
    from :func:`class_names`."""
    models.validate(config.model, config.input.num_frames, config.input.eval_image_size)
    params, provenance = weights.load_params(checkpoint, config.model, None)
    model = models.build_model(config.model, provenance.num_classes)
    return cls(config, model, params, class_names(config, model.num_classes, labels))

  def views(self, video: str) -> np.ndarray:
    """The test views of a video file or frame folder: float32 (V, T, S, S, 3), normalised.

    Raises:
      video_io.VideoReadError: one line naming the file.
    """
    s, c = self.storage, self.config.input
    frames = video_io.read_video_or_frames(os.fspath(video), min_resize=s['min_resize'],
                                           fps=s['fps'], max_frames=s['max_frames'])
    # JPEG as the builder stores frames, but only the sampled ones: preprocess_eval
    # samples indices before decoding, so the empty strings are never read.
    sampled = np.unique(sampling.sample_indices(len(frames), c,
                                                num_clips=c.test_num_clips).numpy())
    jpegs = [b''] * len(frames)
    for i, jpeg in zip(sampled, video_io.encode_jpeg(frames[sampled], s['quality'])):
      jpegs[i] = jpeg
    return self._preprocess(tf.constant(jpegs)).numpy()

  def probabilities(self, views: np.ndarray) -> np.ndarray:
    """(B, V, T, S, S, 3) views -> (B, num_classes) softmax averaged over the views."""
    return np.asarray(self._scores(self.params, views)['probs'])

  def predict(self, videos: Iterable[Union[str, os.PathLike]], *, batch_size: int = 1,
              top_k: int = 5, skip_unreadable: bool = False,
              progress: Optional[bool] = False) -> Iterator[Prediction]:
    """Yields the :class:`Prediction` of each video, in order.

    Args:
      videos: video files or JPEG frame folders.
      batch_size: videos per forward pass (one compilation: the last batch is padded).
      top_k: classes kept per video.
      skip_unreadable: yield a Prediction with ``error`` for a video that cannot be
        read, instead of raising.
      progress: a tqdm bar over the videos (None: only on a terminal).

    Raises:
      video_io.VideoReadError: an unreadable video (one line naming it), unless skipped.
    """
    videos = [os.fspath(v) for v in videos]
    top_k = min(top_k, len(self.class_names))
    pending, readable = [], 0  # (video, views or the error), in order
    bar = tqdm.tqdm(total=len(videos), unit='video', dynamic_ncols=True,
                    disable=None if progress is None else not progress)
    with bar, concurrent.futures.ThreadPoolExecutor(2) as pool:
      for video, views in _lookahead(pool, self._read, videos, 2 * batch_size):
        if isinstance(views, video_io.VideoReadError) and not skip_unreadable:
          raise views
        pending.append((video, views))
        readable += not isinstance(views, Exception)
        if readable == batch_size:
          yield from self._flush(pending, batch_size, top_k, bar)
          pending, readable = [], 0
      yield from self._flush(pending, batch_size, top_k, bar)

  def _read(self, video):
    try:
      return self.views(video)
    except video_io.VideoReadError as e:
      return e

  def _flush(self, pending, batch_size, top_k, bar):
    ok = [v for _, v in pending if not isinstance(v, Exception)]
    if ok:
      x = np.stack(ok)
      pad = np.zeros((batch_size - len(x),) + x.shape[1:], x.dtype)
      probs = iter(self.probabilities(np.concatenate([x, pad]))[:len(x)])
    for video, views in pending:
      bar.update()
      if isinstance(views, Exception):
        yield Prediction(video, [], [], [], error=str(views))
        continue
      p = next(probs)
      top = np.argsort(-p, kind='stable')[:top_k]
      yield Prediction(video, [self.class_names[i] for i in top], [int(i) for i in top],
                       [float(p[i]) for i in top])


def _lookahead(pool, fn, items, depth):
  """Yields (item, fn(item)) in order, at most ``depth`` computed ahead in ``pool``."""
  queue = collections.deque()
  for item in items:
    queue.append((item, pool.submit(fn, item)))
    if len(queue) > depth:
      item, future = queue.popleft()
      yield item, future.result()
  while queue:
    item, future = queue.popleft()
    yield item, future.result()


def predict(config, checkpoint: str, videos: Iterable[Union[str, os.PathLike]], *,
            labels: Optional[str] = None, batch_size: int = 1, top_k: int = 5,
            skip_unreadable: bool = False, progress: Optional[bool] = False
            ) -> List[Prediction]:
  """The top-k classes of each video: :meth:`Predictor.load` then :meth:`Predictor.predict`.

  Args:
    config: the experiment config (model, test protocol, data set for the class names).
    checkpoint: a ``main.py`` workdir, a converted orbax dir, or an official .pth / .npz.
    videos: video files or JPEG frame folders.
    labels: a class-name file (see :func:`read_labels`); default: the data set's names.
    batch_size, top_k, skip_unreadable, progress: see :meth:`Predictor.predict`.

  Returns:
    One :class:`Prediction` per video, in order.
  """
  return list(Predictor.load(config, checkpoint, labels).predict(
      videos, batch_size=batch_size, top_k=top_k, skip_unreadable=skip_unreadable,
      progress=progress))
