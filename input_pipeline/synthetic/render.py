"""Procedural renderer of the synthetic temporal-reasoning clips (numpy + PIL only).

Every class has a time-reversed twin. A clip of the *reversed* class (odd label) is
rendered as the *exact* time reversal of a forward clip (even label) drawn from the
same distribution, and only then gets i.i.d. per-frame noise. The set of frames of a
clip therefore tells a model which *pair* it belongs to but nothing about which member:
a model that ignores frame order is capped at 50% top-1, one that reads the order can
approach 100%.

Only numpy and PIL are used here, so forked generation workers stay light.
"""
import dataclasses
import io
from typing import Sequence

import numpy as np
from PIL import Image

from input_pipeline import registry

# Pairs (2k, 2k+1): the odd class is the time reversal of the even one.
CLASS_NAMES = (
    'moving_left_to_right', 'moving_right_to_left',
    'moving_up', 'moving_down',
    'approaching', 'receding',
    'rotating_clockwise', 'rotating_counterclockwise',
    'appearing', 'disappearing',
)
# Classes that swap under a horizontal flip (all others are flip-invariant); the
# registry's, which the configs read too.
FLIP_PAIRS = registry.SYNTHETIC_FLIP_PAIRS
_MOTIONS = ('horizontal', 'vertical', 'scale', 'rotation', 'appearance')
_SHAPES = ('disk', 'square', 'triangle', 'arrow', 'ell', 'bar_knob')
# Shapes whose orientation is unambiguous (rotation classes draw from these).
_ORIENTED_SHAPES = ('triangle', 'arrow', 'ell', 'bar_knob')
# Standard-normal quantiles at (i + 0.5) / 256: maps a uniform byte to a Gaussian sample.
_GAUSS_LUT = np.sort(np.random.default_rng(0).standard_normal(1 << 16))[128::256].astype(
    np.float32)


@dataclasses.dataclass(frozen=True)
class RenderSpec:
  """What a clip looks like; one per builder config."""
  num_frames: int = 32
  height: int = 64
  width: int = 64
  object_radius: tuple[float, float] = (0.18, 0.26)  # fraction of min(H, W)
  max_distractors: int = 2
  noise_std: float = 5.0                               # uint8 units, i.i.d. per pixel
  jpeg_quality: int = 75


# --- Shapes: signed distance (pixels inside > 0) in the object's unit frame. ---------


def _half_planes(u, v, planes):
  """min_i (c_i - a_i u - b_i v): signed distance to a convex polygon (approx.)."""
  return np.min([c - a * u - b * v for a, b, c in planes], axis=0)


def _box(u, v, u0, u1, v0, v1):
  return np.minimum(np.minimum(u - u0, u1 - u), np.minimum(v - v0, v1 - v))


def _triangle(u, v, apex, base_u, half_width):
  """Isoceles triangle pointing to +u with apex at (apex, 0), base at u=base_u."""
  length = apex - base_u
  n = np.hypot(half_width, length)
  return _half_planes(u, v, [(-1.0, 0.0, -base_u),
                             (half_width / n, length / n, half_width * apex / n),
                             (half_width / n, -length / n, half_width * apex / n)])


def _shape_distance(shape, u, v):
  if shape == 'disk':
    return 1.0 - np.sqrt(u * u + v * v)
  if shape == 'square':
    return _box(u, v, -0.8, 0.8, -0.8, 0.8)
  if shape == 'triangle':
    return _triangle(u, v, 1.0, -0.8, 0.7)
  if shape == 'arrow':
    return np.maximum(_box(u, v, -1.0, 0.1, -0.22, 0.22), _triangle(u, v, 1.0, 0.05, 0.65))
  if shape == 'ell':
    return np.maximum(_box(u, v, -0.9, 0.9, -0.9, -0.35), _box(u, v, -0.9, -0.35, -0.9, 0.9))
  if shape == 'bar_knob':
    knob = 0.42 - np.sqrt((u - 0.6) ** 2 + v * v)
    return np.maximum(_box(u, v, -1.0, 0.6, -0.2, 0.2), knob)
  raise ValueError(f'unknown shape {shape!r}')


