"""Certification: nothing the float kernels propose is trusted until it passes here.

``floatcert`` (float64 certificates with a priori error bounds), ``decide`` (the ladder float64
-> exact certificate -> Clarabel -> exact simplex), ``rank`` (proven ranks), ``exact_net`` (the
network in exact rationals), ``patterns`` (is this pattern a region?).
"""
