"""The bottom layer every package may import: the settings object, the error base, atomic files.

Nothing here imports another package of the project, so no import cycle can start here.
"""
