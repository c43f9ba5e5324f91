"""Conversion of trained ANNs to spiking networks: datasets, weight files, balancing."""
