"""An exclusive lock on a training workdir, so two runs never write one workdir at once.

Local disk: ``fcntl.flock`` on ``WORKDIR/.lock``; the kernel releases it when the holder
exits or dies (SIGKILL included), so a stale lock needs no clean-up; the file names the
holder (pid, host, start time) for the one-line refusal of a second run.

Object store (``gs://``): there is no flock and nothing releases a dead holder's lock, so
the lock is an object created with ``ifGenerationMatch=0`` (of racing creators exactly one
wins) holding the holder's host, pid and a heartbeat time that :meth:`ObjectLock.refresh`
renews at each checkpoint (and :meth:`ObjectLock.beat` between them, when a quarter of the
lease has passed). A lock whose heartbeat is older than the lease is taken over
(one warning line), again under a generation precondition, so of racing takers one wins;
a holder whose lock was taken over learns it at its next refresh and stops.
"""
import datetime
import fcntl
import json
import os
import socket
import stat
import time
from typing import Optional

from absl import logging

from tps_jax import sharding
from tps_jax import workdir as wd

LOCK_FILE = wd.LOCK
DEFAULT_LEASE_S = 30 * 60.0


def _in_use(workdir: str, holder: str, path: str) -> ValueError:
  return ValueError(f'{workdir} is in use by another run ({holder}; lock {path}): wait for '
                    'it to end or use another --workdir')


def _open_regular(path: str) -> int:
  """Opens ``path`` for locking, refusing a symbolic link or anything but a regular file:
  the lock is truncated and rewritten, which through a link (we may run as root) would
  destroy the target. One-line ValueError."""
  try:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
  except OSError as e:
    if not os.path.lexists(path):  # could not be created
      raise ValueError(f'{os.path.dirname(path)}: cannot create the workdir lock there '
                       f'({e.strerror}): is the workdir writable?') from None
    kind = 'a symbolic link' if os.path.islink(path) else e.strerror
    raise ValueError(f'{path}: cannot be used as the workdir lock ({kind}): remove it') from None
  if not stat.S_ISREG(os.fstat(fd).st_mode):
    os.close(fd)
    raise ValueError(f'{path}: cannot be used as the workdir lock (not a regular file): '
                     'remove it')
  return fd


class WorkdirLock:
  """Holds ``WORKDIR/.lock`` (``flock``) until :meth:`release` (or the process ends).

  Args:
    workdir: an existing local directory.

  Raises:
    ValueError: one line naming the holder, when another process holds the lock.
  """

  def __init__(self, workdir: str):
    self.path = os.path.join(os.path.abspath(workdir), LOCK_FILE)
    self._fd: Optional[int] = _open_regular(self.path)
    try:
      fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.read(self._fd, 1000).decode(errors='replace').strip() or 'unknown holder'
      os.close(self._fd)
      self._fd = None
      raise _in_use(os.path.dirname(self.path), holder, self.path) from None
    os.ftruncate(self._fd, 0)
    now = datetime.datetime.now().isoformat(timespec='seconds')
    os.write(self._fd, f'pid {os.getpid()} on host {socket.gethostname()} since {now}\n'
             .encode())

  def refresh(self) -> None:
    """Nothing to renew: the kernel holds a local lock for as long as the process lives."""

  def beat(self) -> None:
    """Nothing to renew (see :meth:`refresh`)."""

  def release(self) -> None:
    """Unlocks (the file stays; an unlocked file is free)."""
    if self._fd is not None:
      os.ftruncate(self._fd, 0)
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None


def _blob(url: str):
  """The google-cloud-storage blob of ``gs://bucket/key`` (honours STORAGE_EMULATOR_HOST)."""
  from google.cloud import storage  # pylint: disable=g-import-not-at-top
  bucket, _, key = url[len('gs://'):].partition('/')
  return storage.Client().bucket(bucket).blob(key)


def _describe(holder: dict) -> str:
  return (f'pid {holder.get("pid")} on host {holder.get("host")} since {holder.get("since")}, '
          f'heartbeat {holder.get("heartbeat")}')


