"""Streams: continuous reconciliation of two sides over many runs (issue 15; docs/streams.md)."""
