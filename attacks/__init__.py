"""Privacy attacks against released synthetic data (membership, linkage, copies)."""
