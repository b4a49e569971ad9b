"""Reconciliation jobs: start, query, change and run them (docs/reconciliation-jobs.md)."""
