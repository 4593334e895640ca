"""The documentation that must stay true as the code changes."""

from pathlib import Path

from server.config import reference_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_configuration_reference_lists_every_setting_as_the_code_defines_it():
    assert (ROOT / "docs" / "configuration.md").read_text() == reference_markdown(), \
        "regenerate with: python -m server.config > docs/configuration.md"
