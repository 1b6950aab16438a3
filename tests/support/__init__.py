"""Helpers every tier shares: settings and environments that reach the sandbox, scripted servers, processes."""
