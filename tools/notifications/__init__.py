"""Notifications: routing a notice to a tenant's channels and delivering it by email or webhook."""
