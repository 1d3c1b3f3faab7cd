"""Command-line tools and helpers that are not nodes."""
