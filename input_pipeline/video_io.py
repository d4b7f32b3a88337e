"""Reading videos (PyAV) and JPEG frame folders into uint8 arrays, and JPEG-encoding them.

Used by the data-set builders (in worker processes) and by single-video prediction.
Every failure to read is a :class:`VideoReadError` whose one-line message names the file.
Only numpy, PyAV and Pillow are imported here, so worker processes stay light.
"""
import io
import os
import re

import av
import numpy as np
from PIL import Image

VIDEO_EXTENSIONS = ('.mp4', '.webm', '.avi', '.mkv', '.mov', '.m4v')
FRAME_EXTENSIONS = ('.jpg', '.jpeg', '.png')
# Encoder per container for write_video; all of them are bundled with PyAV's wheels.
_WRITE_CODECS = {'.mp4': 'h264', '.mkv': 'h264', '.mov': 'h264', '.webm': 'libvpx',
                 '.avi': 'mpeg4'}


class VideoReadError(ValueError):
  """A video or frame folder that cannot be read; the message names the file."""


def resized_shape(height, width, min_resize):
  """Returns (height, width) with the short side scaled to ``min_resize`` (None: unchanged)."""
  if min_resize is None:
    return height, width
  scale = min_resize / min(height, width)
  return max(1, round(height * scale)), max(1, round(width * scale))


