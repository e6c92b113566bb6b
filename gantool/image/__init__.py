"""Pixel conventions: image files in and out (the only cv2 import), array/tensor bridge, alpha, luma."""
