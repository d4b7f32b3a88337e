"""Figures of what TPS does: the mosaic, the channel shift, and where attention looks in time.

Pure NumPy helpers compute the data; ``plot_*`` functions draw it with matplotlib (imported
lazily) and return the Figure, so notebooks and scripts share them.
"""
from typing import Dict, Optional, Sequence, Tuple

import jax
import numpy as np

from tps_jax import shifts


def source_frames(pattern, window_hw: Sequence[int], frame: int, num_frames: int) -> np.ndarray:
  """``(wh, ww)``: the frame each patch of a window reads at frame slot ``frame``."""
  s = shifts.pattern_offsets(pattern, window_hw, window_hw)
  return (frame - s) % num_frames


def plot_mosaic(pattern, window_hw=(7, 7), num_frames: int = 8, frames: Optional[Sequence[int]] = None):
  """One coloured window per frame slot: colour and number = the frame a patch reads."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  frames = list(range(min(num_frames, 4))) if frames is None else list(frames)
  fig, axes = plt.subplots(1, len(frames), figsize=(2.6 * len(frames), 2.9), squeeze=False)
  cmap = plt.get_cmap('tab10' if num_frames <= 10 else 'tab20')
  for ax, t in zip(axes[0], frames):
    src = source_frames(pattern, window_hw, t, num_frames)
    ax.imshow(src, cmap=cmap, vmin=-0.5, vmax=cmap.N - 0.5)
    for (i, j), v in np.ndenumerate(src):
      ax.text(j, i, str(v), ha='center', va='center', fontsize=8, color='white')
    ax.set_title(f'frame slot t={t}')
    ax.set_xticks([])
    ax.set_yticks([])
  fig.suptitle(f'Temporal patch shift: source frame of each patch of a '
               f'{window_hw[0]}x{window_hw[1]} window (T={num_frames})')
  fig.tight_layout()
  return fig


def channel_sources(num_heads: int, head_dim: int, fold_div: int = 8) -> np.ndarray:
  """``(num_heads * head_dim,)``: -1 (reads t-1), +1 (reads t+1) or 0 (own frame)."""
  fold = head_dim // fold_div
  head = np.zeros(head_dim, np.int64)
  head[:fold], head[fold:2 * fold] = -1, 1
  return np.tile(head, num_heads)


def plot_channel_shift(num_heads: int = 3, head_dim: int = 32, fold_div: int = 8):
  """Channel bands of each head and the frame they read (the TSM shift of even blocks)."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from matplotlib.colors import ListedColormap  # pylint: disable=g-import-not-at-top
  src = channel_sources(num_heads, head_dim, fold_div)
  fig, ax = plt.subplots(figsize=(8, 1.6))
  ax.imshow(src[None], aspect='auto', cmap=ListedColormap(['tab:blue', 'lightgrey', 'tab:orange']),
            vmin=-1.5, vmax=1.5)
  for h in range(1, num_heads):
    ax.axvline(h * head_dim - 0.5, color='k')
  ax.set_yticks([])
  ax.set_xlabel(f'channel ({num_heads} heads x {head_dim}): blue reads t-1, orange t+1, '
                'grey its own frame')
  ax.set_title('Channel shift (even blocks)')
  fig.tight_layout()
  return fig


def attention_maps(model, variables, clip) -> Dict[str, np.ndarray]:
  """Every block's attention ``(B, nT, nW, heads, N, N)``, keyed ``'layers_i/blocks_j'``."""
  _, state = model.apply(variables, clip, train=False, mutable=['intermediates'])
  flat = jax.tree_util.tree_flatten_with_path(state['intermediates'])[0]
  out = {}
  for path, value in flat:
    names = [getattr(k, 'key', getattr(k, 'idx', None)) for k in path]
    out['/'.join(n for n in names if isinstance(n, str) and n.startswith(('layers', 'blocks')))] = (
        np.asarray(value))
  return out


def attention_by_frame(attn: np.ndarray, pattern, window_hw: Sequence[int], *, frame: int,
                       window: int = 0, head: int = 0, query: Tuple[int, int] = (3, 3),
                       batch: int = 0) -> np.ndarray:
  """Attention of one query patch in a patch-shift block, spread over the key frames.

  Args:
    attn: one block's map from :func:`attention_maps`, ``(B, T, nW, heads, N, N)``.
    pattern, window_hw: the block's mosaic and window.
    frame, window, head, query: which query (frame slot, window index, head, (h, w)).
    batch: which clip.

  Returns:
    ``(by_frame, query_frame)``: ``(T, wh, ww)`` weight of each key patch, placed at the
    frame its content came from (zeros elsewhere; sums to 1), and the frame the query's own
    content came from.
  """
  wh, ww = window_hw
  num_frames = attn.shape[1]
  weights = attn[batch, frame, window, head, query[0] * ww + query[1]].reshape(wh, ww)
  src = source_frames(pattern, window_hw, frame, num_frames)
  out = np.zeros((num_frames, wh, ww), weights.dtype)
  rows, cols = np.indices((wh, ww))
  out[src, rows, cols] = weights
  return out, int(src[query])


