"""The coordinator side: a Flower ServerApp around plain aggregation and run bookkeeping."""
