"""World models: frozen encoders (encoders.py, dinov2.py), the predictor, and the WorldModel."""
