"""Fitting and judging the tie-strength model (make eval, realconnect train-model)."""
