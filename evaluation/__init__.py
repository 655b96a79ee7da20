"""`privsynth evaluate`: how useful a run's synthetic images are, judged on real held-out images.

Utility (a classifier trained on synthetic images, tested on real ones), distribution metrics
in a feature space the project trains on real images, and label fidelity.
"""