def read_video(path, *, fps=None, max_frames=None, min_resize=None, threads=0):
  """Decodes the first video stream of a file (mp4, webm, avi, mkv, ...) with PyAV.

  Frames are turned upright when the container carries a rotation (phone videos).

  Args:
    path: the video file.
    fps: resample to this frame rate (each output time takes the latest frame at or
      before it, so frames repeat when upsampling); None keeps every decoded frame.
    max_frames: stop after this many output frames; None reads the whole video.
    min_resize: scale so that the short side is this many pixels (up or down);
      None keeps the decoded size.
    threads: decoder threads; 0 lets FFmpeg choose (use 1 inside worker pools).

  Returns:
    (T, H, W, 3) uint8 RGB frames, T >= 1.

  Raises:
    VideoReadError: missing, empty, undecodable, without any video frame, or
      truncated (see :func:`check_complete`).
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise VideoReadError(f'no such video file: {path}')
  if os.path.getsize(path) == 0:
    raise VideoReadError(f'empty (zero-byte) video file: {path}')
  frames = []
  try:
    with av.open(path) as container:
      if not container.streams.video:
        raise VideoReadError(f'no video stream in {path}')
      stream = container.streams.video[0]
      stream.thread_type = 'AUTO'
      stream.thread_count = threads
      decoded = _Counted(container.decode(stream))
      for image in _resample(decoded, fps):
        frames.append(_to_rgb(image, min_resize))
        if max_frames is not None and len(frames) >= max_frames:
          break
      else:  # read to the end: did the file end where its header says?
        if frames:
          check_complete(path, container, stream, decoded)
  except av.error.FFmpegError as e:
    raise VideoReadError(f'cannot decode video {path}: {_one_line(e)}') from e
  if not frames:
    raise VideoReadError(f'no frames decoded from video {path}')
  return np.stack(frames)


class _Counted:
  """Iterates decoded frames, remembering how many and the times of the first and last."""

  def __init__(self, frames):
    self._frames = frames
    self.count, self.first, self.last = 0, None, None

  def __iter__(self):
    for frame in self._frames:
      self.count += 1
      if frame.time is not None:
        self.first = frame.time if self.first is None else self.first
        self.last = frame.time
      yield frame


# A file is truncated when more than this fraction (and more than 2 frames) of what its
# header announces is missing; real files differ from their headers by a frame or two.
TRUNCATED_FRACTION = 0.1


def check_complete(path, container, stream, decoded):
  """Raises VideoReadError when fewer frames were decoded than the container announces.

  A video cut short (an interrupted download or copy) still decodes, up to where it was
  cut: a webm cut to half its bytes gives 23 of its 48 frames without any FFmpeg error.
  The announced length is the stream's frame count (mp4, avi) or, when the container
  has none (webm, mkv), its duration (the video stream's, else the container's).
  """
  rate = float(stream.average_rate or stream.guessed_rate or 0) or None
  if stream.frames and stream.frames > 0:
    missing = stream.frames - decoded.count
    if missing > max(2, TRUNCATED_FRACTION * stream.frames):
      raise VideoReadError(f'truncated video {path}: decoded {decoded.count} of the '
                           f'{stream.frames} frames its header announces')
    return
  if stream.duration and stream.time_base:
    expected = float(stream.duration * stream.time_base)
  elif container.duration:
    expected = container.duration / av.time_base
  else:
    return
  if decoded.first is None or rate is None:
    return
  got = decoded.last - decoded.first + 1 / rate
  if expected - got > max(2 / rate, TRUNCATED_FRACTION * expected):
    raise VideoReadError(f'truncated video {path}: decoded {got:.2f} s ({decoded.count} '
                         f'frames) of the {expected:.2f} s its header announces')


def _resample(decoded, fps):
  """Yields decoded frames at ``fps`` (the latest frame at or before each output time)."""
  if fps is None:
    yield from decoded
    return
  step, next_t, prev, prev_t = 1.0 / fps, None, None, None
  for i, frame in enumerate(decoded):
    t = frame.time if frame.time is not None else i * step
    if next_t is None:
      next_t = t
    while prev is not None and next_t < t - 1e-6:
      yield prev
      next_t += step
    prev, prev_t = frame, t
  while prev is not None and next_t <= prev_t + 1e-6:
    yield prev
    next_t += step


def _to_rgb(frame, min_resize):
  """An av.VideoFrame -> (H, W, 3) uint8, short side resized in swscale, made upright."""
  height, width = resized_shape(frame.height, frame.width, min_resize)
  rgb = frame.to_ndarray(format='rgb24', width=width, height=height,
                         interpolation='BICUBIC')
  # The display matrix says how far to turn the stored picture counter-clockwise.
  quarter_turns = round((frame.rotation or 0) / 90) % 4
  return np.ascontiguousarray(np.rot90(rgb, quarter_turns)) if quarter_turns else rgb


def frame_files(path):
  """The image files of a frame folder in natural order (img_2 before img_10)."""
  path = os.fspath(path)
  if not os.path.isdir(path):
    raise VideoReadError(f'no such frame folder: {path}')
  names = [n for n in os.listdir(path) if n.lower().endswith(FRAME_EXTENSIONS)]
  names.sort(key=lambda n: [int(s) if s.isdigit() else s for s in re.split(r'(\d+)', n)])
  return [os.path.join(path, n) for n in names]


def read_frames_dir(path, *, max_frames=None, min_resize=None):
  """Reads a folder of frame images (JPEG/PNG, e.g. ``00001.jpg``) as one clip.

  Args:
    path: the folder; files are taken in natural order of their names.
    max_frames: read at most this many frames; None reads all.
    min_resize: scale so that the short side is this many pixels; None keeps the size.

  Returns:
    (T, H, W, 3) uint8 RGB frames, T >= 1.

  Raises:
    VideoReadError: missing folder, no frames in it, or a frame that cannot be decoded.
  """
  files = frame_files(path)[:max_frames]
  if not files:
    raise VideoReadError(f'no frame images ({", ".join(FRAME_EXTENSIONS)}) in {path}')
  frames = []
  for f in files:
    try:
      with Image.open(f) as image:
        image = image.convert('RGB')
        height, width = resized_shape(image.height, image.width, min_resize)
        if (height, width) != (image.height, image.width):
          image = image.resize((width, height), Image.BICUBIC)
        frames.append(np.asarray(image))
    except (OSError, ValueError) as e:
      raise VideoReadError(f'cannot decode frame {f}: {_one_line(e)}') from e
  if len({f.shape for f in frames}) > 1:
    raise VideoReadError(f'frames of different sizes in {path}')
  return np.stack(frames)


def read_video_or_frames(path, **kwargs):
  """:func:`read_frames_dir` for a folder, :func:`read_video` otherwise (same kwargs)."""
  if os.path.isdir(path):
    kwargs.pop('fps', None)
    kwargs.pop('threads', None)
    return read_frames_dir(path, **kwargs)
  return read_video(path, **kwargs)


def encode_jpeg(frames, quality=90):
  """(T, H, W, 3) uint8 -> list of T JPEG byte strings."""
  out = []
  for frame in frames:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format='JPEG', quality=quality)
    out.append(buf.getvalue())
  return out


def write_video(path, frames, *, fps=12, codec=None, rotation=0):
  """Encodes (T, H, W, 3) uint8 frames (even H and W) to a video file with PyAV.

  For tests, demos and fake data sets; the codec follows the extension
  (mp4/mkv/mov: h264, webm: vp8, avi: mpeg4) unless given. ``rotation`` (degrees
  counter-clockwise) is stored as display metadata, as phones do.
  """
  path = os.fspath(path)
  frames = np.asarray(frames, np.uint8)
  _, height, width, _ = frames.shape
  if height % 2 or width % 2:
    raise ValueError(f'write_video needs even height and width (yuv420p), got {height}x{width}')
  codec = codec or _WRITE_CODECS[os.path.splitext(path)[1].lower()]
  with av.open(path, 'w') as container:
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
    stream.bit_rate = 8_000_000  # near-lossless at test sizes
    if rotation:
      stream.set_display_rotation(rotation)
    for frame in frames:
      container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
    container.mux(stream.encode())


def _one_line(error):
  return ' '.join(str(error).split())
