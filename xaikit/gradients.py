"""Placeholder: methods are being added."""
