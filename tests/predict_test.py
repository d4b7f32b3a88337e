"""Predict: your own videos end to end (build -> main.py -> predict app), official weights, bad input."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from input_pipeline import video_io
from tests.conftest import FIXTURE, ROOT, fixture_config
from tests.input_pipeline.builders import fakes as builder_fakes
from tps_jax import convert
from tps_jax import predict

# A tiny TPS on configs/custom_tps.py: the flags a user adds to docs/datasets.md's commands.
TINY_CUSTOM = ['--config=configs/custom_tps.py', '--config.dataset.builder_config=res128',
               '--config.model.embed_dim=8', '--config.model.depths=(2,2)',
               '--config.model.num_heads=(1,2)', '--config.input.num_frames=8',
               '--config.input.image_size=28', '--config.input.eval_image_size=28',
               '--config.input.min_resize=32']
# The model of ../shared/fixtures/official_tps_tiny.npz (10 classes) on 4 frames of 112 px.
FIXTURE_FLAGS = ['--config=configs/test.py', '--config.model.embed_dim=16',
                 '--config.model.depths=(2,2,2)', '--config.model.num_heads=(1,2,4)',
                 '--config.input.num_frames=4', '--config.input.image_size=112',
                 '--config.input.eval_image_size=112', '--config.input.min_resize=128']

pytestmark = pytest.mark.slow  # main.py / app runs in subprocesses


def _moving_bar(direction, num_frames=10, height=48, width=64):
  """A white bar crossing a dark clip left->right (+1) or right->left (-1)."""
  frames = np.full((num_frames, height, width, 3), 30, np.uint8)
  for t in range(num_frames):
    x = 4 + 5 * t if direction > 0 else width - 12 - 5 * t
    frames[t, :, x:x + 8] = 230
  return frames


def _run(*args):
  """Runs a module or script of the repo like a user; returns the CompletedProcess."""
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}  # one CPU device
  env.update(JAX_DISABLE_MOST_OPTIMIZATIONS='1', TF_CPP_MIN_LOG_LEVEL='3', JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=300, check=False)


def _jsonl(path):
  with open(path, encoding='utf-8') as f:
    return [json.loads(line) for line in f]



@pytest.fixture(scope='module', autouse=True)
def _fast_compiles():
  previous = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', True)
  yield
  jax.config.update('jax_disable_most_optimizations', previous)


@pytest.fixture(scope='module')
def official():
  """(config, model, variables) of the official fixture checkpoint."""
  config = fixture_config()
  return (config, *convert.load_official(FIXTURE, config.model))


def test_own_videos_build_train_predict_matches_evaluation(tmp_path):
  # Videos with a real codec + an annotation list with class names (docs/datasets.md layout).
  manual, data_dir, workdir = tmp_path / 'my_videos', tmp_path / 'tfds', tmp_path / 'work'
  os.makedirs(manual / 'clips')
  train = [('clips/left_1.mp4', 'left'), ('clips/right_1.webm', 'right'),
           ('clips/left_2.avi', 'left'), ('clips/right_2.mp4', 'right')]
  val = [('clips/left_3.mp4', 'left'), ('clips/right_3.mp4', 'right')]
  for path, label in train + val:
    video_io.write_video(manual / path, _moving_bar(1 if label == 'left' else -1))
  for split, rows in (('train', train), ('val', val)):
    (manual / f'{split}.txt').write_text(''.join(f'{p} {label}\n' for p, label in rows))
  builder_fakes.prepare('custom_videos', manual, data_dir)  # as the build app does

  data = [f'--config.dataset.data_dir={data_dir}']
  trained = _run('main.py', *TINY_CUSTOM, *data, f'--workdir={workdir}',
                 '--config.num_train_steps=2', '--config.batch_size=2',
                 '--config.eval_batch_size=2', '--config.optim.warmup_epochs=0',
                 '--config.checkpoint.asynchronous=False', '--config.profile_steps=0',
                 '--config.eval.write_predictions=True')
  assert trained.returncode == 0, trained.stderr[-3000:]

  out = tmp_path / 'preds.jsonl'
  video = manual / 'clips/right_3.mp4'
  predicted = _run('-m', 'tps_jax.apps.predict', *TINY_CUSTOM, *data, f'--checkpoint={workdir}',
                   f'--video={video}', f'--output={out}')
  assert predicted.returncode == 0, predicted.stderr[-3000:]
  [row] = _jsonl(out)
  assert row['video'] == os.fspath(video) and 'error' not in row
  assert sorted(row['labels']) == ['left', 'right']  # names from the data set, top_k capped
  assert row['labels'][0] in predicted.stdout
  # The same video through main.py's evaluation: the same test views, the same scores.
  evaluated = np.load(workdir / 'predictions_validation.npz')
  probs = np.zeros(2)
  probs[row['indices']] = row['probs']
  [row_of_video] = np.flatnonzero(evaluated['ids'] == 'clips/right_3.mp4')  # found by its id
  np.testing.assert_allclose(probs, evaluated['probs'][row_of_video], atol=1e-5)


def test_official_checkpoint_cli_batches_videos_and_frame_folders_with_label_file(
    tmp_path, official):
  video_io.write_video(tmp_path / 'clip.mp4', _moving_bar(1, num_frames=12, height=96, width=128))
  frames_dir = tmp_path / 'frames'
  os.makedirs(frames_dir)
  for t, jpeg in enumerate(video_io.encode_jpeg(_moving_bar(-1, 12, 96, 128)), 1):
    (frames_dir / f'{t:05d}.jpg').write_bytes(jpeg)
  labels = tmp_path / 'labels.txt'
  labels.write_text(''.join(f'action {i}\n' for i in range(10)))
  out = tmp_path / 'preds.jsonl'
  videos = [tmp_path / 'clip.mp4', frames_dir, tmp_path / 'clip.mp4']  # 3 = 2 batches of 2
  result = _run('-m', 'tps_jax.apps.predict', *FIXTURE_FLAGS, f'--checkpoint={FIXTURE}',
                f'--video={videos[0]}', f'--labels={labels}', f'--output={out}', '--batch=2',
                *videos[1:])  # paths after the flags, as a shell glob gives them
  assert result.returncode == 0, result.stderr[-3000:]
  rows = _jsonl(out)
  assert [r['video'] for r in rows] == [os.fspath(v) for v in videos]
  assert all(len(r['labels']) == 5 for r in rows)
  assert rows[0]['labels'] == [f'action {i}' for i in rows[0]['indices']]
  assert rows[0]['probs'] == sorted(rows[0]['probs'], reverse=True) and sum(rows[0]['probs']) < 1
  assert rows[0] == rows[2]
  # The same numbers as the converted model applied to the test views by hand.
  config, model, variables = official
  predictor = predict.Predictor(config, model, variables['params'], [str(i) for i in range(10)])
  apply = jax.jit(lambda v, x: model.apply(v, x, train=False)[0])
  for video, row in zip(videos[:2], rows):
    logits = apply(variables, predictor.views(video))
    expected = jax.nn.softmax(logits).mean(0)
    np.testing.assert_allclose(row['probs'], expected[np.array(row['indices'])], atol=1e-5)


def test_unreadable_video_is_a_one_line_error_naming_the_file(tmp_path):
  good, bad = tmp_path / 'good.mp4', tmp_path / 'broken.mp4'
  video_io.write_video(good, _moving_bar(1))
  bad.write_bytes(b'\x00\x00\x00\x18ftypmp42 truncated')
  result = _run('-m', 'tps_jax.apps.predict', *FIXTURE_FLAGS, f'--checkpoint={FIXTURE}',
                f'--video={bad}', f'--video={good}')
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('predict: cannot decode video') and os.fspath(bad) in last


def test_a_checkpoint_without_classifier_is_one_line_naming_the_flag_and_the_path(tmp_path):
  path = tmp_path / 'backbone.npz'
  with np.load(FIXTURE) as f:
    np.savez(path, **{k: f[k] for k in f.files if 'cls_head' not in k})
  video_io.write_video(tmp_path / 'clip.mp4', _moving_bar(1))
  result = _run('-m', 'tps_jax.apps.predict', *FIXTURE_FLAGS, f'--checkpoint={path}',
                f'--video={tmp_path / "clip.mp4"}')
  assert result.returncode == 1 and 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      f'predict: --checkpoint: {path} has no classifier (cls_head.fc_cls.weight): an ImageNet '
      'or backbone-only checkpoint cannot predict video classes')


def test_a_bad_label_file_is_one_line_naming_the_flag_and_the_file(tmp_path):
  labels = tmp_path / 'labels.json'
  labels.write_text('{"a": 0,')
  video_io.write_video(tmp_path / 'clip.mp4', _moving_bar(1))
  result = _run('-m', 'tps_jax.apps.predict', *FIXTURE_FLAGS, f'--checkpoint={FIXTURE}',
                f'--labels={labels}', f'--video={tmp_path / "clip.mp4"}')
  assert result.returncode == 1 and 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith(
      f'predict: --labels: {labels}:1: invalid JSON: '), result.stderr[-500:]


def test_skip_unreadable_yields_errors_in_order(tmp_path, official):
  good, empty = tmp_path / 'good.mp4', tmp_path / 'empty.mp4'
  video_io.write_video(good, _moving_bar(1, height=96, width=128))
  empty.write_bytes(b'')
  config, model, variables = official
  predictor = predict.Predictor(config, model, variables['params'], list('abcdefghij'))
  preds = list(predictor.predict([empty, good, tmp_path / 'missing.mp4'], batch_size=2,
                                 top_k=3, skip_unreadable=True))
  assert [p.video for p in preds] == [os.fspath(empty), os.fspath(good),
                                      os.fspath(tmp_path / 'missing.mp4')]
  assert 'empty (zero-byte) video file' in preds[0].error and preds[0].labels == []
  assert preds[1].error is None and len(preds[1].labels) == 3
  assert 'no such video file' in preds[2].error
  assert '"error"' in preds[0].to_json() and '"error"' not in preds[1].to_json()
  with pytest.raises(video_io.VideoReadError, match='empty.mp4'):
    list(predictor.predict([good, empty]))


def test_labels_json_in_ssv2_format_orders_names_by_index(tmp_path):
  path = tmp_path / 'labels.json'
  path.write_text(json.dumps({'Pushing something': '1', 'Holding something': '0'}))
  assert predict.read_labels(os.fspath(path)) == ['Holding something', 'Pushing something']
  path.write_text(json.dumps({'a': '0', 'b': '2'}))
  with pytest.raises(ValueError, match=r'labels.json: the indices are not 0..1'):
    predict.read_labels(os.fspath(path))
