"""Scripts that draw the documentation figures of minisim, and the PNGs they produce."""
