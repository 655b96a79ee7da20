"""Privacy math (accounting.py) and privacy state (ledger.py), kept apart."""
