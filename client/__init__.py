"""The site (hospital) side: a Flower ClientApp around plain DP-GAN training code."""
