"""Training and deployment methods compared in the paper (DESIGN section 5), one module each."""
