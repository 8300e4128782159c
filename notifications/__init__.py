"""Reminders, notifications and their delivery (email, in-app, webhooks, feeds)."""
