"""Reports (issue 14 section 2): the report row's lifecycle and the document a report renders."""
