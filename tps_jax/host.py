"""Host-side settings that decide CPU speed and memory: glibc's malloc and XLA's scheduler.

Two defaults cost a CPU train step a large share of its time and memory (measured, with the
commits that measured them, in docs/performance.md, "Host settings"):

* XLA:CPU allocates each execution's temporaries afresh and glibc hands blocks this large
  back to the kernel when they are freed, so every step faults them in again, 4 KiB at a
  time. With ``glibc.malloc.hugetlb=1`` malloc asks for transparent huge pages and the same
  memory comes in 2 MiB faults.
* XLA:CPU's concurrency-optimized scheduler orders the step for overlap between
  independent thunks, which on a few cores buys nothing and keeps more activations alive:
  the memory-minimizing order needs less temporary memory at the same speed.

glibc reads ``GLIBC_TUNABLES`` only when a process starts, so :func:`configure`
re-executes the process once with both set; every entry point (``main.py``, the apps, the
benchmarks) calls it first; a process that cannot be re-run (code from stdin, ``-c``, a
notebook kernel) keeps its malloc and gets the XLA flag alone. In a notebook, set both in
the kernel's environment (or call :func:`configure` before jax is imported for the XLA
flag). A setting the user
already chose is kept; ``TPS_JAX_TUNE_HOST=0`` turns all of this off.
"""
import ctypes
import os
import platform
import sys
from typing import Mapping, Optional

TUNABLE = 'glibc.malloc.hugetlb'
XLA_FLAG = 'xla_cpu_enable_concurrency_optimized_scheduler'
OPT_OUT = 'TPS_JAX_TUNE_HOST'
_THP = '/sys/kernel/mm/transparent_hugepage/enabled'


def tuned_env(environ: Mapping[str, str], thp_mode: Optional[str]) -> dict:
  """``environ`` with the huge-page tunable (where the kernel has THP) and the XLA flag.

  Args:
    environ: the current environment.
    thp_mode: the kernel's transparent-huge-page mode (``always``, ``madvise``, ``never``),
      None where unknown (not Linux, no sysfs).
  """
  env = dict(environ)
  if environ.get(OPT_OUT, '1') == '0':
    return env
  tunables = environ.get('GLIBC_TUNABLES', '')
  if thp_mode in ('always', 'madvise') and TUNABLE not in tunables:
    env['GLIBC_TUNABLES'] = f'{tunables}:{TUNABLE}=1' if tunables else f'{TUNABLE}=1'
  xla_flags = environ.get('XLA_FLAGS', '')
  if XLA_FLAG not in xla_flags:
    env['XLA_FLAGS'] = f'{xla_flags} --{XLA_FLAG}=false'.strip()
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


def glibc_linux() -> bool:
  """Linux with glibc: where the tunable and ``malloc_trim`` exist."""
  return sys.platform == 'linux' and platform.libc_ver()[0] == 'glibc'


def rerunnable() -> bool:
  """Whether running ``sys.orig_argv`` again redoes this process's work: a script file or a
  ``-m`` module. Not code from stdin (spent), ``-c`` (its top level would run twice) or an
  interactive kernel (a notebook's kernel would restart under its client)."""
  if 'IPython' in sys.modules or hasattr(sys, 'ps1') or sys.flags.interactive:
    return False
  path = getattr(sys.modules.get('__main__'), '__file__', None)
  return bool(path) and os.path.isfile(path)


def configure() -> None:
  """Applies :func:`tuned_env` to this process: re-executes it (same pid and argv) when the
  malloc tunable is new and :func:`rerunnable`, else sets the XLA flag in place (it takes
  effect if jax's backend has not started yet) and says in one line that malloc stays as
  it is. Call it first thing: nothing of the first process survives the re-execution but
  its pid.
  """
  env = tuned_env(os.environ, thp_mode() if glibc_linux() else None)
  if env.get('GLIBC_TUNABLES') != os.environ.get('GLIBC_TUNABLES'):
    if rerunnable():
      sys.stdout.flush()
      sys.stderr.flush()
      os.execve(sys.executable, sys.orig_argv, env)
    print(f'tps_jax.host: glibc reads {TUNABLE} only at start-up and this process (stdin, -c '
          f'or a notebook) cannot restart itself; start it with GLIBC_TUNABLES={TUNABLE}=1 '
          'for huge-page malloc', file=sys.stderr)
    env = {k: v for k, v in env.items() if k != 'GLIBC_TUNABLES'}
  os.environ.update(env)


def release_free_memory() -> None:
  """Hands the heap's free pages back to the kernel (glibc's ``malloc_trim``).

  Compiling a step leaves freed compiler memory resident (how much: docs/performance.md,
  "Host settings"); call after the first (compiling) step. A no-op off glibc.
  """
  if glibc_linux():
    ctypes.CDLL('libc.so.6').malloc_trim(0)
