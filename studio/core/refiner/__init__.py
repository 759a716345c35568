"""The refiner: a small U-Net that turns the in-context composite into a photograph.

It learns the last step the hand-built levers could not: skin grain, eyes and teeth as a
camera sees them. Trained on pairs made with each training face's own morphable fit
(``studio.core.surrogates.refine_pairs``), used inside the new face's mask only, so every
context pixel stays the photo's own. Pure torch and NumPy, no Qt.
"""
