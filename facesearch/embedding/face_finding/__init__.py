"""Face finding: detectors (one seam: a photo in, faces with box, five landmarks and score
out), alignment on the ArcFace template, and the preparation of encoder inputs from photos.

OpenCV is imported only when a detector or a warp is used, so crop-only paths stay light.
"""

from facesearch.embedding.face_finding.base import Detector, Face
from facesearch.embedding.face_finding.detectors import create_detector, parse_detector, register_detector

__all__ = ["Detector", "Face", "create_detector", "parse_detector", "register_detector"]
