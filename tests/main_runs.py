"""``main.py`` in a subprocess: what the end-to-end and reliability tests share."""
import os
import subprocess
import sys
import time

from tps_jax import reporting
from tests.conftest import ROOT

ENV = dict(os.environ, JAX_PLATFORMS='cpu', JAX_DISABLE_MOST_OPTIMIZATIONS='1',
           TF_CPP_MIN_LOG_LEVEL='3')
RESUME_STEPS = 24  # long enough that a kill after the first checkpoint lands mid-run
RESUME_FLAGS = (f'--config.num_train_steps={RESUME_STEPS}', '--config.checkpoint.every_steps=4')


def run_main(workdir, data_dir, *flags, mode='train_and_evaluate', config='configs/test.py',
             wait=True, env=None, prefix=()):
  """``(returncode, stdout, stderr)`` of ``main.py``; the Popen itself with ``wait=False``.
  ``prefix``: a command that runs it (e.g. :func:`small_disk`)."""
  cmd = [*prefix, sys.executable, 'main.py', f'--config={config}', f'--workdir={workdir}',
         f'--mode={mode}', f'--config.dataset.data_dir={data_dir}', *flags]
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env or ENV, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  if not wait:
    return proc
  out, err = proc.communicate(timeout=600)
  return proc.returncode, out, err


def small_disk(mountpoint, size='64k'):
  """A command prefix: the rest runs in a mount namespace where ``mountpoint`` (a directory)
  is a tmpfs of ``size``, a disk the kernel really fills (ENOSPC), seen by no other process."""
  return ['unshare', '--mount', '--map-root-user', 'sh', '-c',
          f'mount -t tmpfs -o size={size} tmpfs "$0" && exec "$@"', str(mountpoint)]


def small_disk_or_skip(mountpoint):
  """:func:`small_disk`, or a skip naming why this machine cannot make one."""
  import pytest  # pylint: disable=g-import-not-at-top
  try:
    probe = subprocess.run(small_disk(mountpoint) + ['true'], capture_output=True, text=True,
                           timeout=30)
  except (OSError, subprocess.TimeoutExpired) as e:
    pytest.skip(f'no small disk: {e}')
  if probe.returncode:
    pytest.skip(f'no small disk (unshare/mount refused): {probe.stderr.strip()}')
  return small_disk(mountpoint)


def train_losses(workdir):
  """``{step: train loss}`` from the run's history."""
  return dict(reporting.read_history(workdir)['train_loss'])


def signal_after_first_step(proc, workdir, signum):
  """Sends ``signum`` once the run has logged its first step; ``stderr`` when it exits."""
  history = os.path.join(workdir, reporting.HISTORY)
  deadline = time.time() + 600
  while not os.path.exists(history) and proc.poll() is None and time.time() < deadline:
    time.sleep(0.05)
  proc.send_signal(signum)
  return proc.communicate(timeout=600)[1]
