"""An exclusive lock on a training workdir, so two runs never write one workdir at once.

``fcntl.flock`` on ``WORKDIR/.lock``: the kernel releases it when the holder exits or
dies (SIGKILL included), so a stale lock needs no clean-up; the file names the holder
(pid, host, start time) for the one-line refusal of a second run.
"""
import datetime
import fcntl
import os
import socket
from typing import Optional

LOCK_FILE = '.lock'


class WorkdirLock:
  """Holds ``WORKDIR/.lock`` until :meth:`release` (or the process ends).

  Args:
    workdir: an existing local directory.

  Raises:
    ValueError: one line naming the holder, when another process holds the lock.
  """

  def __init__(self, workdir: str):
    self.path = os.path.join(os.path.abspath(workdir), LOCK_FILE)
    self._fd: Optional[int] = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.read(self._fd, 1000).decode(errors='replace').strip() or 'unknown holder'
      os.close(self._fd)
      self._fd = None
      raise ValueError(f'{os.path.dirname(self.path)} is in use by another run ({holder}; '
                       f'lock {self.path}): wait for it to end or use another --workdir'
                       ) from None
    os.ftruncate(self._fd, 0)
    now = datetime.datetime.now().isoformat(timespec='seconds')
    os.write(self._fd, f'pid {os.getpid()} on host {socket.gethostname()} since {now}\n'
             .encode())

  def release(self) -> None:
    """Unlocks (the file stays; an unlocked file is free)."""
    if self._fd is not None:
      os.ftruncate(self._fd, 0)
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None
