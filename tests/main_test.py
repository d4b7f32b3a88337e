"""main.py end to end: train + evaluate, kill and resume, NaN stop, bad input, official eval.

Runs ``main.py`` in subprocesses on ``configs/test.py`` and the tiny synthetic set.
"""
import json
import os
import signal
import socket
import time

import jax
import numpy as np
import pytest

from configs import test as test_config
from tps_jax import checkpoints
from tps_jax import locking
from tps_jax import train
from tests.conftest import FIXTURE
from tests.main_runs import (RESUME_FLAGS, RESUME_STEPS, run_main, signal_after_first_step,
                             train_losses)

pytestmark = pytest.mark.slow  # main.py / app runs in subprocesses


def test_train_and_evaluate_writes_metrics_curves_and_confusion(reference_run):
  files = os.listdir(reference_run)
  for name in ('metrics.json', 'curves.png', 'history.jsonl', 'eval_validation.json',
               'confusion_validation.csv'):
    assert name in files, (name, files)
  assert any(f.startswith('events.out.tfevents') for f in files)
  summary = json.load(open(os.path.join(reference_run, 'metrics.json')))
  assert summary['step'] == RESUME_STEPS and summary['finished']
  ev = summary['eval']['validation']
  assert ev['count'] == 20 and set(ev) >= {'top1', 'top5', 'mean_class_accuracy'}
  assert summary['train_step_seconds'] > 0
  assert sorted(train_losses(reference_run)) == list(range(1, RESUME_STEPS + 1))


def test_sigkill_then_resume_continues_with_identical_losses(reference_run, data_dir, tmp_path):
  workdir = str(tmp_path / 'killed')
  proc = run_main(workdir, data_dir, *RESUME_FLAGS, wait=False)
  first = os.path.join(workdir, 'checkpoints', '4')
  deadline = time.time() + 600
  while not os.path.isdir(first) and proc.poll() is None and time.time() < deadline:
    time.sleep(0.01)
  assert proc.poll() is None, 'the run ended before it could be killed'
  proc.send_signal(signal.SIGKILL)
  proc.communicate()
  killed_at = max(train_losses(workdir))
  assert killed_at < RESUME_STEPS
  rc, _, err = run_main(workdir, data_dir, *RESUME_FLAGS)
  assert rc == 0, err[-3000:]
  summary = json.load(open(os.path.join(workdir, 'metrics.json')))
  assert summary['source'].startswith('checkpoint step'), summary['source']
  resumed_from = int(summary['source'].split()[2])
  assert 4 <= resumed_from < RESUME_STEPS
  reference, resumed = train_losses(reference_run), train_losses(workdir)
  assert sorted(resumed) == sorted(reference)
  np.testing.assert_allclose([resumed[s] for s in sorted(resumed)],
                             [reference[s] for s in sorted(reference)], rtol=1e-6)


def test_sigterm_saves_a_checkpoint_and_exits_143(data_dir, tmp_path):
  workdir = str(tmp_path)
  proc = run_main(workdir, data_dir, '--config.num_train_steps=1000',
                  '--config.checkpoint.every_steps=1000', mode='train', wait=False)
  err = signal_after_first_step(proc, workdir, signal.SIGTERM)
  assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]  # stopped early: not 0
  summary = json.load(open(os.path.join(workdir, 'metrics.json')))
  assert not summary['finished'] and summary['last_checkpoint'] == summary['step'] < 1000
  assert os.path.isdir(os.path.join(workdir, 'checkpoints', str(summary['step'])))


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(data_dir, tmp_path):
  workdir = str(tmp_path)
  rc, _, err = run_main(workdir, data_dir, '--config.num_train_steps=6',
                     '--config.optim.learning_rate=1e30', '--config.optim.schedule=constant',
                     '--config.optim.rules=from_scratch', mode='train')
  assert rc != 0
  last = err.strip().splitlines()[-1]
  assert last.startswith('main.py: non-finite loss'), last
  steps = sorted(int(d) for d in os.listdir(os.path.join(workdir, 'checkpoints')) if d.isdigit())
  assert steps and f'last good checkpoint (step {steps[-1]})' in last
  assert steps[-1] < 6


@pytest.mark.parametrize('flag,message', [
    ('--config.optim.lr=1', 'main.py: bad flag: no such config field'),
    ('--config.model.arch=swin3d', "main.py: config.model.arch='swin3d' is not one of"),
    ('--config.init_required=True', 'main.py: config.init_from is not set'),  # paper configs
])
def test_main_reports_bad_input_in_one_line(flag, message, data_dir, tmp_path):
  rc, _, err = run_main(str(tmp_path), data_dir, flag)
  assert rc != 0 and err.strip().splitlines()[-1].startswith(message), err[-2000:]


def _no_compile(*args, **kwargs):
  raise AssertionError('compiled before the bad input was found')


