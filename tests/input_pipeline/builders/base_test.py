"""What every builder shares, at release scale: stale inputs, truncated videos, resuming."""
import hashlib
import json
import os
import subprocess
import sys

import pytest

from input_pipeline import build
from input_pipeline import builders
from input_pipeline.builders import base
from tests.input_pipeline.builders import fakes

_ENCODE = base.encode_clip
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def _manual_dir(root, train='a.mp4 jump\nb.mp4 run\n', val='c.webm jump\n'):
  root = os.fspath(root)
  for seed, name in enumerate(('a.mp4', 'b.mp4', 'c.webm')):
    fakes.write_video(f'{root}/{name}', seed=40 * seed)
  fakes.write_text(f'{root}/train.txt', train)
  fakes.write_text(f'{root}/val.txt', val)
  return root


def _labels(builder, split):
  return {k: v[0] for k, v in fakes.examples(builder, split).items()}


def _truncate(path):
  with open(path, 'rb') as f:
    data = f.read()
  with open(path, 'wb') as f:
    f.write(data[:len(data) // 2])


def test_same_inputs_reuse_the_prepared_data(tmp_path):
  manual = _manual_dir(tmp_path / 'm')
  fakes.prepare('custom_videos', manual, tmp_path / 'd')
  builder = fakes.prepare('custom_videos', manual, tmp_path / 'd')
  assert _labels(builder, 'train') == {'a.mp4': 0, 'b.mp4': 1}


def test_relabelled_clip_is_refused_naming_the_file_then_rebuilt_with_overwrite(tmp_path):
  manual = _manual_dir(tmp_path / 'm')
  fakes.prepare('custom_videos', manual, tmp_path / 'd')
  fakes.write_text(f'{manual}/train.txt', 'a.mp4 run\nb.mp4 jump\n')  # a fixed annotation
  with pytest.raises(base.StaleDataError, match=(
      r'^custom_videos/res128 in .* was prepared from other inputs than .*: train.txt '
      r'changed; rebuild it with --overwrite \(python -m tps_jax.apps.build '
      r'--dataset=custom_videos .* --overwrite\)$')):
    fakes.prepare('custom_videos', manual, tmp_path / 'd')
  builder = fakes.prepare('custom_videos', manual, tmp_path / 'd', overwrite=True)
  assert _labels(builder, 'train') == {'a.mp4': 1, 'b.mp4': 0}


def test_replaced_added_and_removed_videos_are_named(tmp_path):
  manual = _manual_dir(tmp_path / 'm')
  fakes.prepare('custom_videos', manual, tmp_path / 'd')
  fakes.write_video(f'{manual}/b.mp4', seed=99, num_frames=12)  # a re-downloaded video
  builder = build.tfds_builder(fakes.dataset('custom_videos', tmp_path / 'd'))
  assert builder.changed_inputs(manual) == ['train: 1 video changed (size or mtime) (b.mp4)']
  fakes.write_text(f'{manual}/val.txt', 'a.mp4 jump\n')
  assert builder.changed_inputs(manual) == [
      'val.txt changed', 'train: 1 video changed (size or mtime) (b.mp4)',
      'validation: 1 video added (a.mp4)', 'validation: 1 video removed (c.webm)']


@pytest.mark.slow
def test_build_cli_refuses_stale_data_in_one_line_and_rebuilds_with_overwrite(tmp_path):
  manual = _manual_dir(tmp_path / 'm')
  data_dir = os.fspath(tmp_path / 'd')
  fakes.prepare('custom_videos', manual, data_dir)
  fakes.write_text(f'{manual}/train.txt', 'a.mp4 run\nb.mp4 run\n')
  run = lambda *flags: subprocess.run(
      [sys.executable, '-m', 'tps_jax.apps.build', '--dataset=custom', f'--manual_dir={manual}',
       f'--data_dir={data_dir}', '--builder_config=res128', '--num_workers=0', *flags],
      cwd=ROOT, capture_output=True, text=True, check=False)
  refused = run()
  assert refused.returncode == 1
  assert refused.stderr.strip().splitlines()[-1].startswith(
      'error: custom_videos/res128 in ')
  assert 'train.txt changed; rebuild it with --overwrite' in refused.stderr
  rebuilt = run('--overwrite')
  assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
  assert 'custom_videos/res128: 2 classes, train 2, validation 1 clips' in rebuilt.stdout


def test_truncated_video_is_unreadable_or_a_counted_skip(tmp_path):
  manual = _manual_dir(tmp_path / 'm', train='a.mp4 jump\nb.mp4 run\nd.webm run\n')
  fakes.write_video(f'{manual}/d.webm', seed=0, num_frames=48)  # 4 s at 12 fps
  _truncate(f'{manual}/d.webm')  # still decodes without an error, about half its frames
  with pytest.raises(base.BuildError, match=r'^custom_videos train: train.txt:3: '
                     r'truncated video .*d.webm: decoded 1.\d\d s \(\d+ frames\) of the 4.00 s '
                     r'its header announces ' + fakes.SKIP_HINT + '$'):
    fakes.prepare('custom_videos', manual, tmp_path / 'd')
  builder = fakes.prepare('custom_videos', manual, tmp_path / 'd2', skip_unreadable=True)
  assert _labels(builder, 'train') == {'a.mp4': 0, 'b.mp4': 1}
  assert builder.info.metadata['skipped_train'] == 1


def test_zero_byte_video_is_caught_before_encoding_starts(tmp_path, monkeypatch):
  manual = _manual_dir(tmp_path / 'm')
  open(f'{manual}/c.webm', 'w').close()
  encoded = []
  monkeypatch.setattr(base, 'encode_clip', lambda clip, **kw: encoded.append(clip))
  with pytest.raises(base.BuildError, match=r'val.txt:1: empty \(zero-byte\) video file'):
    fakes.prepare('custom_videos', manual, tmp_path / 'd')
  assert not encoded  # the check ran before the train split was encoded


def _counting_encoder(monkeypatch, fail_on=None, exception=KeyboardInterrupt):
  """Counts the clips encoded; raises ``exception`` when reaching clip id ``fail_on``."""
  encoded = []

  def counting(clip, **kwargs):
    if clip.id == fail_on:
      raise exception()
    encoded.append(clip.id)
    return _ENCODE(clip, **kwargs)

  monkeypatch.setattr(base, 'encode_clip', counting)
  return encoded


def test_failed_build_resumes_without_encoding_the_finished_split_again(tmp_path, monkeypatch):
  manual = _manual_dir(tmp_path / 'm')
  fakes.write_text(f'{manual}/c.webm', 'not a video')
  with pytest.raises(base.BuildError, match='val.txt:1: cannot decode video'):
    fakes.prepare('custom_videos', manual, tmp_path / 'd')
  fakes.write_video(f'{manual}/c.webm', seed=80)  # the fix
  encoded = _counting_encoder(monkeypatch)
  builder = fakes.prepare('custom_videos', manual, tmp_path / 'd')
  assert encoded == ['c.webm']  # train came from the resume cache
  assert _labels(builder, 'train') == {'a.mp4': 0, 'b.mp4': 1}
  assert _labels(builder, 'validation') == {'c.webm': 0}
  assert not os.path.exists(builder.resume_dir)  # removed once the build succeeded


def test_interrupted_build_keeps_the_clips_encoded_so_far(tmp_path, monkeypatch):
  manual = _manual_dir(tmp_path / 'm')
  encoded = _counting_encoder(monkeypatch, fail_on='b.mp4')  # Ctrl-C during the 2nd clip
  with pytest.raises(builders.Interrupted):
    fakes.prepare('custom_videos', manual, tmp_path / 'd')
  assert encoded == ['a.mp4']
  encoded = _counting_encoder(monkeypatch)
  builder = fakes.prepare('custom_videos', manual, tmp_path / 'd')
  assert encoded == ['b.mp4', 'c.webm']
  assert _labels(builder, 'train') == {'a.mp4': 0, 'b.mp4': 1}


def test_encode_cache_chunks_are_indexed_and_reread(tmp_path):
  cache = base.EncodeCache(os.fspath(tmp_path), 'train', chunk_size=2)
  for i in range(5):
    cache.put(f'k{i}', [b'jpeg%d' % i] if i != 3 else 'cannot decode video x')
  cache.close()
  again = base.EncodeCache(os.fspath(tmp_path), 'train')
  assert [again.get(f'k{i}') for i in range(5)] == [
      [b'jpeg0'], [b'jpeg1'], [b'jpeg2'], 'cannot decode video x', [b'jpeg4']]
  assert again.get('k5') is None and 'k4' in again
  assert sorted(os.listdir(tmp_path)) == [f'train-{n:05d}.{e}' for n in range(3)
                                          for e in ('bin', 'json')]


def _cache_with(tmp_path, n=3):
  cache = base.EncodeCache(os.fspath(tmp_path), 'train')
  for i in range(n):
    cache.put(f'k{i}', [bytes(range(256)) * 4, b'jpeg%d' % i])
  cache.close()
  return os.path.join(tmp_path, 'train-00000')


class _Evil:
  def __reduce__(self):
    return (os.system, ('touch pwned',))


def test_encode_cache_never_unpickles_a_crafted_chunk(tmp_path, monkeypatch, caplog):
  monkeypatch.chdir(tmp_path)
  import pickle  # pylint: disable=g-import-not-at-top  (only to craft the attack)
  data = pickle.dumps(_Evil())
  stem = os.path.join(tmp_path, 'train-00000')
  with open(stem + '.bin', 'wb') as f:
    f.write(data)
  for entry in (['k', 0, len(data)], ['k', 0, len(data), hashlib.sha256(data).hexdigest()]):
    with open(stem + '.json', 'w') as f:
      json.dump([entry], f)
    assert base.EncodeCache(os.fspath(tmp_path), 'train').get('k') is None
  assert not os.path.exists(tmp_path / 'pwned')
  assert 'older or damaged index' in caplog.text and 'not an encoded clip' in caplog.text


@pytest.mark.parametrize('damage,usable', [('random_bytes', [True, False, True]),
                                           ('truncated', [True, False, False])])
def test_damaged_cache_chunk_is_named_and_its_clips_are_not_used(tmp_path, damage, usable,
                                                                 caplog):
  stem = _cache_with(tmp_path)
  size = os.path.getsize(stem + '.bin')
  if damage == 'truncated':
    os.truncate(stem + '.bin', size // 2)
  else:
    with open(stem + '.bin', 'r+b') as f:
      f.seek(size // 3 + 100)  # inside the second entry
      f.write(os.urandom(400))
  cache = base.EncodeCache(os.fspath(tmp_path), 'train')
  results = [cache.get(f'k{i}') for i in range(3)]
  assert [r is not None for r in results] == usable
  assert results[0] == [bytes(range(256)) * 4, b'jpeg0']
  assert f'resume cache {stem}.bin at offset ' in caplog.text
  assert 'k1' not in cache  # dropped: encoded again by the build


@pytest.mark.parametrize('index', [b'{garbage', b'null', b'[["k0", -1, 3, "x"]]'])
def test_garbage_cache_index_is_one_warning_and_ignored(tmp_path, index, caplog):
  stem = _cache_with(tmp_path)
  with open(stem + '.json', 'wb') as f:
    f.write(index)
  cache = base.EncodeCache(os.fspath(tmp_path), 'train')
  assert 'k0' not in cache and f'resume cache {stem}.json is unreadable' in caplog.text
  cache.put('k9', 'unreadable')
  cache.close()
  assert base.EncodeCache(os.fspath(tmp_path), 'train').get('k9') == 'unreadable'


def test_build_resumes_over_a_damaged_cache_encoding_its_clips_again(tmp_path, monkeypatch):
  manual = _manual_dir(tmp_path / 'm')
  _counting_encoder(monkeypatch, fail_on='b.mp4')
  with pytest.raises(builders.Interrupted):
    fakes.prepare('custom_videos', manual, tmp_path / 'd')
  chunks = [os.path.join(r, f) for r, _, fs in os.walk(tmp_path / 'd') for f in fs
            if f.endswith('.bin')]
  assert len(chunks) == 1
  with open(chunks[0], 'r+b') as f:
    f.seek(20)
    f.write(os.urandom(400))
  encoded = _counting_encoder(monkeypatch)
  builder = fakes.prepare('custom_videos', manual, tmp_path / 'd')
  assert sorted(encoded) == ['a.mp4', 'b.mp4', 'c.webm']  # a.mp4 again
  assert _labels(builder, 'train') == {'a.mp4': 0, 'b.mp4': 1}


_INTERRUPT = """
import os, signal, sys
from absl import app
from input_pipeline.builders import base
from tps_jax.apps import build
encode = base.encode_clip
def interrupting(clip, **kwargs):
  if clip.id == 'b.mp4':
    os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends
  return encode(clip, **kwargs)
base.encode_clip = interrupting
sys.argv = ['build', '--dataset=custom', '--manual_dir=' + sys.argv[1], '--data_dir=' + sys.argv[2],
            '--builder_config=res128', '--num_workers=0']
app.run(build.main)
"""


@pytest.mark.slow
def test_ctrl_c_is_one_line_and_the_same_command_resumes(tmp_path):
  manual = _manual_dir(tmp_path / 'm')
  result = subprocess.run([sys.executable, '-c', _INTERRUPT, manual, f'{tmp_path}/d'],
                          cwd=ROOT, capture_output=True, text=True, check=False)
  assert result.returncode == 130  # as any program stopped by SIGINT
  assert 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      'interrupted: the clips encoded so far are kept; run the same command again to resume')
  cached = base.EncodeCache(os.fspath(
      tmp_path / 'd/downloads/tps_resume/custom_videos/res128/1.0.0'), 'train')
  assert len(cached._index) == 1  # pylint: disable=protected-access  # a.mp4, before b.mp4


def test_progress_is_logged_in_clips_per_second_with_time_left(caplog):
  caplog.set_level('INFO')
  rate = base.Throughput('kinetics400 train', total=100, every_s=0)
  rate.update()
  assert 'kinetics400 train: 1/100 clips encoded, ' in caplog.text
  assert ' clips/s, ETA ' in caplog.text
  assert base.format_seconds(3725) == '1h02m05s' and base.format_seconds(65) == '1m05s'
