"""Report renderers (application/ports/reports.py `ReportRenderer`): CSV (a zip of one CSV per
table), Excel (xlsxwriter) and PDF."""
