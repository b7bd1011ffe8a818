"""Model packages: a folder with weights and ``card.json``, validated before use."""

from micro_app.core.models.card import ModelCard
from micro_app.core.models.package import (
    ModelPackage,
    default_model_dir,
    load_package,
    save_package,
    sha256_file,
)

__all__ = [
    "ModelCard",
    "ModelPackage",
    "default_model_dir",
    "load_package",
    "save_package",
    "sha256_file",
]
