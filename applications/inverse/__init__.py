r"""Benchmarks of learned convex regularizers: BSD68 denoising, CT, deblurring, convergence
(``python -m applications.inverse``).

Protocol (CRR-NN's): the regularizer is trained once, as a :math:`t`-step denoiser on
40x40 patches of the BSD400 training images at one noise level; the last ``val`` training
images are held out, and :math:`\lambda, \mu` (and TV's weight) are tuned on them for each
task and noise level. BSD68 is used only for the final test numbers. Without the data
folders the tasks run on scikit-image's bundled images (and say so in their JSON).
"""
