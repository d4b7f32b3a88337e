"""The run's checkpoints: unverified steps used or refused, sealing only what a run saved, the
best checkpoint, and params-only restores racing a training run's garbage collection."""
import json
import logging
import os
import shutil

import numpy as np
import pytest

from configs import test as test_config
from tps_jax import checkpoints
from tps_jax import integrity


def _saved(tmp_path, params, name='run'):
  """A workdir with one sealed step (1) holding ``params``; the step's directory."""
  workdir = str(tmp_path / name)
  ckpt = checkpoints.Checkpoints(workdir, test_config.get_config(), 3)
  ckpt.save(1, {'params': params}, force=True)
  ckpt.close()
  return workdir, os.path.join(workdir, 'checkpoints', '1')


def _manifest(step_dir):
  with open(os.path.join(step_dir, integrity.CHECKSUMS)) as f:
    return json.load(f)


def _write_manifest(step_dir, manifest):
  with open(os.path.join(step_dir, integrity.CHECKSUMS), 'w') as f:
    json.dump(manifest, f)


def _params():
  return {'w': np.arange(4, dtype=np.float32)}


def test_unverified_step_with_non_finite_params_is_refused(tmp_path, caplog):
  workdir, step_dir = _saved(tmp_path, {'w': np.array([1.0, np.nan], np.float32)})
  os.remove(os.path.join(step_dir, integrity.CHECKSUMS))
  with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match='no usable checkpoint'):
    checkpoints.restore_params(workdir)
  assert "no checksums.json, and params['w'] is not finite" in caplog.text, caplog.text


def test_unverified_finite_step_is_used_with_a_warning_and_not_sealed(tmp_path, caplog):
  workdir, step_dir = _saved(tmp_path, _params())
  os.remove(os.path.join(step_dir, integrity.CHECKSUMS))
  with caplog.at_level(logging.WARNING):
    params, meta = checkpoints.restore_params(workdir)
  np.testing.assert_array_equal(params['w'], _params()['w'])
  assert meta['step'] == 1 and f'checkpoint {step_dir} is unverified' in caplog.text
  assert not os.path.exists(os.path.join(step_dir, integrity.CHECKSUMS))


def test_a_later_run_seals_only_the_steps_it_saved(tmp_path):
  workdir, step_dir = _saved(tmp_path, _params())
  os.remove(os.path.join(step_dir, integrity.CHECKSUMS))
  ckpt = checkpoints.Checkpoints(workdir, test_config.get_config(), 3)
  ckpt.save(2, {'params': _params()}, force=True)
  ckpt.close()
  assert not os.path.exists(os.path.join(step_dir, integrity.CHECKSUMS))  # never blessed
  assert integrity.verify(os.path.join(workdir, 'checkpoints', '2'))[0] == integrity.OK


def test_best_checkpoint_is_sealed_and_a_flipped_byte_in_it_is_refused(tmp_path, caplog):
  best = checkpoints.BestCheckpoint(str(tmp_path), test_config.get_config(), 3)
  best.save(1, {'params': _params()}, 0.5)
  best.close()
  step_dir = os.path.join(str(tmp_path), checkpoints.BEST, '1')
  assert integrity.verify(step_dir) == (integrity.OK, '')
  files = [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(step_dir, 'state')) for f in fs]
  path = max(files, key=os.path.getsize)
  data = bytearray(open(path, 'rb').read())
  data[len(data) // 2] ^= 0x01
  open(path, 'wb').write(bytes(data))
  with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match='no usable checkpoint'):
    checkpoints.restore_params(os.path.dirname(step_dir))
  assert 'does not match its checksum (corrupted)' in caplog.text


def test_restore_params_lists_again_when_the_step_it_reads_is_deleted_by_training(
    tmp_path, monkeypatch, caplog):
  workdir, step_dir = _saved(tmp_path, _params())  # keep=1: training replaces step 1 by 2
  restore = checkpoints.ocp.CheckpointManager.restore

  def trainer_moves_on(self, step, *args, **kwargs):
    if step == 1 and 'state' in kwargs.get('args', {}):
      shutil.copytree(step_dir, os.path.join(workdir, 'checkpoints', '2'))
      shutil.rmtree(step_dir)
    return restore(self, step, *args, **kwargs)
  monkeypatch.setattr(checkpoints.ocp.CheckpointManager, 'restore', trainer_moves_on)
  with caplog.at_level(logging.WARNING):
    params, meta = checkpoints.restore_params(workdir)
  assert meta['step'] == 2 and 'was deleted while being read' in caplog.text
  np.testing.assert_array_equal(params['w'], _params()['w'])
