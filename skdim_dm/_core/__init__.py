"""The torch-only core: what fitting and encoding compute, with no scikit-learn.

``bases`` (the base distributions ``N(0, I)`` and ``U([0,1]^d)``), ``channels``
(noise channels, the encoder's normalization layers, the InfoNCE bounds),
``networks`` (encoders and critics, and their parameters), ``views`` (how the two
inputs of a positive pair are made), ``neighbors`` (the PCA and kNN search behind
neighbor views), ``sources`` (memory maps and Datasets read in chunks),
``training`` (the loop), ``distributed`` (data-parallel fits) and ``heap`` (the
allocator setting of a fit). The estimators in :mod:`skdim_dm` validate
parameters, resolve them into these objects and store the fitted state.

Nothing here imports scikit-learn, directly or through another module of the
package (``tests/test_import_graph.py`` enforces it), and this ``__init__``
imports nothing, so a module of the core costs only its own imports.
"""
