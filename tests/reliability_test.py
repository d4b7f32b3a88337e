"""Never lose a run (``tps_jax.train``, ``checkpoints``, ``locking``): each failure case,
reproduced and asserted.

Damaged history, corrupted newest checkpoint (fallback), a locked workdir, undecodable
and truncated records, SIGINT and exit codes, one-line errors before any compile.
In-process runs of ``train.run_mode`` on ``configs/test.py``; subprocesses of ``main.py``
only where a signal or a second process is needed.
"""
import dataclasses
import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

import input_pipeline
from configs import test as test_config
from input_pipeline import readers
from tps_jax import checkpoints
from tps_jax import integrity
from tps_jax import evaluation
from tps_jax import locking
from tps_jax import reporting
from tps_jax import train
from tps_jax import workdir as wd
from tests.conftest import FIXTURE, ROOT
from tests.input_pipeline import fakes
from tests.main_runs import (ENV, RESUME_STEPS, run_main, signal_after_first_step,
                             small_disk_or_skip, train_losses)

pytestmark = pytest.mark.slow  # main.py / app runs in subprocesses


def _config(data_dir, **fields):
  """configs/test.py with a constant lr (trajectories do not depend on the run length)."""
  config = test_config.get_config()
  config.dataset.data_dir = data_dir
  config.optim.schedule = 'constant'
  config.checkpoint.keep = 3
  for field, value in fields.items():
    section, _, name = field.rpartition('__')
    setattr(config[section] if section else config, name, value)
  return config


def _train(workdir, data_dir, steps, **fields):
  return train.run_mode(_config(data_dir, num_train_steps=steps, **fields), str(workdir),
                        'train')


def _steps(workdir):
  return integrity.committed_steps(os.path.join(workdir, 'checkpoints'))


@pytest.fixture(scope='module')
def reference_losses(tmp_path_factory, data_dir):
  """Train losses of an uninterrupted 6-step run."""
  workdir = str(tmp_path_factory.mktemp('reference6'))
  _train(workdir, data_dir, 6, checkpoint__every_steps=2)
  return train_losses(workdir)


@pytest.fixture(scope='module')
def trained(tmp_path_factory, data_dir):
  """A 4-step run with (asynchronous) checkpoints at steps 2 and 4; tests copy it."""
  workdir = str(tmp_path_factory.mktemp('trained'))
  _train(workdir, data_dir, 4, checkpoint__every_steps=2, checkpoint__asynchronous=True)
  return workdir