def _soft_mask(shape, xx, yy, cx, cy, scale, angle):
  """Anti-aliased coverage (T, h, w) of `shape` placed per frame, and its frame (u, v).

  Args:
    shape: a name from _SHAPES.
    xx, yy: pixel-centre coordinates (h, w) of the region to render.
    cx, cy, scale, angle: per-frame centre (pixels), radius (pixels), angle (radians),
      each of shape (T,). Positive angles turn clockwise on screen (y points down).
  """
  f32 = lambda a: np.asarray(a, np.float32)[:, None, None]
  c, s, r = f32(np.cos(angle)), f32(np.sin(angle)), f32(np.maximum(scale, 1e-3))
  dx = xx[None] - f32(cx)
  dy = yy[None] - f32(cy)
  u = (c * dx + s * dy) / r
  v = (c * dy - s * dx) / r
  return np.clip(0.5 + _shape_distance(shape, u, v) * r, 0.0, 1.0), u, v


def _paint(frames, shape, colour, cx, cy, scale, angle, alpha=None, texture=0.0):
  """Composites a shape moving along (cx, cy, scale, angle) over frames, in place.

  Only the bounding box of the whole trajectory is rendered (that is most of the cost).
  `texture` darkens a checkerboard drawn in the shape's own frame by that fraction: it
  moves, turns and scales with the shape, so its inside shows the motion too.
  """
  _, h, w, _ = frames.shape
  reach = 1.3 * float(np.max(scale)) + 1.5  # every shape lies within radius 1.3
  x0, x1 = int(max(0, np.min(cx) - reach)), int(min(w, np.max(cx) + reach + 1))
  y0, y1 = int(max(0, np.min(cy) - reach)), int(min(h, np.max(cy) + reach + 1))
  if x0 >= x1 or y0 >= y1:
    return
  yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
  m, u, v = _soft_mask(shape, xx, yy, cx, cy, scale, angle)
  if alpha is not None:
    m *= np.asarray(alpha, np.float32)[:, None, None]
  m = m[..., None]
  paint = np.asarray(colour, np.float32)
  if texture:
    checker = np.sin(2.5 * np.pi * u) * np.sin(2.5 * np.pi * v) > 0
    paint = paint * (1.0 - texture * checker[..., None]).astype(np.float32)
  region = frames[:, y0:y1, x0:x1]
  region += m * (paint - region)


# --- Background and colours. -------------------------------------------------------


def _upsample(grid, height, width):
  """Bilinear upsampling of a small (h, w, C) grid to (height, width, C)."""
  gh, gw = grid.shape[:2]
  ys = np.linspace(0, gh - 1, height)
  xs = np.linspace(0, gw - 1, width)
  y0 = np.floor(ys).astype(int).clip(0, gh - 2)
  x0 = np.floor(xs).astype(int).clip(0, gw - 2)
  wy = (ys - y0)[:, None, None]
  wx = (xs - x0)[None, :, None]
  g00, g01 = grid[y0][:, x0], grid[y0][:, x0 + 1]
  g10, g11 = grid[y0 + 1][:, x0], grid[y0 + 1][:, x0 + 1]
  return (g00 * (1 - wy) * (1 - wx) + g01 * (1 - wy) * wx + g10 * wy * (1 - wx) + g11 * wy * wx)


def _background(rng, spec):
  """A static, dark, low-contrast cluttered background: colour field + stripes + blobs.

  Dark and muted so that the bright main object is easy to segment: the data set is
  about the direction of time, not about figure-ground separation (with hue-random
  objects on busy backgrounds a small transformer from scratch stays at chance).
  """
  h, w = spec.height, spec.width
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
  base = rng.uniform(25, 85) + rng.normal(0, 10, size=3)
  field = _upsample(rng.normal(0, 8, size=(rng.integers(3, 7), rng.integers(3, 7), 3)), h, w)
  theta = rng.uniform(0, np.pi)
  period = rng.uniform(5, 14)
  stripes = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period
                   + rng.uniform(0, 2 * np.pi))
  img = base + field + rng.uniform(2, 6) * stripes[..., None] * rng.uniform(0.3, 1, size=3)
  img = img.astype(np.float32)[None]
  for _ in range(rng.integers(1, 5)):  # static clutter, muted colours
    one = lambda a: np.array([a])
    _paint(img, _SHAPES[rng.integers(len(_SHAPES))], base + rng.normal(0, 12, size=3),
           one(rng.uniform(0, w)), one(rng.uniform(0, h)),
           one(rng.uniform(0.05, 0.13) * min(h, w)), one(rng.uniform(0, 2 * np.pi)))
  return img[0]


