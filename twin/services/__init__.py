"""Services: long-running programs built on the library, above the physics and the workflows.

* :mod:`twin.services.panda` - a PandA box emulator speaking the PandABlocks TCP protocol
  (``twin panda``).
"""

__all__ = ["panda"]