def plot_attention_by_frame(by_frame: np.ndarray, query: Tuple[int, int], query_frame: int):
  """One panel per key frame (only frames that hold keys): where the query attends in time."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  used = [t for t in range(by_frame.shape[0]) if by_frame[t].any()]
  fig, axes = plt.subplots(1, len(used), figsize=(1.9 * len(used), 2.3), squeeze=False)
  vmax = by_frame.max()
  for ax, t in zip(axes[0], used):
    ax.imshow(by_frame[t], cmap='viridis', vmin=0, vmax=vmax)
    if t == query_frame:
      ax.scatter([query[1]], [query[0]], marker='x', color='red')
    ax.set_title(f'keys from frame {t}', fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
  fig.suptitle(f'One 2D window attends over {len(used)} frames (query x, its content from '
               f'frame {query_frame})')
  fig.tight_layout()
  return fig


def plot_clips(videos, labels, class_names: Sequence[str], num_shown_frames: int = 8):
  """A grid: one row per clip (``(T, H, W, 3)`` uint8), evenly spaced frames, label on the left."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  videos = [np.asarray(v) for v in videos]
  cols = min(num_shown_frames, min(v.shape[0] for v in videos))
  fig, axes = plt.subplots(len(videos), cols, figsize=(cols * 0.95, len(videos) * 1.0),
                           squeeze=False)
  for row, (video, label) in enumerate(zip(videos, labels)):
    frames = np.linspace(0, video.shape[0] - 1, cols).round().astype(int)
    for col, t in enumerate(frames):
      ax = axes[row, col]
      ax.imshow(video[t])
      ax.set_xticks([])
      ax.set_yticks([])
      if row == 0:
        ax.set_title(f't={t}', fontsize=7)
    axes[row, 0].set_ylabel(f'{int(label)} {class_names[int(label)]}', rotation=0, ha='right',
                            va='center', fontsize=7)
  fig.subplots_adjust(left=0.3, wspace=0.05, hspace=0.05)
  return fig


def plot_histories(workdirs: Dict[str, str], metrics=('train_loss', 'val_top1')):
  """Training curves of several ``main.py`` workdirs on shared axes (one panel per metric)."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from tps_jax import reporting  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.2), squeeze=False)
  for name, workdir in workdirs.items():
    history = reporting.read_history(workdir)
    for ax, metric in zip(axes[0], metrics):
      points = history.get(metric, [])
      if points:
        steps, values = zip(*points)
        ax.plot(steps, values, marker='o' if len(points) < 20 else None, label=name)
      ax.set_title(metric)
      ax.set_xlabel('step')
  axes[0, 0].legend()
  fig.tight_layout()
  return fig


def plot_confusion(confusion: np.ndarray, class_names: Sequence[str], title: str = ''):
  """Row-normalised confusion matrix (rows: true class)."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  confusion = np.asarray(confusion, np.float64)
  rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
  fig, ax = plt.subplots(figsize=(5.5, 5))
  ax.imshow(rates, cmap='Blues', vmin=0, vmax=1)
  ticks = np.arange(len(class_names))
  ax.set_xticks(ticks, [f'{i}' for i in ticks], fontsize=7)
  ax.set_yticks(ticks, [f'{i} {n}' for i, n in enumerate(class_names)], fontsize=7)
  ax.set_xlabel('predicted')
  for (i, j), v in np.ndenumerate(rates):
    if v >= 0.05:
      ax.text(j, i, f'{v:.2f}', ha='center', va='center', fontsize=6,
              color='white' if v > 0.5 else 'black')
  ax.set_title(title)
  fig.tight_layout()
  return fig


def read_confusion(path: str):
  """``(matrix, class_names)`` from the ``confusion_<split>.csv`` that evaluation writes."""
  import csv  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  from tps_jax import workdir as wd  # pylint: disable=g-import-not-at-top
  rows = list(csv.reader(io.StringIO(wd.read_text(path), newline='')))
  names = [r[0] for r in rows[1:]]
  return np.array([[float(v) for v in r[3:]] for r in rows[1:]]), names  # name, count, acc, counts
