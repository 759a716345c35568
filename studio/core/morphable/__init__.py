"""The 3D morphable face: the model, its build, fitting and surrogates, offscreen rendering."""
