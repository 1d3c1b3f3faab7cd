"""The pure core shared by training, nodes and tools: contract, geometry, codecs.

Imports neither rclpy nor torch (tests/test_core_imports.py checks this).
"""
