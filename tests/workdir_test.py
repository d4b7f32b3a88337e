"""The run directory on gs://: the path layer, a run that trains, resumes, falls back and
reports there, loads from there, and refuses a bad bucket in one line before compiling.

Against a real GCS emulator (the ``gcs`` fixture: fake-gcs-server), in-process runs of
``train.run_mode`` on ``configs/test.py`` and one ``main.py`` run from data in the bucket.
The in-process runs leave TensorBoard off (TensorFlow's GCS client is tested once, by the
``main.py`` run: TFDS records and TensorBoard events).
"""
import json
import os
import signal
import time

import fsspec
import jax
import numpy as np
import pytest

from configs import test as test_config
from tps_jax import integrity
from tps_jax import locking
from tps_jax import reporting
from tps_jax import train
from tps_jax import weights
from tps_jax import workdir as wd
from tests.conftest import ROOT, prepare_tiny
from tests.gcs_emulator import BUCKET
from tests.main_runs import ENV, RESUME_FLAGS, RESUME_STEPS, run_main, train_losses

# Every test here talks to the emulator (``gcs`` sets its environment for the test).
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures('gcs')]  # in-process training runs


def _url(name):
  return f'gs://{BUCKET}/{name}'


def _config(data_dir, **fields):
  config = test_config.get_config()
  config.dataset.data_dir = data_dir
  config.tensorboard = False
  for field, value in fields.items():
    section, _, name = field.rpartition('__')
    setattr(config[section] if section else config, name, value)
  return config


def _no_compile(*args, **kwargs):
  raise AssertionError('compiled before the bad input was found')


def test_atomic_write_listing_and_rename_on_gs(gcs):
  root = _url('unit')
  wd.write_atomic(wd.join(root, 'a.json'), '{"x": 1}')
  wd.write_atomic(wd.join(root, 'a.json'), '{"x": 2}')  # a whole-object overwrite
  wd.write_atomic(wd.join(root, 'd', 'b.bin'), b'\x00\x01')
  assert wd.read_text(wd.join(root, 'a.json')) == '{"x": 2}'
  assert wd.listdir(root) == ['a.json', 'd'] and wd.isdir(wd.join(root, 'd'))
  assert sorted(wd.files_under(root)) == ['a.json', 'd/b.bin']
  wd.rename(wd.join(root, 'd'), wd.join(root, 'e'))
  assert wd.listdir(root) == ['a.json', 'e'] and wd.read_bytes(wd.join(root, 'e/b.bin')) == b'\x00\x01'


def test_history_on_gs_is_rewritten_whole_and_survives_a_resume(gcs):
  root = _url('history')
  writer = reporting.Writer(root, tensorboard=False)
  writer.write_scalars(1, {'train_loss': 3.0})
  writer.write_scalars(2, {'train_loss': 2.0})
  reporting.Writer(root, tensorboard=False).write_scalars(3, {'train_loss': 1.0})  # resumed
  assert reporting.read_history(root)['train_loss'] == [(1, 3.0), (2, 2.0), (3, 1.0)]


@pytest.fixture(scope='module')
def gs_data_dir(gcs_server):
  """``reversal_pairs/tiny`` prepared straight into the bucket."""
  with gcs_server.environ():
    return prepare_tiny(_url('tfds'))


def test_main_py_trains_from_gs_data_into_a_gs_workdir_with_tensorboard_and_no_local_folder(
    gcs, gs_data_dir):
  url = _url('main')
  rc, _, err = run_main(url, gs_data_dir, '--config.num_train_steps=1', mode='train',
                        env=dict(ENV, **gcs.env))
  assert rc == 0, err[-3000:]
  assert f'Load dataset info from {gs_data_dir}/reversal_pairs/tiny' in err
  assert integrity.committed_steps(wd.join(url, wd.CHECKPOINTS)) == [1]
  assert wd.isfile(wd.join(url, wd.METRICS)) and not wd.exists(wd.join(url, wd.LOCK))
  assert [n for n in wd.listdir(url) if n.startswith('events.out.tfevents.')]  # TensorBoard
  assert not os.path.exists(os.path.join(ROOT, 'gs:'))  # main.py runs in ROOT


def test_sigkill_on_gs_then_resume_takes_over_the_lock_and_continues_with_identical_losses(
    gcs, gs_data_dir, reference_run):
  """SIGKILLed: nothing releases its lock object; the next run takes it over once the lease
  has passed (one warning line) and resumes with the uninterrupted run's losses."""
  url, env = _url('killed'), dict(ENV, **gcs.env)
  proc = run_main(url, gs_data_dir, *RESUME_FLAGS, wait=False, env=env)
  ckpt = wd.join(url, wd.CHECKPOINTS)
  deadline = time.time() + 600
  while not integrity.committed_steps(ckpt) and proc.poll() is None and time.time() < deadline:
    time.sleep(0.05)
  assert proc.poll() is None, 'the run ended before it could be killed'
  proc.send_signal(signal.SIGKILL)
  proc.communicate()
  assert wd.exists(wd.join(url, wd.LOCK))  # a dead holder's lock stays
  killed_at = max(train_losses(url))
  assert killed_at < RESUME_STEPS
  time.sleep(1.0)  # older than the resuming run's lease
  rc, _, err = run_main(url, gs_data_dir, *RESUME_FLAGS,
                        '--config.checkpoint.lock_lease_minutes=0.01', env=env)
  assert rc == 0, err[-3000:]
  assert 'took over the lock of pid' in err
  summary = json.loads(wd.read_text(wd.join(url, wd.METRICS)))
  assert summary['source'].startswith('checkpoint step'), summary['source']
  reference, resumed = train_losses(reference_run), train_losses(url)
  assert sorted(resumed) == sorted(reference)
  np.testing.assert_allclose([resumed[s] for s in sorted(resumed)],
                             [reference[s] for s in sorted(reference)], rtol=1e-6)
  assert not os.path.exists(os.path.join(ROOT, 'gs:'))