class ObjectLock:
  """``WORKDIR/.lock`` on an object store: created with a generation precondition, kept
  alive by :meth:`refresh`, taken over once its heartbeat is older than ``lease_s``.

  Args:
    workdir: a ``gs://`` URL.
    lease_s: seconds without a heartbeat after which a holder is presumed dead.

  Raises:
    ValueError: one line naming the holder, when a live run holds the lock.
  """

  def __init__(self, workdir: str, lease_s: float = DEFAULT_LEASE_S):
    from google.api_core import exceptions  # pylint: disable=g-import-not-at-top
    self.path, self.lease_s = wd.join(wd.resolve(workdir), LOCK_FILE), lease_s
    self._blob = _blob(self.path)
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')
    self._holder = {'pid': os.getpid(), 'host': socket.gethostname(), 'since': now}
    self.generation: Optional[int] = None
    self.lost = ''  # why the lock is no longer ours (raised by the next refresh)
    self._written = 0.0
    try:
      self._write(0)
      return
    except exceptions.PreconditionFailed:
      pass
    except (exceptions.Forbidden, exceptions.Unauthorized) as e:
      raise ValueError(f'{self.path}: no permission to write there ({e.message})') from None
    self._blob.reload()  # the current holder and its generation
    stale_generation = self._blob.generation
    try:
      holder = json.loads(self._blob.download_as_bytes(if_generation_match=stale_generation))
    except (exceptions.PreconditionFailed, exceptions.NotFound):  # renewed or released now
      holder = {'heartbeat_unix': time.time(), 'pid': '(just renewed)'}
    except ValueError:  # not a lock of this code: take it over
      holder = {}
    age = time.time() - float(holder.get('heartbeat_unix', 0))
    if age <= lease_s:
      raise _in_use(wd.resolve(workdir), _describe(holder), self.path)
    try:
      self._write(stale_generation)
    except (exceptions.PreconditionFailed, exceptions.NotFound):  # another taker won
      raise _in_use(wd.resolve(workdir), 'another run took over a stale lock just now',
                    self.path) from None
    logging.warning('%s: took over the lock of %s (no heartbeat for %.0f s > lease %.0f s)',
                    self.path, _describe(holder), age, lease_s)

  def _write(self, if_generation_match: int) -> None:
    now = time.time()
    heartbeat = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    body = dict(self._holder, heartbeat=heartbeat.isoformat(timespec='seconds'),
                heartbeat_unix=now, lease_s=self.lease_s)
    self._blob.upload_from_string(json.dumps(body), content_type='application/json',
                                  if_generation_match=if_generation_match)
    self.generation, self._written = self._blob.generation, now

  def refresh(self) -> None:
    """Renews the heartbeat (at each checkpoint); ValueError (one line) when another run
    took the lock over, now or at an earlier :meth:`beat`."""
    from google.api_core import exceptions  # pylint: disable=g-import-not-at-top
    if self.generation is not None:
      try:
        self._write(self.generation)
      except (exceptions.PreconditionFailed, exceptions.NotFound):
        self.generation = None
        self.lost = (f'{self.path} was taken over by another run (no heartbeat from this '
                     'one within its lease): stopping')
      except Exception as e:  # pylint: disable=broad-except
        # An outage of minutes need not stop the run: the lease allows for missed beats.
        logging.warning('%s: heartbeat not renewed (%s: %s); trying again later', self.path,
                        type(e).__name__, str(e).split('\n')[0][:200])
    if self.lost:
      raise ValueError(self.lost)

  def beat(self) -> None:
    """Renews the heartbeat once a quarter of the lease has passed since the last one, so
    that a run whose checkpoints are further apart than the lease keeps its lock. Called
    between checkpoints by process 0 alone; a loss is raised by the next :meth:`refresh`."""
    if self.generation is not None and time.time() - self._written > self.lease_s / 4:
      try:
        self.refresh()
      except ValueError:
        pass  # kept in self.lost

  def release(self) -> None:
    """Deletes the lock object, if it is still ours."""
    from google.api_core import exceptions  # pylint: disable=g-import-not-at-top
    if self.generation is not None:
      try:
        self._blob.delete(if_generation_match=self.generation)
      except (exceptions.PreconditionFailed, exceptions.NotFound):
        pass
      self.generation = None


def acquire(workdir: str, lease_s: float = DEFAULT_LEASE_S):
  """The lock of ``workdir``: ``flock`` on a local disk, :class:`ObjectLock` on ``gs://``."""
  if wd.is_url(workdir):
    return ObjectLock(workdir, lease_s)
  return WorkdirLock(workdir)


def acquire_for_all(workdir: str, lease_s: float = DEFAULT_LEASE_S):
  """Process 0 takes the workdir's lock; every process stops with its refusal, if any
  (one-line ValueError), instead of waiting for the coordination timeout."""
  lock, refusal = None, ''
  if sharding.is_main_process():
    try:
      lock = acquire(workdir, lease_s)
    except ValueError as e:
      refusal = str(e)
    except Exception as e:  # pylint: disable=broad-except  (the others must not wait forever)
      refusal = f'{workdir}: could not take the lock ({type(e).__name__}: {e})'.split('\n')[0]
  refusal = sharding.main_process_says(refusal)
  if refusal:
    raise ValueError(refusal)
  return lock


class LockLost(RuntimeError):
  """The run's lock was taken over (its heartbeat was older than the lease)."""


def refresh_for_all(lock) -> None:
  """Renews the lock's heartbeat (at each checkpoint); all processes stop if it was lost."""
  lost = ''
  if lock is not None:
    try:
      lock.refresh()
    except ValueError as e:
      lost = str(e)
  lost = sharding.main_process_says(lost)
  if lost:
    raise LockLost(lost)
