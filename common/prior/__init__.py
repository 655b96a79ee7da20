"""Public priors: a generator and discriminator trained without privacy on public images
only, with their provenance (common/prior/file.py), and how one is built
(common/prior/build.py)."""
