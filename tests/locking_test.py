"""The gs:// workdir lock against a real GCS emulator (``ifGenerationMatch`` preconditions).

The local ``flock`` is tested end to end in ``reliability_test.py``.
"""
import concurrent.futures
import json
import logging
import os
import time

import pytest

from tps_jax import locking
from tps_jax import workdir as wd
from tests.gcs_emulator import BUCKET


def _race(url, n, lease_s=60.0):
  """``n`` threads acquire ``url``'s lock at once: the locks won and the refusals."""
  def one(_):
    try:
      return locking.acquire(url, lease_s)
    except ValueError as e:
      return str(e)
  with concurrent.futures.ThreadPoolExecutor(n) as pool:
    results = list(pool.map(one, range(n)))
  return ([r for r in results if isinstance(r, locking.ObjectLock)],
          [r for r in results if isinstance(r, str)])


def _stale(url, seconds_ago):
  """A lock left by a holder that died ``seconds_ago`` (its last heartbeat)."""
  body = {'pid': 4242, 'host': 'dead-host', 'since': 'earlier',
          'heartbeat': 'earlier', 'heartbeat_unix': time.time() - seconds_ago}
  wd.write_atomic(wd.join(url, wd.LOCK), json.dumps(body))


def test_of_racing_creators_exactly_one_gets_the_gs_lock(gcs):
  url = f'gs://{BUCKET}/race'
  won, refused = _race(url, 8)
  try:
    assert len(won) == 1 and len(refused) == 7
    assert all(r.startswith(f'{url} is in use by another run (pid ') and '\n' not in r
               for r in refused), refused[0]
  finally:
    won[0].release()
  locking.acquire(url).release()  # released: free again


def test_a_gs_lock_past_its_lease_is_taken_over_by_one_taker_with_one_warning(gcs, caplog):
  url = f'gs://{BUCKET}/stale'
  _stale(url, seconds_ago=120)
  with caplog.at_level(logging.WARNING):
    won, refused = _race(url, 4, lease_s=60)
  try:
    assert len(won) == 1 and len(refused) == 3
    lines = [r.getMessage() for r in caplog.records if 'took over' in r.getMessage()]
    assert len(lines) == 1 and 'pid 4242 on host dead-host' in lines[0], caplog.text
  finally:
    won[0].release()


def test_a_gs_lock_within_its_lease_is_not_taken_over(gcs):
  url = f'gs://{BUCKET}/fresh'
  _stale(url, seconds_ago=30)
  with pytest.raises(ValueError, match=r'is in use by another run \(pid 4242 on host dead-host'):
    locking.acquire(url, lease_s=60)


def test_a_holder_refreshes_and_learns_at_its_next_refresh_that_it_was_taken_over(gcs):
  url = f'gs://{BUCKET}/taken'
  holder = locking.acquire(url, lease_s=2)
  holder.refresh()  # its own heartbeat: still ours
  time.sleep(1.1)
  taker = locking.acquire(url, lease_s=1)  # the holder missed the taker's lease
  try:
    holder.beat()  # between checkpoints (due: 1.1 s > 2 s / 4): notices, raises nothing
    assert holder.lost
    with pytest.raises(ValueError, match=f'^{url}/.lock was taken over by another run'):
      holder.refresh()  # at the checkpoint: every process stops
    holder.release()  # not ours any more: leaves the taker's lock alone
    assert wd.exists(wd.join(url, wd.LOCK))
  finally:
    taker.release()


def test_between_checkpoints_a_holder_beats_once_a_quarter_of_its_lease_has_passed(gcs):
  lock = locking.acquire(f'gs://{BUCKET}/beat', lease_s=2)
  try:
    first = lock.generation
    lock.beat()
    assert lock.generation == first  # too soon: no write
    time.sleep(0.6)
    lock.beat()
    assert lock.generation != first
  finally:
    lock.release()


def test_a_symlinked_lock_is_refused_and_its_target_left_intact(tmp_path):
  target = tmp_path / 'precious.txt'
  target.write_text('keep me\n')
  (tmp_path / 'run').mkdir()
  os.symlink(target, tmp_path / 'run' / '.lock')
  with pytest.raises(ValueError) as e:
    locking.WorkdirLock(str(tmp_path / 'run'))
  assert str(e.value) == (f'{tmp_path}/run/.lock: cannot be used as the workdir lock (a '
                          'symbolic link): remove it')
  assert target.read_text() == 'keep me\n'


@pytest.mark.parametrize('make', [os.mkdir, os.mkfifo])
def test_a_lock_that_is_not_a_regular_file_is_one_line(tmp_path, make):
  make(tmp_path / '.lock')
  with pytest.raises(ValueError, match=r'^\S+/\.lock: cannot be used as the workdir lock '
                                       r'\(.+\): remove it$'):
    locking.WorkdirLock(str(tmp_path))


def test_a_workdir_where_no_lock_can_be_created_is_one_line():
  with pytest.raises(ValueError, match=r'^/proc: cannot create the workdir lock there \(.+\): '
                                       r'is the workdir writable\?$'):
    locking.WorkdirLock('/proc')  # no file can be created there, not even by root
