r"""The paper's gradient-field study (Tables 1–2) and the PolyMax study
(``python -m applications.gradient_fields``).

* Tables 1–2: learn the convex field (eqs. 46–47) with ICNN, ICGN, CRR, mGradNet-C and
  mGradNet-M, and the nonconvex field (eqs. 48–49) with an MLP potential, RR, GradNet-C and
  GradNet-M, at about 100 parameters each. The *paper* protocol: 100,000 uniform training
  points on the unit square, 10,000 validation points, MSE, Adam with learning rate 0.005,
  batch 1000, 200 epochs, best-validation weights, test on the 100 × 100 grid, 5 seeds.
  The *improved* protocol keeps the data, the models and the paper's Adam phase, then
  polishes in float64 with full-batch L-BFGS (:func:`otgrad.train.refine`, 500
  iterations), best-validation weights throughout. Both protocols share the Adam phase
  (one run per seed); its weights are saved to ``weights_paper.pt`` so that the L-BFGS
  phase can run elsewhere (``--init-from``, e.g. on a GPU).
* PolyMax (:class:`otgrad.data.PolyMax`): mGradNet-C (WTanh) and mGradNet-M (WSoftmax) at
  the authors' widths against ICNN and MLP-potential baselines at the same budget of
  :math:`1024 d` parameters; 10,000 Adam steps on fresh batches of 100 uniform points, the
  learning rate picked from {1e-2, 1e-3, 1e-4} by a validation set, test MSE on 10,000
  fresh points.

References:
    | Gradient Networks (Chaudhari, Pranav, Moura, 2025), Sec. 7, Tables 1–2.
"""

__all__ = ["PROTOCOLS"]

#: The training protocols of Tables 1–2.
PROTOCOLS = ("paper", "improved")
