"""Simulated robots: gymnasium environments with pixel observations, experts, data collection, evaluation."""
