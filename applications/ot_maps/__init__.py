r"""Optimal transport map benchmarks: Gaussians, the W2 benchmark, 2D toys, peers, losses,
color transfer (``python -m applications.ot_maps``).

1. *Gaussian*: :math:`\mathcal{N}(m_s, \Sigma_s) \to \mathcal{N}(m_t, \Sigma_t)` in
   :math:`d = 2 \ldots 256`, covariances with eigenvalues spread geometrically over
   :math:`[1/4, 4]` (×16) in a random rotation, 32768 training samples of each, L2-UVP on
   4096 test points against the true (Bures) map, beside the linear baseline fitted on the
   same samples.
2. *W2 benchmark* (Korotin et al. 2021, high-dimensional pairs): the training arrays
   (32768 unpaired samples), L2-UVP on the 4096 test points and their true transport.
3. *2D toys*: :math:`W_2(T_\#\mu, \nu)` on fresh samples beside :math:`W_2(\mu, \nu)` and the
   sampling floor :math:`W_2(\nu, \nu')`, with figures.
4. *Peers* on tasks 1 and 3: POT's ``LinearTransport``, ``MappingTransport`` (linear and
   Gaussian kernel) and the barycentric map of the exact plan (in-sample points).
5. *Losses*: the semi-dual against the minibatch losses at an equal time budget.
6. *Color transfer*: the RGB pixel cloud of one image mapped onto another's.

References:
    | Do Neural Optimal Transport Solvers Work? A Continuous Wasserstein-2 Benchmark
      (Korotin et al., 2021), Table 1 (high-dimensional benchmark, forward L2-UVP).
"""
