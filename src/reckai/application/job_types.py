"""The kinds of background job, by name and queue (spec §7.2). Use cases enqueue these through
`JobQueue`; the worker registry (`reckai.entrypoints.worker.actors`) maps each name to its handler,
and enqueueing a name no handler serves is refused (docs/jobs.md)."""

from __future__ import annotations

from reckai.application.ports.jobs import JobType, Queue

# Low: data cleanup. Idempotent (deleting what is expired twice deletes nothing the second time).
CLEANUP_EXPIRED_SESSIONS = JobType("cleanup_expired_sessions", Queue.LOW, max_attempts=3)
# Low: delete stored objects of deleted files (docs/files.md "Orphaned objects"). Idempotent.
SWEEP_ORPHANED_FILE_OBJECTS = JobType("sweep_orphaned_file_objects", Queue.LOW, max_attempts=3)
# Low: delete what is past its retention period (docs/privacy.md, "Retention"). Daily; idempotent.
APPLY_RETENTION = JobType("apply_retention", Queue.LOW, max_attempts=3)

# Identity: the password-reset mail (docs/identity.md, "Password reset"). High, like other mail; a
# redelivery sends a fresh link that replaces the earlier one.
SEND_PASSWORD_RESET = JobType("send_password_reset", Queue.HIGH, max_attempts=4)
# Identity: the e-mail verification mail after a sign-up or a resend (docs/identity.md, "E-mail
# verification"). Same budget as the reset mail; a redelivery sends a fresh link.
SEND_EMAIL_VERIFICATION = JobType("send_email_verification", Queue.HIGH, max_attempts=4)

# Workflow (docs/workflow.md). High: exception and approval notifications, SLA escalation.
NOTIFY_WORKFLOW = JobType("notify_workflow", Queue.HIGH, max_attempts=4)
ESCALATE_OVERDUE_EXCEPTIONS = JobType("escalate_overdue_exceptions", Queue.HIGH, max_attempts=3)
# Medium: write an approved ledger posting's journal file for the ledger (idempotent per approval).
EXPORT_LEDGER_POSTING = JobType("export_ledger_posting", Queue.MEDIUM, max_attempts=4)

# Audit (docs/audit.md, "Anchors"): sign every chain's head and write it outside the database.
# High, so low-priority work never delays it past the minute; a lost run is covered by the next.
ANCHOR_AUDIT_CHAINS = JobType("anchor_audit_chains", Queue.HIGH, max_attempts=2)