def _copy(trained_dir, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(trained_dir, workdir)
  return workdir


def _no_compile(*args, **kwargs):
  raise AssertionError('compiled before the bad input was found')


# --- 1. A finished run never loses its last checkpoint. ---------------------------------

def test_final_checkpoint_commits_despite_a_damaged_history_and_an_unwritable_plot(
    trained, data_dir, tmp_path, caplog):
  workdir = _copy(trained, tmp_path)
  with open(os.path.join(workdir, reporting.HISTORY), 'a') as f:
    f.write('{"step": 5, "train_lo')  # what a crash during an append leaves
  os.remove(os.path.join(workdir, 'curves.png'))
  os.mkdir(os.path.join(workdir, 'curves.png'))  # the curves cannot be written
  with caplog.at_level(logging.WARNING):
    summary = _train(workdir, data_dir, 6, checkpoint__every_steps=2,
                     checkpoint__asynchronous=True)
  assert summary['finished'] and _steps(workdir)[-1] == 6
  assert os.path.exists(os.path.join(workdir, 'checkpoints', '6', integrity.CHECKSUMS))
  assert 'history.jsonl line 5 is damaged' in caplog.text, caplog.text
  assert 'curves not drawn' in caplog.text
  assert sorted(train_losses(workdir)) == [1, 2, 3, 4, 5, 6]  # the cut line did not eat step 5


def test_cut_short_validation_json_and_an_infinite_history_step_do_not_stop_a_resume(
    trained, data_dir, tmp_path, caplog):
  workdir = _copy(trained, tmp_path)
  with open(os.path.join(workdir, reporting.HISTORY), 'a') as f:
    f.write('{"step": 2, "val_top1": 0.25, "val_top5": 1.0, "val_loss": 1.5}\n'
            '{"step": 1e400, "train_loss": 1.0}\n')
  _write(os.path.join(workdir, 'validation.json'), b'{"points": [{"step": 2, "val_to')
  with caplog.at_level(logging.WARNING):
    summary = train.run_mode(_config(data_dir, num_train_steps=6, eval_every_steps=2),
                             workdir, 'train_and_evaluate')
  assert summary['finished'] and _json(os.path.join(workdir, 'metrics.json'))['step'] == 6
  assert [p['step'] for p in summary['validation']] == [2, 6]  # step 2 rebuilt from history
  assert 'validation.json is damaged' in caplog.text and 'curves not drawn' not in caplog.text


def test_plot_is_written_atomically(tmp_path):
  reporting.Writer(str(tmp_path)).write_scalars(1, {'train_loss': 1.0})
  path = reporting.plot_history(str(tmp_path))
  assert os.path.getsize(path) > 0 and os.listdir(tmp_path).count('curves.png.tmp') == 0


# --- 2. Verified restores with fallback. ------------------------------------------------

def _largest_file(directory):
  files = [os.path.join(r, f) for r, _, fs in os.walk(directory) for f in fs]
  return max(files, key=os.path.getsize)


def _write(path, data):
  with open(path, 'wb') as f:
    f.write(data)


def _json(path):
  with open(path) as f:
    return json.load(f)


def _flip_bytes(step_dir):
  path = _largest_file(os.path.join(step_dir, 'state'))
  with open(path, 'rb') as f:
    data = bytearray(f.read())
  data[len(data) // 2] ^= 0x01
  data[len(data) // 2 + 1] ^= 0x80
  _write(path, bytes(data))


def _truncate(step_dir):
  path = _largest_file(os.path.join(step_dir, 'state'))
  os.truncate(path, os.path.getsize(path) // 3)


def _truncate_unchecked(step_dir):  # killed between the commit and the checksums
  os.remove(os.path.join(step_dir, integrity.CHECKSUMS))
  _truncate(step_dir)


def _unlist_largest(step_dir):  # its entry deleted from the manifest
  path = os.path.join(step_dir, integrity.CHECKSUMS)
  manifest = _json(path)
  del manifest[os.path.relpath(_largest_file(os.path.join(step_dir, 'state')), step_dir)]
  _write(path, json.dumps(manifest).encode())


def _flip_unchecked(step_dir):
  os.remove(os.path.join(step_dir, integrity.CHECKSUMS))
  _flip_bytes(step_dir)


def _flip_unlisted(step_dir):
  _unlist_largest(step_dir)
  _flip_bytes(step_dir)


CORRUPTIONS = {
    'bit_flip': _flip_bytes,
    'truncated_data_file': _truncate,
    'truncated_without_checksums': _truncate_unchecked,
    'deleted_metadata': lambda d: os.remove(os.path.join(d, 'state', '_METADATA')),
    'deleted_manifest': lambda d: os.remove(os.path.join(d, 'state', 'manifest.ocdbt')),
    'garbage_meta': lambda d: _write(os.path.join(d, 'meta', 'metadata'), b'{garb'),
}


@pytest.mark.parametrize('kind', sorted(CORRUPTIONS))
def test_corrupted_newest_checkpoint_is_moved_aside_and_the_run_falls_back(
    kind, trained, data_dir, reference_losses, tmp_path, caplog):
  workdir = _copy(trained, tmp_path)
  ckpt_dir = os.path.join(workdir, 'checkpoints')
  CORRUPTIONS[kind](os.path.join(ckpt_dir, '4'))
  with caplog.at_level(logging.WARNING):
    summary = _train(workdir, data_dir, 6, checkpoint__every_steps=2)
  assert summary['source'] == f'checkpoint step 2 in {ckpt_dir}', summary['source']
  lines = [r.getMessage() for r in caplog.records if f'{ckpt_dir}/4 is bad' in r.getMessage()]
  assert len(lines) == 1 and '\n' not in lines[0] and 'moved to' in lines[0], caplog.text
  assert [d for d in os.listdir(ckpt_dir) if d.startswith('bad_4_')]  # kept, not deleted
  losses = train_losses(workdir)
  np.testing.assert_allclose([losses[s] for s in range(1, 7)],
                             [reference_losses[s] for s in range(1, 7)], rtol=1e-6)


def test_no_good_checkpoint_stops_with_one_line(trained, data_dir, tmp_path, monkeypatch):
  workdir = _copy(trained, tmp_path)
  for step in (2, 4):
    _flip_bytes(os.path.join(workdir, 'checkpoints', str(step)))
  monkeypatch.setattr(jax, 'jit', _no_compile)
  with pytest.raises(train.SetupError, match=r'no usable checkpoint in .*checkpoints: steps '
                                             r'\[4, 2\] are bad') as e:
    _train(workdir, data_dir, 6, checkpoint__every_steps=2)
  assert '\n' not in str(e.value) and _steps(workdir) == []


def test_rerun_after_no_usable_checkpoint_does_not_start_over_unless_asked(
    trained, data_dir, tmp_path, monkeypatch):
  workdir = _copy(trained, tmp_path)
  for step in (2, 4):
    _flip_bytes(os.path.join(workdir, 'checkpoints', str(step)))
  with pytest.raises(train.SetupError, match='no usable checkpoint'):
    _train(workdir, data_dir, 6, checkpoint__every_steps=2)
  with monkeypatch.context() as m:
    m.setattr(jax, 'jit', _no_compile)
    with pytest.raises(train.SetupError) as e:  # the same command again
      _train(workdir, data_dir, 6, checkpoint__every_steps=2)
  assert str(e.value).startswith(f'{workdir}/checkpoints has no usable checkpoint, but this '
                                 f'workdir held some ({workdir}/checkpoints/bad_'), str(e.value)
  assert 'checkpoint.start_over=True' in str(e.value) and '\n' not in str(e.value)
  summary = _train(workdir, data_dir, 2, checkpoint__every_steps=2, checkpoint__start_over=True)
  assert summary['finished'] and summary['source'].startswith('scratch')


def test_intact_checkpoint_of_another_optimizer_is_refused_not_moved(trained, data_dir,
                                                                     tmp_path):
  workdir = _copy(trained, tmp_path)
  with pytest.raises(train.SetupError) as e:
    _train(workdir, data_dir, 6, optim__grad_clip_norm=1.0)  # one more optimizer state
  assert str(e.value).startswith(f'checkpoint {workdir}/checkpoints/4 is intact but does not '
                                 "restore into this config's state"), str(e.value)
  assert '\n' not in str(e.value) and _steps(workdir) == [2, 4]


MANIFEST_DAMAGE = {
    'deleted': (lambda d: os.remove(os.path.join(d, integrity.CHECKSUMS)),
                'no checksums.json'),
    'null': (lambda d: _write(os.path.join(d, integrity.CHECKSUMS), b'null'),
             'checksums.json is not a map of file to SHA-256 (None)'),
    'entry_removed': (_unlist_largest, 'is not listed in checksums.json'),
    # A flip that still decodes to finite values cannot be told from data without a manifest:
    # the step is used, but said to be unverified, and never sealed as good. The chunks are
    # zstd-compressed and their packing varies between runs, so whether a flip decodes finite
    # is not ours to choose: a non-finite one, or one that breaks the file it hits (the largest
  # file is at times _METADATA: a flip there fails to decode), must be moved aside, saying why.
    'deleted_and_a_byte_flipped': (_flip_unchecked, 'no checksums.json'),
    'entry_removed_and_its_file_flipped': (_flip_unlisted, 'is not listed in checksums.json'),
}


@pytest.mark.parametrize('kind', sorted(MANIFEST_DAMAGE))
def test_step_its_checksums_do_not_vouch_for_is_used_with_a_warning_and_never_sealed(
    kind, trained, data_dir, tmp_path, caplog):
  workdir = _copy(trained, tmp_path)
  step_dir = os.path.join(workdir, 'checkpoints', '4')
  damage, why = MANIFEST_DAMAGE[kind]
  damage(step_dir)
  manifest = os.path.join(step_dir, integrity.CHECKSUMS)
  before = open(manifest, 'rb').read() if os.path.exists(manifest) else None
  with caplog.at_level(logging.WARNING):
    summary = _train(workdir, data_dir, 6, checkpoint__every_steps=2)
  messages = [r.getMessage() for r in caplog.records]
  bad = [m for m in messages if m.startswith(f'checkpoint {step_dir} is bad (')]
  if 'flipped' in kind and bad:  # the flip decoded non-finite, or broke the file's format
    assert len(bad) == 1 and why in bad[0] and ': moved to' in bad[0], bad
    assert ('is not finite)' in bad[0]) != ('restore failed: ' in bad[0]), bad
    assert summary['source'] == f'checkpoint step 2 in {workdir}/checkpoints', summary['source']
    assert [n for n in os.listdir(os.path.dirname(step_dir)) if n.startswith('bad_4_')]
    return
  assert not bad, bad
  assert summary['source'] == f'checkpoint step 4 in {workdir}/checkpoints', summary['source']
  lines = [m for m in messages if f'{step_dir} is unverified' in m]
  assert len(lines) == 1 and why in lines[0], caplog.text
  after = open(manifest, 'rb').read() if os.path.exists(manifest) else None
  assert after == before  # no manifest written over a step of unknown history


def test_evaluate_survives_the_chosen_step_being_garbage_collected(
    trained, data_dir, tmp_path, monkeypatch):
  workdir = _copy(trained, tmp_path)
  restore = checkpoints.Checkpoints.restore

  def collected_meanwhile(self, abstract_state, step=None):  # the trainer's `keep` at work
    if step == 4:
      shutil.rmtree(os.path.join(self.directory, '4'))
    return restore(self, abstract_state, step)

  monkeypatch.setattr(checkpoints.Checkpoints, 'restore', collected_meanwhile)
  summary = train.run_mode(_config(data_dir), workdir, 'evaluate')
  assert summary['source'].startswith('checkpoint step 2')
  assert summary['eval']['validation']['count'] == 20
  assert not [d for d in os.listdir(os.path.join(workdir, 'checkpoints'))
              if d.startswith('bad_')]  # evaluate never moves the trainer's files


def test_evaluation_logs_its_progress_with_an_eta(trained, data_dir, tmp_path, monkeypatch,
                                                  caplog):
  workdir = _copy(trained, tmp_path)
  monkeypatch.setattr(evaluation, 'PROGRESS_SECONDS', 0.0)  # each batch (minutes on CPU)
  with caplog.at_level(logging.INFO):
    train.run_mode(_config(data_dir), workdir, 'evaluate')
  lines = [r.getMessage() for r in caplog.records
           if r.getMessage().startswith('evaluating validation: batch ')]
  assert len(lines) == 4 and lines[0].startswith('evaluating validation: batch 2/5, '), lines
  assert 'ETA' in lines[-1]


def test_evaluating_init_from_a_workdir_reports_the_step_its_weights_reached(
    trained, data_dir, tmp_path):
  summary = train.run_mode(_config(data_dir, init_from=trained), str(tmp_path / 'ev'),
                           'evaluate')
  assert summary['step'] == 4 and f'workdir {trained} (step 4)' in summary['source']
  assert _json(str(tmp_path / 'ev' / 'evaluate' / 'eval_validation.json'))['step'] == 4


def test_evaluate_mode_on_a_training_workdir_keeps_the_reports_training_wrote(
    trained, data_dir, tmp_path):
  workdir = _copy(trained, tmp_path)  # trained in mode 'train': it reported no evaluation
  _write(os.path.join(workdir, 'eval_validation.json'), b'{"step": 4, "top1": 0.25}')
  _write(os.path.join(workdir, 'confusion_validation.csv'), b'as training wrote it\n')
  names = ('eval_validation.json', 'confusion_validation.csv', 'metrics.json', 'history.jsonl')
  before = {n: open(os.path.join(workdir, n), 'rb').read() for n in names}
  summary = train.run_mode(_config(data_dir), workdir, 'evaluate')
  assert {n: open(os.path.join(workdir, n), 'rb').read() for n in names} == before
  report = _json(os.path.join(workdir, 'evaluate', 'eval_validation.json'))
  assert report['step'] == summary['step'] == 4
  assert os.path.isfile(os.path.join(workdir, 'evaluate', 'confusion_validation.csv'))


def test_evaluate_adds_no_rows_to_the_training_history(trained, data_dir, tmp_path):
  workdir = _copy(trained, tmp_path)
  with open(os.path.join(workdir, reporting.HISTORY)) as f:
    before = f.read()
  for _ in range(2):
    train.run_mode(_config(data_dir), workdir, 'evaluate')
  with open(os.path.join(workdir, reporting.HISTORY)) as f:
    assert f.read() == before


# --- 3. One run per workdir. ------------------------------------------------------------

def test_second_run_on_a_locked_workdir_stops_with_one_line_naming_the_holder(
    data_dir, tmp_path):
  holder = subprocess.Popen(
      [sys.executable, '-c', 'import sys, time; from tps_jax import locking; '
       'locking.WorkdirLock(sys.argv[1]); print("locked", flush=True); time.sleep(600)',
       str(tmp_path)], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'locked'
    rc, _, err = run_main(str(tmp_path), data_dir, mode='train')
    last = err.strip().splitlines()[-1]
    assert rc == 1 and last.startswith(f'main.py: {tmp_path} is in use by another run '
                                       f'(pid {holder.pid} on host '), err[-2000:]
    assert 'Traceback' not in err
  finally:
    holder.kill()
    holder.communicate()
  locking.WorkdirLock(str(tmp_path)).release()  # a dead holder's lock is free


def test_a_workdir_that_cannot_be_made_is_one_line_before_any_compile(data_dir, tmp_path,
                                                                     monkeypatch):
  (tmp_path / 'file').write_text('')
  monkeypatch.setattr(jax, 'jit', _no_compile)
  with pytest.raises(train.SetupError) as e:
    _train(tmp_path / 'file' / 'run', data_dir, 2)
  assert str(e.value) == f'{tmp_path}/file/run: Not a directory'


def test_evaluate_takes_no_lock(trained, data_dir, tmp_path):
  workdir = _copy(trained, tmp_path)
  lock = locking.WorkdirLock(workdir)
  try:
    summary = train.run_mode(_config(data_dir), workdir, 'evaluate')
  finally:
    lock.release()
  assert summary['source'].startswith('checkpoint step 4')


# --- 4. Bad records. --------------------------------------------------------------------

_GOOD = fakes.jpeg(50)
UNDECODABLE = {
    'garbage_inside': _GOOD[:20] + bytes(range(256)) * 2 + _GOOD[-2:],
    'middle_cut_out': _GOOD[:len(_GOOD) // 3] + _GOOD[-10:],
}


def _records_config(tmp_path, clips, skip, num_shards=1):
  splits = fakes.write_split(tmp_path, 'train', clips, ['a', 'b', 'c'], num_shards=num_shards)
  fakes.write_split(tmp_path, 'validation', clips, ['a', 'b', 'c'], num_shards=num_shards,
                    name='mine', manifest_splits=splits)
  config = fakes.make_config('tfrecord', str(tmp_path), batch_size=2, eval_batch_size=2)
  config.dataset.name = 'mine'
  config.dataset.skip_corrupt = skip
  config.input.num_frames = 4
  config.input.image_size = config.input.eval_image_size = config.input.min_resize = 16
  return config


def _eval_labels(config):
  batches = list(input_pipeline.create_eval_iterator(config, 'validation'))
  return [int(l) for b in batches for l, m in zip(b['label'], b['mask']) if m]


def _with_bad_clip(frame):
  clips = [fakes.clip(k % 3, clip_id=f'good{k}') for k in range(5)]
  clips.insert(2, fakes.clip(1, clip_id='bad', frames=[frame] * 6))
  return clips


@pytest.mark.parametrize('kind', sorted(UNDECODABLE))
def test_undecodable_jpeg_is_named_in_one_line(kind, tmp_path):
  config = _records_config(tmp_path, _with_bad_clip(UNDECODABLE[kind]), skip=False)
  with pytest.raises(readers.BadRecordError) as e:
    _eval_labels(config)
  assert str(e.value).startswith("mine validation: record 'bad': a frame fails to decode")
  assert '\n' not in str(e.value)


@pytest.mark.parametrize('kind', sorted(UNDECODABLE))
def test_undecodable_jpeg_is_skipped_and_counted_with_skip_corrupt(kind, tmp_path, caplog):
  config = _records_config(tmp_path, _with_bad_clip(UNDECODABLE[kind]), skip=True)
  with caplog.at_level(logging.WARNING):
    assert _eval_labels(config) == [0, 1, 2, 0, 1]
    train_labels = next(input_pipeline.create_train_iterator(config))['label']
  assert "skipped record 'bad': a frame fails to decode" in caplog.text
  assert '(1 skipped so far' in caplog.text and len(train_labels) == 2


def _truncated_shards(tmp_path, skip):
  clips = [fakes.clip(k % 3, clip_id=f'good{k}') for k in range(8)]
  config = _records_config(tmp_path, clips, skip, num_shards=2)
  shard = str(tmp_path / 'validation-00000-of-00002.tfrecord')
  size = os.path.getsize(shard)
  os.truncate(shard, size * 6 // 10)  # mid-record: records 0 and 1 of 4 survive
  return config, shard


def test_truncated_shard_is_named_in_one_line(tmp_path):
  config, shard = _truncated_shards(tmp_path, skip=False)
  with pytest.raises(readers.BadRecordError) as e:
    _eval_labels(config)
  assert str(e.value).startswith(f'mine validation: {shard} is truncated or damaged at '
                                 'record 2 (2 records unread'), str(e.value)
  assert '\n' not in str(e.value)


def test_truncated_shard_rest_is_skipped_and_counted_with_skip_corrupt(tmp_path, caplog):
  config, shard = _truncated_shards(tmp_path, skip=True)
  with caplog.at_level(logging.WARNING):
    labels = _eval_labels(config)
  assert len(labels) == 6  # 2 of the truncated shard + all 4 of the other
  assert f'{shard} is truncated or damaged at record 2: skipped the 2 records' in caplog.text


def test_bad_shard_stops_main_with_one_line_and_no_traceback(data_dir, tmp_path):
  copy = str(tmp_path / 'tfds')
  shutil.copytree(data_dir, copy)
  shard = next(os.path.join(r, f) for r, _, fs in os.walk(copy) for f in fs
               if f.startswith('reversal_pairs-train.tfrecord'))
  os.truncate(shard, os.path.getsize(shard) * 6 // 10)
  rc, _, err = run_main(str(tmp_path / 'run'), copy, mode='train',
                     env=dict(ENV, TF_CPP_MIN_LOG_LEVEL='0'))
  last = err.strip().splitlines()[-1]
  assert rc == 1 and last.startswith(f'main.py: synthetic_tiny train: {shard} is truncated or '
                                     'damaged at record '), err[-3000:]
  assert 'Traceback' not in err


# --- 5. Signals and exit codes. ---------------------------------------------------------

def test_sigint_saves_exits_130_and_resumes_exactly(reference_run, data_dir, tmp_path):
  workdir = str(tmp_path)
  flags = (f'--config.num_train_steps={RESUME_STEPS}', '--config.checkpoint.every_steps=1000')
  proc = run_main(workdir, data_dir, *flags, mode='train', wait=False)
  err = signal_after_first_step(proc, workdir, signal.SIGINT)
  assert proc.returncode == 130 and 'Traceback' not in err, err[-3000:]
  stopped = _json(os.path.join(workdir, 'metrics.json'))
  assert not stopped['finished'] and stopped['last_checkpoint'] == stopped['step']
  assert _steps(workdir) == [stopped['step']]
  rc, _, err = run_main(workdir, data_dir, *flags, mode='train')
  assert rc == 0, err[-3000:]
  summary = _json(os.path.join(workdir, 'metrics.json'))
  assert summary['source'].startswith(f'checkpoint step {stopped["step"]} ')  # none redone
  reference, resumed = train_losses(reference_run), train_losses(workdir)
  assert sorted(resumed) == sorted(reference)
  np.testing.assert_allclose([resumed[s] for s in sorted(resumed)],
                             [reference[s] for s in sorted(reference)], rtol=1e-6)


def test_evaluate_without_a_checkpoint_touches_nothing(data_dir, tmp_path, monkeypatch):
  monkeypatch.setattr(jax, 'jit', _no_compile)
  for workdir in (tmp_path / 'absent', tmp_path):
    with pytest.raises(train.SetupError, match='nothing to evaluate: no checkpoint in'):
      train.run_mode(_config(data_dir), str(workdir), 'evaluate')
  assert os.listdir(tmp_path) == []


# --- 6. One line before any compile. ----------------------------------------------------

def _npz_with(tmp_path, name, **changes):
  with np.load(FIXTURE) as f:
    arrays = {k: f[k] for k in f.files}
  arrays.update(changes)
  path = str(tmp_path / name)
  np.savez(path, **arrays)
  return path


FIXTURE_MODEL = dict(model__embed_dim=16, model__depths=(2, 2, 2), model__num_heads=(1, 2, 4))


@pytest.mark.parametrize('fields,message', [
    (dict(batch_size=0), 'config.batch_size=0 must be positive'),
    (dict(input__num_frames=0), 'config.input.num_frames=0 must be positive'),
    (dict(checkpoint__every_steps=0), 'config.checkpoint.every_steps=0 must be positive'),
    (dict(num_train_steps=-1, num_epochs=0.0), 'config.num_epochs=0.0 must be positive (or '
                                               'set config.num_train_steps > 0)'),
    (dict(num_train_steps=-1, num_epochs=-1.0), 'config.num_epochs=-1.0 must be positive (or '
                                                'set config.num_train_steps > 0)'),
    (dict(input__image_size=2), 'config.input.image_size=2 is smaller than one patch '
                                '(config.model.patch_size=(2, 4, 4))'),
])
def test_bad_value_is_one_line_before_any_compile(fields, message, data_dir, tmp_path,
                                                  monkeypatch):
  monkeypatch.setattr(jax, 'jit', _no_compile)
  with pytest.raises(train.SetupError) as e:
    train.run_mode(_config(data_dir, **fields), str(tmp_path), 'train')
  assert str(e.value) == message


def _with_examples(monkeypatch, **counts):
  """The data set's info as if its splits held ``counts`` examples."""
  get = input_pipeline.get_dataset_info

  def info(config):
    real = get(config)
    return dataclasses.replace(real, num_examples=dict(real.num_examples, **counts))
  monkeypatch.setattr(input_pipeline, 'get_dataset_info', info)


@pytest.mark.parametrize('mode', ['train_and_evaluate', 'evaluate'])
def test_empty_eval_split_is_one_line_before_any_compile(mode, trained, data_dir, tmp_path,
                                                         monkeypatch):
  workdir = _copy(trained, tmp_path)
  _with_examples(monkeypatch, validation=0)
  monkeypatch.setattr(jax, 'jit', _no_compile)
  with pytest.raises(train.SetupError) as e:
    train.run_mode(_config(data_dir, num_train_steps=6), workdir, mode)
  assert str(e.value).startswith('synthetic_tiny validation: the split is empty (0 examples), '
                                 'nothing to evaluate'), str(e.value)
  assert not os.path.exists(os.path.join(workdir, 'checkpoints_best'))


def test_epochs_that_make_no_step_are_one_line_before_any_compile(data_dir, tmp_path,
                                                                  monkeypatch):
  _with_examples(monkeypatch, train=0)
  monkeypatch.setattr(jax, 'jit', _no_compile)
  with pytest.raises(train.SetupError, match=r'^synthetic_tiny train: 0 examples x '
                                             r'config.num_epochs=1.0 make no training step$'):
    train.run_mode(_config(data_dir, num_train_steps=-1, num_epochs=1.0), str(tmp_path), 'train')


def test_init_from_shape_mismatch_is_one_line_before_any_compile(data_dir, tmp_path,
                                                                 monkeypatch):
  key = 'state_dict/backbone.patch_embed.proj.bias'
  path = _npz_with(tmp_path, 'wrong.npz', **{key: np.zeros(5, np.float32)})
  monkeypatch.setattr(jax, 'jit', _no_compile)
  with pytest.raises(train.SetupError) as e:
    train.run_mode(_config(data_dir, init_from=path, **FIXTURE_MODEL), str(tmp_path), 'train')
  assert str(e.value).startswith(f'config.init_from: {path}: checkpoint backbone.patch_embed.'
                                 'proj.bias has shape (5,), the model needs (16,)'), str(e.value)
  assert '\n' not in str(e.value)


def test_pickled_objects_are_refused_in_one_line(data_dir, tmp_path, monkeypatch):
  path = _npz_with(tmp_path, 'evil.npz', evil=np.array([print], dtype=object))
  monkeypatch.setattr(jax, 'jit', _no_compile)
  with pytest.raises(train.SetupError) as e:
    train.run_mode(_config(data_dir, init_from=path, **FIXTURE_MODEL), str(tmp_path), 'train')
  assert str(e.value) == (f"config.init_from: {path}: refused to unpickle 'evil' (it "
                          'holds Python objects; only numeric arrays are read)')
  assert 'weights_only' not in str(e.value)


def test_a_checkpoint_that_cannot_fit_is_refused_before_orbax_writes(tmp_path):
  state = {'w': np.broadcast_to(np.float32(0), (2**40,))}  # 4 TiB that occupy no memory
  with pytest.raises(OSError) as e:
    checkpoints.check_room(str(tmp_path / 'checkpoints_best'), state)
  assert e.value.errno == errno.ENOSPC and e.value.filename == str(tmp_path / 'checkpoints_best')
  line = wd.disk_full(e.value, str(tmp_path))
  assert line.startswith(f'disk full: writing {tmp_path}/checkpoints_best failed with ')
  assert '(a checkpoint needs 4194304.0 MiB)' in line and '\n' not in line
  assert os.listdir(tmp_path) == []
  checkpoints.check_room(str(tmp_path), {'w': np.zeros(4, np.float32)})  # room: no error


def test_disk_full_during_a_best_save_is_one_line_without_tracebacks(data_dir, tmp_path):
  """A real full disk (a 64 kB tmpfs on checkpoints_best, where a best save fills it): orbax's writer
  threads each printed a traceback (~600 lines around the one line)."""
  workdir = tmp_path / 'run'
  (workdir / 'checkpoints_best').mkdir(parents=True)
  prefix = small_disk_or_skip(workdir / 'checkpoints_best')
  rc, _, err = run_main(str(workdir), data_dir, '--config.num_train_steps=4',
                        '--config.checkpoint.every_steps=1', prefix=prefix)
  assert rc == 1
  last = err.strip().splitlines()[-1]
  assert last.startswith(f'main.py: disk full: writing {workdir}/checkpoints_best failed with '
                         '0.'), err[-3000:]
  assert 'a checkpoint needs' in last and 'Traceback' not in err, err[-5000:]
  assert _steps(str(workdir))  # the latest checkpoints before it are kept


def test_disk_full_names_the_file_and_the_free_space(data_dir, tmp_path):
  os.symlink('/dev/full', tmp_path / reporting.HISTORY)  # every write: ENOSPC
  with pytest.raises(train.RunError) as e:
    _train(tmp_path, data_dir, 2)
  assert str(e.value).startswith(f'disk full: writing {tmp_path}/{reporting.HISTORY} failed '
                                 'with '), str(e.value)
  assert 'MiB free there' in str(e.value) and '\n' not in str(e.value)
