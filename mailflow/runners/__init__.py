"""The moving parts: ingest (IMAP, SMTP), inbox and claims, batched engine, sandboxed reading, timers, sender, service."""