def _object_colour(rng):
  """A bright colour of random hue, far above the background's mean brightness."""
  colour = rng.uniform(140, 255, size=3)
  colour[rng.integers(3)] = rng.uniform(235, 255)
  return colour.astype(np.float32)


def _distractor_colour(rng):
  """Mid-grey-ish colours: visible, but dimmer than any main object."""
  return rng.uniform(70, 150, size=3).astype(np.float32)


def _smooth_walk(rng, num_frames, amplitude):
  """A stationary (hence time-reversible in law) random trajectory around 0."""
  t = np.arange(num_frames)
  out = np.zeros(num_frames)
  for _ in range(3):
    out += np.sin(2 * np.pi * t / rng.uniform(8, 40) + rng.uniform(0, 2 * np.pi))
  return amplitude * out / 3


# --- The forward clip of each pair. ---------------------------------------------------


def _trajectory(rng, motion, spec):
  """Per-frame centre, radius, angle and opacity of the main object (forward class)."""
  t_count, h, w = spec.num_frames, spec.height, spec.width
  size = min(h, w)
  radius = rng.uniform(*spec.object_radius) * size
  t = np.linspace(0.0, 1.0, t_count)
  # The motion happens in a random window covering 45-75% of the clip (still before and
  # after): fast enough to be seen between nearby sampled frames. Mild random easing.
  duration = rng.uniform(0.45, 0.75)
  progress = np.clip((t - rng.uniform(0.0, 1.0 - duration)) / duration, 0.0, 1.0)
  ease = progress + rng.uniform(-0.25, 0.25) * np.sin(np.pi * progress)
  cx = np.full(t_count, rng.uniform(0.3, 0.7) * w)
  cy = np.full(t_count, rng.uniform(0.3, 0.7) * h)
  scale = np.full(t_count, radius)
  angle = np.full(t_count, rng.uniform(0, 2 * np.pi))
  alpha = np.ones(t_count)
  if motion in ('horizontal', 'vertical'):
    extent = w if motion == 'horizontal' else h
    travel = rng.uniform(0.4, 0.65) * extent
    start = rng.uniform(radius * 0.6, extent - radius * 0.6 - travel)
    if motion == 'horizontal':   # forward: left -> right
      cx = start + travel * ease
      cy = cy + _smooth_walk(rng, t_count, 0.03 * h)
    else:                        # forward: bottom -> top (moving up)
      cy = extent - (start + travel * ease)
      cx = cx + _smooth_walk(rng, t_count, 0.03 * w)
  elif motion == 'scale':        # forward: approaching (growing)
    small = rng.uniform(0.3, 0.45)
    scale = radius * (small + (1.25 - small) * ease)
    cx = cx + _smooth_walk(rng, t_count, 0.04 * w)
    cy = cy + _smooth_walk(rng, t_count, 0.04 * h)
  elif motion == 'rotation':     # forward: clockwise on screen
    # Turning about a pivot near one end, like a clock hand or a lever: the far end
    # sweeps a large arc (a shape spinning about its own centre barely moves its pixels).
    turn = np.deg2rad(rng.uniform(120, 240))
    angle = angle[0] + turn * ease
    scale = scale * 0.85
    arm = 0.9 * scale
    cx = rng.uniform(0.42, 0.58) * w + arm * np.cos(angle)
    cy = rng.uniform(0.42, 0.58) * h + arm * np.sin(angle)
  elif motion == 'appearance':   # forward: appearing, by fading in or growing from 0
    onset = rng.uniform(0.05, 0.35)
    duration = rng.uniform(0.2, 0.4)
    ramp = np.clip((t - onset) / duration, 0.0, 1.0)
    if rng.random() < 0.5:
      alpha = ramp
    else:
      scale = radius * ramp
      alpha = (ramp > 0).astype(float)
  else:
    raise ValueError(motion)
  return cx, cy, scale, angle, alpha


