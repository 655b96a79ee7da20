"""Data sources, splits and partitions."""
