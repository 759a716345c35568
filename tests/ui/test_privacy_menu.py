"""The studio window's Surrogate > Privacy menu: one entry per preset, bound to the state's
``privacy``, and the in-context photo made again under the chosen preset."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.errors import StudioError
from studio.core.surrogates.privacy import PRIVACY_PRESETS

pytestmark = pytest.mark.data


def test_the_menu_and_the_state_follow_each_other(window, emits):
    win, state = window, window.state
    acts = win.privacy_actions
    assert list(acts) == list(PRIVACY_PRESETS)
    assert state.privacy == "default" and acts["default"].isChecked()
    assert "outline" in acts["strict"].text()
    emits(state.privacy_changed, acts["strict"].trigger)
    assert state.privacy == "strict" and acts["strict"].isChecked()
    assert not acts["default"].isChecked()
    emits(state.privacy_changed, lambda: state.set_privacy("strict"), times=0)
    emits(state.privacy_changed, lambda: state.set_privacy("default"))
    assert acts["default"].isChecked()
    with pytest.raises(StudioError, match="unknown privacy preset 'lax'"):
        state.set_privacy("lax")
    assert state.privacy == "default"


def test_strict_remakes_the_in_context_photo_with_its_context_blurred(
        qtbot, window, held_out_adults, open_and_wait):
    win, state = window, window.state
    open_and_wait(win, held_out_adults[3].path)
    state.set_identity(seed_a=1)  # a photo opens with a random identity: one fixed here
    with qtbot.waitSignal(state.context_changed, timeout=60000):
        win.context_action.trigger()
    qtbot.waitUntil(lambda: state.context is not None
                    and state.context.request.seed == 1, timeout=60000)
    default = state.context
    assert default.request.context == "keep" and default.request.outline == "keep"
    win.privacy_actions["strict"].trigger()
    qtbot.waitUntil(lambda: state.context is not None
                    and state.context.request.outline == "new", timeout=60000)
    strict = state.context
    assert strict.request.context == "blur" and strict.request.skin == "bucket"
    original = state.image.rgb
    corner = (slice(0, 16), slice(0, 16))  # hair or background, far from the face

    def moved(photo) -> float:
        return float(np.abs(photo.result.image[corner].astype(int) - original[corner]).mean())

    assert moved(default) < 0.5 and moved(strict) > 2, (moved(default), moved(strict))
