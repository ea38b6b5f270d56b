"""Training the encoder: phase 1 classification, phase 2 ArcFace fine-tuning (issue 3)."""
