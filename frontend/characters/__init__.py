"""The character registry (``/api/v1/characters``): built-in and users' characters, each a name, a description and
one to four reference pictures (kept in the asset store), which character animations are conditioned on.
"""
