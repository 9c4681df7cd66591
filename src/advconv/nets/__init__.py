"""Nets: the conv blocks, nets as specs and built, their summary (receptive field) and the assignment's rules."""