def render_forward(seed: Sequence[int], pair: int, spec: RenderSpec) -> np.ndarray:
  """Renders the noise-free forward clip of `pair`, float32 (T, H, W, 3) in [0, 255]."""
  rng = np.random.default_rng(list(seed) + [pair])
  t_count, h, w = spec.num_frames, spec.height, spec.width
  background = _background(rng, spec)
  frames = np.broadcast_to(background, (t_count, h, w, 3)).copy()
  # Distractors: small shapes wandering on stationary random walks (no net direction).
  for _ in range(rng.integers(0, spec.max_distractors + 1)):
    r = rng.uniform(0.05, 0.09) * min(h, w)
    shape = _SHAPES[rng.integers(len(_SHAPES))]
    dcx = rng.uniform(0.1, 0.9) * w + _smooth_walk(rng, t_count, 0.15 * w)
    dcy = rng.uniform(0.1, 0.9) * h + _smooth_walk(rng, t_count, 0.15 * h)
    dang = rng.uniform(0, 2 * np.pi) + _smooth_walk(rng, t_count, 1.0)
    _paint(frames, shape, _distractor_colour(rng), dcx, dcy, np.full(t_count, r), dang)
  # The main object, with a checkerboard texture that moves with it.
  motion = _MOTIONS[pair]
  shapes = _ORIENTED_SHAPES if motion == 'rotation' else _SHAPES
  shape = shapes[rng.integers(len(shapes))]
  colour = _object_colour(rng)
  cx, cy, scale, angle, alpha = _trajectory(rng, motion, spec)
  _paint(frames, shape, colour, cx, cy, scale, angle, alpha, texture=rng.uniform(0.15, 0.3))
  # Global brightness flicker (stationary in time, so reversal does not reveal it).
  frames *= (1 + 0.04 * rng.standard_normal(t_count)).astype(np.float32)[:, None, None, None]
  return frames


def render_clip(seed: Sequence[int], label: int, spec: RenderSpec, *, noise: bool = True):
  """Renders one clip of class `label`: uint8 (T, H, W, 3).

  The forward content depends only on (seed, label // 2): labels 2k and 2k+1 with the
  same seed are exact time reversals of each other before the i.i.d. noise is added.
  """
  if not 0 <= label < len(CLASS_NAMES):
    raise ValueError(f'label {label} outside [0, {len(CLASS_NAMES)})')
  frames = render_forward(seed, label // 2, spec)
  if label % 2:
    frames = frames[::-1]
  if noise:  # i.i.d. Gaussian: uniform random bytes through an inverse-CDF table (fast)
    noise_rng = np.random.default_rng(list(seed) + [1000 + label])
    noise_bytes = np.frombuffer(noise_rng.bytes(frames.size), np.uint8).reshape(frames.shape)
    frames = frames + (spec.noise_std * _GAUSS_LUT)[noise_bytes]
  frames += 0.5  # round to nearest below
  return np.clip(frames, 0, 255, out=frames).astype(np.uint8)


def encode_jpeg(frames: np.ndarray, quality: int) -> list[bytes]:
  """JPEG-encodes each frame of a uint8 (T, H, W, 3) clip."""
  out = []
  for frame in frames:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format='JPEG', quality=quality, optimize=True)
    out.append(buf.getvalue())
  return out


def clip_label(index: int) -> int:
  """Class of the index-th clip of a split: round robin, so every split is balanced."""
  return index % len(CLASS_NAMES)


def render_encoded(job):
  """Worker entry point: (seed, index, spec) -> (index, label, [JPEG bytes])."""
  seed, index, spec = job
  label = clip_label(index)
  return index, label, encode_jpeg(render_clip(tuple(seed) + (index,), label, spec),
                                   spec.jpeg_quality)
