"""Renderers: they format result objects and compute nothing."""
