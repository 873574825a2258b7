"""Thin command-line interface: parse -> api -> report."""
