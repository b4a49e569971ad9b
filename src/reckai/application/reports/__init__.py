"""Reports (issue 14 section 2; docs/reports.md): request, generate, download, delete, expire."""
