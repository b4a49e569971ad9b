"""Cron expressions read by cronsim (docs/decisions/stream-schedules.md)."""
