"""ReckAI: multi-tenant reconciliation backend."""
