"""Collators: `base.VLMCollator` is the shared core; each family module subclasses it for real differences only."""
