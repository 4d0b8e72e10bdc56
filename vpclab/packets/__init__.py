"""Packets as captured, and what is made of them: tcpdump with readiness, canonical packet lines,
comparison with documented traces, sequence diagrams, a ping with its losses.
"""
