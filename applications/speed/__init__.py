r"""Speed benchmarks of the library (run from the repository's root):

* ``python -m applications.speed.core_speed``: the closed-form calculus against autograd,
  one training step of mGradNets against an MLP field and an ICNN gradient (eager and
  compiled, with the arithmetic floor), the quadrature potential's accuracy;
* ``python -m applications.speed.scale``: BrenierMap on 10⁶ samples, data-parallel scaling
  and the training loop's own cost against an older version;
* ``python -m applications.speed.logdet_lowrank``: the batched log-determinant by the
  determinant lemma against a dense Cholesky factorization;
* ``bash applications/speed/gpu_check.sh``: the GPU checks in one run.
"""

__all__ = ["MODELS"]

#: The networks of the training-step benchmark, at equal parameter counts.
MODELS = ("mGradNet-C", "mGradNet-M", "MLP field", "ICNN gradient")
