"""Analysis: photos in, faces out (landmarks, the five attributes, identity descriptors)."""
