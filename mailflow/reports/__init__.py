"""Managers' figures: metrics, the SLA report (CSV, PDF, weekly email), the period panel."""
