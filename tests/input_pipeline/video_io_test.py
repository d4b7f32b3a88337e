"""video_io: PyAV decoding, frame folders, short-side resize, JPEG, one-line errors."""
import io
import os

import numpy as np
from PIL import Image
import pytest

from input_pipeline import video_io
from tests.input_pipeline.builders import fakes


@pytest.mark.parametrize('ext', ['mp4', 'webm', 'avi', 'mkv'])
def test_read_video_round_trips_frames(tmp_path, ext):
  path = fakes.write_video(f'{tmp_path}/clip.{ext}', seed=7)
  frames = video_io.read_video(path)
  assert frames.dtype == np.uint8 and frames.shape == (fakes.FRAMES, 32, 48, 3)
  np.testing.assert_allclose(frames.mean((1, 2, 3)), fakes.frames(7)[:, 0, 0, 0], atol=3)


def test_read_video_resizes_short_side_of_portrait_and_landscape(tmp_path):
  wide = fakes.write_video(f'{tmp_path}/wide.mp4')
  tall = fakes.write_video(f'{tmp_path}/tall.mp4', height=48, width=32)
  assert video_io.read_video(wide, min_resize=64).shape[1:3] == (64, 96)
  assert video_io.read_video(tall, min_resize=16).shape[1:3] == (24, 16)


def test_read_video_max_frames_and_fps(tmp_path):
  path = fakes.write_video(f'{tmp_path}/clip.mp4')  # 8 frames at 12 fps
  assert len(video_io.read_video(path, max_frames=3)) == 3
  half = video_io.read_video(path, fps=6)
  np.testing.assert_allclose(half.mean((1, 2, 3)), fakes.frames(0)[::2, 0, 0, 0], atol=3)
  assert len(video_io.read_video(path, fps=24)) == 2 * fakes.FRAMES - 1


@pytest.mark.parametrize('rotation,corner', [(90, (-1, 0)), (-90, (0, -1))])
def test_read_video_turns_rotated_phone_videos_upright(tmp_path, rotation, corner):
  frames = np.zeros((4, 32, 48, 3), np.uint8)
  frames[:, :8, :8] = 255  # a white top-left corner as stored
  path = f'{tmp_path}/phone.mp4'
  video_io.write_video(path, frames, rotation=rotation)
  upright = video_io.read_video(path, min_resize=16)
  assert upright.shape == (4, 24, 16, 3)
  bright = [(y, x) for y in (0, -1) for x in (0, -1) if upright[0, y, x].mean() > 128]
  assert bright == [corner]  # counter-clockwise 90: top-left -> bottom-left


def test_read_frames_dir_uses_natural_order_and_resizes(tmp_path):
  folder = tmp_path / 'frames'
  folder.mkdir()
  for t, frame in enumerate(fakes.frames(0, num_frames=11), 1):
    Image.fromarray(frame).save(folder / f'img_{t}.png')  # img_10 sorts after img_9
  frames = video_io.read_frames_dir(folder, min_resize=16)
  assert frames.shape == (11, 16, 24, 3)
  np.testing.assert_array_equal(frames[:, 0, 0, 0], fakes.frames(0, num_frames=11)[:, 0, 0, 0])
  assert video_io.read_video_or_frames(folder, max_frames=4, fps=5).shape == (4, 32, 48, 3)


def test_encode_jpeg_decodes_back(tmp_path):
  jpegs = video_io.encode_jpeg(fakes.frames(3, num_frames=2))
  decoded = np.asarray(Image.open(io.BytesIO(jpegs[1])))
  assert len(jpegs) == 2 and decoded.shape == (32, 48, 3)
  assert abs(int(decoded.mean()) - 23) <= 1


@pytest.mark.parametrize('content,message', [
    (None, 'no such video file'), (b'', r'empty \(zero-byte\) video file'),
    (b'garbage' * 50, 'cannot decode video')])
def test_bad_video_is_one_line_naming_the_file(tmp_path, content, message):
  path = os.fspath(tmp_path / 'bad.mp4')
  if content is not None:
    with open(path, 'wb') as f:
      f.write(content)
  with pytest.raises(video_io.VideoReadError, match=f'^{message}.*bad.mp4') as error:
    video_io.read_video(path)
  assert '\n' not in str(error.value)


def test_bad_frame_folder_names_the_folder_or_frame(tmp_path):
  (tmp_path / 'empty').mkdir()
  with pytest.raises(video_io.VideoReadError, match='no frame images .*empty'):
    video_io.read_frames_dir(tmp_path / 'empty')
  folder = fakes.write_frames(f'{tmp_path}/clip')
  fakes.write_text(f'{folder}/00002.jpg', 'truncated')
  with pytest.raises(video_io.VideoReadError, match='cannot decode frame .*clip/00002.jpg'):
    video_io.read_frames_dir(folder)
