"""The audit trail: events, redaction, canonical encoding and the per-organization HMAC chains."""
