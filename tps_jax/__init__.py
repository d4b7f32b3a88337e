"""tps-jax: Temporal Patch Shift video transformers in JAX/Flax."""
import os

# gs:// through fsspec/gcsfs, for our files and orbax's alike (tps_jax/workdir.py says
# why); etils reads this once, at its first path, so it is set before anything imports it.
os.environ.setdefault('EPATH_USE_TF', 'false')
