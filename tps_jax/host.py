"""Host-side settings that decide CPU speed: glibc's malloc and transparent huge pages.

XLA:CPU allocates each execution's temporaries afresh (3.2 GB for a TPS-T train step at
32x224x224) and glibc hands blocks this large back to the kernel when they are freed, so
every step faults them in again, 4 KiB at a time: ~780k page faults, a third of the
step on a 2-core CPU (``benchmarks/vs_pytorch.py``). With ``glibc.malloc.hugetlb=1``
malloc asks for transparent huge pages, and the same memory comes in 2 MiB faults (512x
fewer); what is resident stays the same (freed blocks still go back).

glibc reads ``GLIBC_TUNABLES`` only when a process starts, so :func:`use_huge_pages`
re-executes the process once with it set; the entry points (``main.py``, the apps, the
benchmarks) call it first. A notebook kernel cannot re-execute itself: start Jupyter with
``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` in its environment. Opt out with
``TPS_JAX_HUGEPAGES=0``.
"""
import os
import platform
import sys
from typing import Mapping, Optional

TUNABLE = 'glibc.malloc.hugetlb'
OPT_OUT = 'TPS_JAX_HUGEPAGES'
_THP = '/sys/kernel/mm/transparent_hugepage/enabled'


def huge_page_env(environ: Mapping[str, str], thp_mode: Optional[str]) -> Optional[dict]:
  """The environment to re-execute with, or None when there is nothing to change.

  Args:
    environ: the current environment.
    thp_mode: the kernel's transparent-huge-page mode (``always``, ``madvise``, ``never``),
      None where unknown (not Linux, no sysfs).
  """
  if environ.get(OPT_OUT, '1') == '0' or thp_mode not in ('always', 'madvise'):
    return None
  tunables = environ.get('GLIBC_TUNABLES', '')
  if TUNABLE in tunables:  # already set (by us, or the user's own choice)
    return None
  env = dict(environ)
  env['GLIBC_TUNABLES'] = f'{tunables}:{TUNABLE}=1' if tunables else f'{TUNABLE}=1'
  return env


def thp_mode() -> Optional[str]:
  """``always`` / ``madvise`` / ``never`` (the bracketed word of the sysfs file), or None."""
  try:
    with open(_THP) as f:
      text = f.read()
  except OSError:
    return None
  start, end = text.find('['), text.find(']')
  return text[start + 1:end] if 0 <= start < end else None


def use_huge_pages() -> None:
  """Re-executes this process (same pid, argv, environment + the tunable) when it helps.

  A no-op off glibc Linux, where the kernel has THP off, when ``GLIBC_TUNABLES`` already
  names the tunable, or with ``TPS_JAX_HUGEPAGES=0``. Call it before the work starts
  (nothing of the first process survives but its pid).
  """
  if sys.platform != 'linux' or platform.libc_ver()[0] != 'glibc':
    return
  env = huge_page_env(os.environ, thp_mode())
  if env is None:
    return
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, sys.orig_argv, env)
