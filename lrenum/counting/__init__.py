"""Counting beyond enumeration: estimators, MIPBound, analytic bounds."""
