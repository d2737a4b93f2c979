"""Time limits: días hábiles, legal calendars, the SLA clock, a case's deadline and its timers."""