@pytest.mark.parametrize('field,value,message', [
    ('model.arch', 'swin3d', "config.model.arch='swin3d' is not one of"),
    ('input.num_frames', 40, "40 frames / patch_size[0]=2 give 20 temporal tokens, but "
                             "config.model.bias='official' supports at most 16"),
    ('model.window_size', (2, 7, 7), "bias='official' needs a temporal window of 1"),
    ('model.num_heads', (3,), 'not divisible by num_heads[0]=3'),
    ('optim.grad_accum_steps', 3, 'not divisible by config.optim.grad_accum_steps=3'),
    ('init_from', '/no/such/tps.pth', 'config.init_from: no such checkpoint: /no/such/tps.pth'),
])
def test_bad_config_fails_before_compiling(field, value, message, tmp_path, monkeypatch):
  config = test_config.get_config()
  section, _, name = field.rpartition('.')
  setattr(config[section] if section else config, name, value)
  monkeypatch.setattr(jax, 'jit', _no_compile)
  with pytest.raises(train.SetupError) as e:
    train.run_mode(config, str(tmp_path), 'train')
  assert message in str(e.value) and '\n' not in str(e.value)


def test_workdir_of_another_model_fails_before_compiling(tmp_path, monkeypatch):
  other = test_config.get_config()
  other.model.embed_dim = 16
  ckpt = checkpoints.Checkpoints(str(tmp_path), other, num_classes=10)
  ckpt.save(3, {'params': {'w': np.zeros(2, np.float32)}}, force=True)
  ckpt.close()
  monkeypatch.setattr(jax, 'jit', _no_compile)
  with pytest.raises(train.SetupError, match=r'of a different model: config.model.embed_dim=16 '
                                             r'there, 8 here; use a new --workdir'):
    train.run_mode(test_config.get_config(), str(tmp_path), 'train')


def test_evaluate_official_checkpoint_reproduces_the_model_logits(data_dir, tmp_path):
  """main.py --mode=evaluate from the converted fixture == model.apply on the same clips."""
  from tps_jax import convert  # pylint: disable=g-import-not-at-top
  import input_pipeline  # pylint: disable=g-import-not-at-top
  model_flags = ['--config.model.embed_dim=16', '--config.model.depths=(2,2,2)',
                 '--config.model.num_heads=(1,2,4)', '--config.model.drop_path_rate=0.0',
                 f'--config.init_from={FIXTURE}', '--config.eval.write_predictions=True']
  rc, _, err = run_main(str(tmp_path), data_dir, *model_flags, mode='evaluate')
  assert rc == 0, err[-3000:]
  written = np.load(tmp_path / 'evaluate' / 'predictions_validation.npz')

  config = test_config.get_config()
  config.model.embed_dim, config.model.depths, config.model.num_heads = 16, (2, 2, 2), (1, 2, 4)
  config.dataset.data_dir = data_dir
  model, variables = convert.load_official(FIXTURE, config.model)
  logits, labels, ids = [], [], []
  for batch in input_pipeline.create_eval_iterator(config, 'validation'):
    views = batch['video']
    out = model.apply(variables, views.reshape((-1,) + views.shape[2:]), train=False)[0]
    logits.append(np.asarray(out).reshape(views.shape[0], views.shape[1], -1).mean(1)[batch['mask']])
    labels.append(batch['label'][batch['mask']])
    ids += [i.decode() for i in batch['id'][batch['mask']]]
  np.testing.assert_array_equal(written['labels'], np.concatenate(labels))
  assert written['ids'].tolist() == ids and len(set(ids)) == len(ids)  # which video is which
  np.testing.assert_allclose(written['logits'], np.concatenate(logits), atol=1e-5, rtol=1e-5)


def _free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def test_two_processes_on_localhost_train_together(data_dir, tmp_path):
  """jax.distributed with CPU collectives: 2 processes x 1 device, one global batch."""
  port = _free_port()
  procs = [run_main(str(tmp_path), data_dir, '--multiprocess', f'--coordinator_address=localhost:{port}',
                 '--num_processes=2', f'--process_id={i}', '--config.eval.write_predictions=True',
                 wait=False) for i in range(2)]
  results = [p.communicate(timeout=600) for p in procs]
  for p, (_, err) in zip(procs, results):
    assert p.returncode == 0, err[-3000:]
  assert 'process 0 of 2, 2 devices' in results[0][1]
  summary = json.load(open(tmp_path / 'metrics.json'))
  assert summary['finished'] and summary['eval']['validation']['count'] == 20
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['1', '2']
  ids = np.load(tmp_path / 'predictions_validation.npz')['ids']  # both processes' videos
  assert len(ids) == len(set(ids)) == 20


def test_every_process_stops_with_the_same_line_when_process_0_finds_the_workdir_locked(
    data_dir, tmp_path):
  """Only process 0 takes the lock; its refusal reaches process 1 (no hang, no compile)."""
  port = _free_port()
  holder = locking.WorkdirLock(str(tmp_path))
  try:
    procs = [run_main(str(tmp_path), data_dir, '--multiprocess',
                      f'--coordinator_address=localhost:{port}', '--num_processes=2',
                      f'--process_id={i}', mode='train', wait=False) for i in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
  finally:
    holder.release()
  lasts = [err.strip().splitlines()[-1] for _, err in results]
  for p, last in zip(procs, lasts):
    assert p.returncode == 1 and last.startswith(
        f'main.py: {tmp_path} is in use by another run (pid {os.getpid()} on host '), last
  assert lasts[0] == lasts[1]
