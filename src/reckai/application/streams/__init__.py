"""Use cases of streams (issue 15; docs/streams.md)."""
