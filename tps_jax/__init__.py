"""tps-jax: Temporal Patch Shift video transformers in JAX/Flax."""
