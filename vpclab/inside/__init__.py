"""A look inside the virtual router: its flows read back and said in words, a packet
traced through the real router, and the verdicts and drops of a trace.
"""
