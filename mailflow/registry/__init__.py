"""The applicant registry: spreadsheet import, status vocabulary, matching, identity changes."""
