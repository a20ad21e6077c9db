"""Visualizr API service: Litestar + msgspec in front of Triton. Build the app with
``frontend.app.create_app``.
"""
