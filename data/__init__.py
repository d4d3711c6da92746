"""Annotations, media preprocessing, the feature cache and synthetic demo data."""
