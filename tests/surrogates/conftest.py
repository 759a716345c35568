"""The surrogates wing's tests (anonymize, GAN draws, in context, the method registry): they
use the shared engine and analyzer (tests/conftest.py); each file's held-out set stays in
it. A fixture two files of this wing need goes here: the in-context maker (in context and
the privacy presets)."""

import pytest


@pytest.fixture(scope="module")
def maker():
    """The in-context maker with the refiner (one per test file: it holds an OpenGL
    renderer)."""
    from studio.core.surrogates.incontext import InContextMaker

    m = InContextMaker()
    yield m
    m.close()
