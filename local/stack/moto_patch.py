"""placeholder: filled after profiling"""

MOTO_VERSION = "5.2.1"


def apply() -> None:
    return None
