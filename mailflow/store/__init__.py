"""Storage: engine and sessions, tables, migrations, audit trail, numbering, search, bulk rows."""