@pytest.fixture(scope='module')
def gs_run(gcs_server, data_dir, tmp_path_factory):
  """A 2-step run in gs://BUCKET/run (checkpoints at steps 1 and 2), run from an empty
  directory, which must stay empty."""
  cwd, here = os.getcwd(), tmp_path_factory.mktemp('cwd')
  os.chdir(here)
  try:
    with gcs_server.environ():
      summary = train.run_mode(_config(data_dir, num_train_steps=2), _url('run'), 'train')
  finally:
    os.chdir(cwd)
  return _url('run'), summary, here


def test_training_on_gs_writes_checkpoints_checksums_and_reports_there(gs_run):
  url, summary, here = gs_run
  assert summary['finished'] and summary['step'] == 2
  ckpt = wd.join(url, wd.CHECKPOINTS)
  assert integrity.committed_steps(ckpt) == [1, 2]
  assert all(integrity.verify(wd.join(ckpt, s)) == (integrity.OK, '') for s in ('1', '2'))
  assert wd.exists(wd.join(ckpt, '2', wd.CHECKSUMS))
  for name in (wd.HISTORY, wd.INIT, wd.CURVES):
    assert wd.isfile(wd.join(url, name)), name
  assert sorted(reporting.read_history(url)['train_loss'])[-1][0] == 2
  assert not wd.exists(wd.join(url, wd.LOCK))  # released
  assert os.listdir(here) == []  # no local ./gs:/... folder


def test_corrupted_newest_step_on_gs_is_moved_aside_and_the_run_resumes_from_the_previous(
    gs_run, data_dir, caplog):
  fs = fsspec.filesystem('gs')
  src, url = gs_run[0], _url('corrupt')
  fs.copy(src.split('://')[1], url.split('://')[1], recursive=True)
  state = wd.join(url, wd.CHECKPOINTS, '2', 'state')
  largest = max(fs.find(state.split('://')[1], detail=True).values(), key=lambda i: i['size'])
  data = bytearray(fs.cat_file(largest['name']))
  data[len(data) // 2] ^= 0xFF
  fs.pipe_file(largest['name'], bytes(data))
  summary = train.run_mode(_config(data_dir, num_train_steps=3), url, 'train')
  ckpt = wd.join(url, wd.CHECKPOINTS)
  assert summary['source'] == f'checkpoint step 1 in {ckpt}' and summary['step'] == 3
  assert [n for n in wd.listdir(ckpt) if n.startswith('bad_2_')]  # kept, not deleted
  assert 'does not match its checksum' in caplog.text
  assert integrity.committed_steps(ckpt) == [1, 2, 3]


def test_evaluate_mode_on_a_gs_workdir_writes_its_reports_there(gs_run, data_dir):
  url = _url('evaluate')
  fsspec.filesystem('gs').copy(gs_run[0].split('://')[1], url.split('://')[1], recursive=True)
  summary = train.run_mode(_config(data_dir), url, 'evaluate')
  assert summary['source'] == f'checkpoint step 2 in {url}/checkpoints'
  assert wd.isfile(wd.join(url, wd.EVALUATE))
  for name in (wd.eval_report('validation'), wd.confusion('validation')):
    assert wd.isfile(wd.join(url, wd.EVALUATE_DIR, name)), name


def test_init_from_and_predict_checkpoint_read_a_gs_workdir(gs_run, data_dir):
  config = _config(data_dir)
  for num_classes in (None, 10):  # predict --checkpoint, config.init_from
    params, provenance = weights.load_params(gs_run[0], config.model, num_classes)
    assert provenance.kind == 'workdir' and provenance.step == 2 and params


def test_second_run_on_a_locked_gs_workdir_stops_with_one_line_before_compiling(
    gcs, data_dir, monkeypatch):
  url = _url('locked')
  holder = locking.acquire(url)
  try:
    monkeypatch.setattr(jax, 'jit', _no_compile)
    with pytest.raises(train.SetupError, match=f'^{url} is in use by another run '
                                               rf'\(pid {os.getpid()} on host '):
      train.run_mode(_config(data_dir), url, 'train')
  finally:
    holder.release()


@pytest.mark.parametrize('env, url, cause', [
    ({}, 'gs://no-such-bucket/run', 'bucket gs://no-such-bucket does not exist'),
    ({'STORAGE_EMULATOR_HOST': 'http://127.0.0.1:9'}, _url('run'),
     'cannot reach the storage endpoint'),
    ({'STORAGE_EMULATOR_HOST': None, 'GOOGLE_APPLICATION_CREDENTIALS': '/nonexistent.json'},
     _url('run'), 'no Google Cloud credentials'),
], ids=['missing_bucket', 'unreachable_endpoint', 'missing_credentials'])
def test_unusable_bucket_is_one_line_naming_the_path_before_any_compile(
    env, url, cause, gcs, data_dir, tmp_path, monkeypatch):
  for k, v in env.items():
    if v is None:
      monkeypatch.delenv(k)
    else:
      monkeypatch.setenv(k, v)
  monkeypatch.setattr(jax, 'jit', _no_compile)
  monkeypatch.chdir(tmp_path)
  with pytest.raises(train.SetupError) as e:
    train.run_mode(_config(data_dir), url, 'train')
  assert str(e.value).startswith(f'--workdir={url}: {cause}'), str(e.value)
  assert '\n' not in str(e.value) and os.listdir(tmp_path) == []
