"""Shared parts of privsynth: configuration, data, models, privacy accounting, outputs."""
