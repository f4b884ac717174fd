"""ferlens training: datasets, augmentation, the papers' trainer, evaluation, ablation and search.

Entry points: ``python -m training.train``, ``training.evaluate``, ``training.ablate``, ``training.search``.
Nothing heavy is imported here, so ``import training.config`` stays cheap.
"""
