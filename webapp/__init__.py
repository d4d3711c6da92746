"""A local web app on the localizer: explore a video by typing words (app.py)."""
